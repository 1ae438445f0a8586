"""The lock checker: fencing tokens and guarded writes.

Workload (one lock, one protected resource), as recommended after Jepsen's etcd 3.4.3
analysis: a client ``acquire``s the lock and gets a fencing token (the lock key's
``create_revision``), then performs guarded ``write``s that carry the token; the resource
(or a txn comparing the lock key) must reject a write whose token is older than one it has
already accepted. Leases expire and processes pause, so two clients may *believe* they hold
the lock at once; with fencing, that must never show in the accepted writes.

History format:

* ``acquire``: input ``None``; ``ok`` value = the token (int); ``fail`` = not acquired;
  ``info`` = maybe acquired, token unknown.
* ``write``: input ``(token, payload)``; ``ok`` = accepted; ``fail`` = rejected (fenced).
* ``release`` and other functions are ignored.

Checks, in real-time order ("A before B" means A returned before B was invoked):

* ``duplicate-token``: two successful acquires got the same token;
* ``token-not-increasing``: an acquire got a token not greater than one granted before it;
* ``stale-write``: a write was accepted with a token older than one already accepted for
  an earlier write — writes of two holders interleaved;
* ``foreign-token``: an accepted write used a token granted to another process, or one
  never granted to its process (allowed only after an indeterminate acquire).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from chaos.history import EventType, History, Operation, Process

__all__ = ["LockAnomaly", "LockAnomalyKind", "LockResult", "check_lock"]


class LockAnomalyKind(enum.StrEnum):
    """What went wrong."""

    DUPLICATE_TOKEN = "duplicate-token"
    TOKEN_NOT_INCREASING = "token-not-increasing"
    STALE_WRITE = "stale-write"
    FOREIGN_TOKEN = "foreign-token"
    MALFORMED = "malformed"


@dataclass(frozen=True, slots=True)
class LockAnomaly:
    """One violation.

    Attributes:
        kind: the anomaly.
        op: the offending operation.
        earlier: the operation it conflicts with, if any.
        detail: what was seen, in words.
    """

    kind: LockAnomalyKind
    op: Operation
    earlier: Operation | None
    detail: str

    def render(self) -> str:
        """One or two lines describing the anomaly."""
        text = f"{self.kind.value}: #{self.op.index} {self.op.describe()} — {self.detail}"
        if self.earlier is not None:
            text += f"\n      after #{self.earlier.index} {self.earlier.describe()}"
        return text


@dataclass(frozen=True, slots=True)
class LockResult:
    """The lock verdict.

    Attributes:
        valid: no anomaly was found.
        acquires: successful acquires checked.
        writes: accepted guarded writes checked.
        anomalies: every anomaly found.
    """

    valid: bool
    acquires: int
    writes: int
    anomalies: tuple[LockAnomaly, ...]

    def render(self) -> str:
        """A summary line followed by the anomalies."""
        head = (
            f"lock: {'OK' if self.valid else 'INVALID'} — {self.acquires} acquires, "
            f"{self.writes} accepted writes, {len(self.anomalies)} anomalies"
        )
        return "\n".join([head, *(f"  {a.render()}" for a in self.anomalies)])


def check_lock(
    history: History | Iterable[Operation],
    *,
    acquire_f: str = "acquire",
    write_f: str = "write",
) -> LockResult:
    """Checks fencing-token order and guarded-write interleaving.

    Args:
        history: the history (or its operations) of one lock and its resource.
        acquire_f: the function name of a lock acquisition.
        write_f: the function name of a guarded write.

    Returns:
        The verdict with every anomaly.
    """
    ops = list(history)
    anomalies: list[LockAnomaly] = []
    acquires = _tokens(
        [o for o in ops if o.f == acquire_f and o.status is EventType.OK], "output", anomalies
    )
    writes = _tokens(
        [o for o in ops if o.f == write_f and o.status is EventType.OK], "input", anomalies
    )
    anomalies += _duplicates(acquires)
    anomalies += _regressions(acquires, strict=True, kind=LockAnomalyKind.TOKEN_NOT_INCREASING)
    anomalies += _regressions(writes, strict=False, kind=LockAnomalyKind.STALE_WRITE)
    maybe = {o.process for o in ops if o.f == acquire_f and o.status is EventType.INFO}
    anomalies += _foreign(writes, acquires, maybe)
    return LockResult(not anomalies, len(acquires), len(writes), tuple(anomalies))


def _tokens(
    ops: Sequence[Operation], where: str, anomalies: list[LockAnomaly]
) -> list[tuple[Operation, int]]:
    """Extracts each operation's token (acquire output, or write input ``(token, _)``)."""
    out: list[tuple[Operation, int]] = []
    for op in ops:
        raw = op.output if where == "output" else op.input
        token = raw[0] if where == "input" and isinstance(raw, tuple) and raw else raw
        if isinstance(token, int) and not isinstance(token, bool):
            out.append((op, token))
        else:
            anomalies.append(
                LockAnomaly(
                    LockAnomalyKind.MALFORMED, op, None, f"no integer token in {where} {raw!r}"
                )
            )
    return out


def _duplicates(acquires: Sequence[tuple[Operation, int]]) -> list[LockAnomaly]:
    first: dict[int, Operation] = {}
    found: list[LockAnomaly] = []
    for op, token in acquires:
        if token in first:
            found.append(
                LockAnomaly(
                    LockAnomalyKind.DUPLICATE_TOKEN,
                    op,
                    first[token],
                    f"token {token} granted twice",
                )
            )
        else:
            first[token] = op
    return found


def _regressions(
    items: Sequence[tuple[Operation, int]], *, strict: bool, kind: LockAnomalyKind
) -> list[LockAnomaly]:
    """Finds B whose token is below (or, if strict, not above) the token of some A that
    returned before B was invoked; reports each B once, against the largest such token."""
    by_ret = sorted(items, key=lambda it: it[0].ret)
    found: list[LockAnomaly] = []
    best: tuple[Operation, int] | None = None
    i = 0
    for op, token in sorted(items, key=lambda it: (it[0].call, it[0].index)):
        while i < len(by_ret) and by_ret[i][0].ret < op.call:
            if best is None or by_ret[i][1] > best[1]:
                best = by_ret[i]
            i += 1
        if best is not None and (token <= best[1] if strict else token < best[1]):
            relation = "not greater than" if strict else "older than"
            found.append(
                LockAnomaly(
                    kind, op, best[0], f"token {token} is {relation} {best[1]}, seen before"
                )
            )
    return found


def _foreign(
    writes: Sequence[tuple[Operation, int]],
    acquires: Sequence[tuple[Operation, int]],
    maybe_acquired: set[Process],
) -> list[LockAnomaly]:
    owner = {token: op for op, token in acquires}
    found: list[LockAnomaly] = []
    for op, token in writes:
        grant = owner.get(token)
        if grant is not None and grant.process != op.process:
            found.append(
                LockAnomaly(
                    LockAnomalyKind.FOREIGN_TOKEN,
                    op,
                    grant,
                    f"token {token} belongs to process {grant.process!r}",
                )
            )
        elif grant is None and op.process not in maybe_acquired:
            found.append(
                LockAnomaly(
                    LockAnomalyKind.FOREIGN_TOKEN,
                    op,
                    None,
                    f"token {token} was never granted to this process",
                )
            )
    return found
