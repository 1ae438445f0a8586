"""The bank checker: money is neither created nor destroyed.

Workload: a fixed set of accounts holds a fixed total. Clients ``transfer`` amounts between
accounts in transactions and ``read`` all balances in one snapshot (an etcd range or txn).
Every ``ok`` read must see exactly the expected accounts, balances that sum to the total,
and (unless allowed) no negative balance. A read that violates this observed a state no
serializable execution of the transfers could produce.

History format: a read's ``ok`` value is a mapping ``{account: balance}``; transfers are
ignored by this checker (their effect is judged through the reads).
"""

from __future__ import annotations

import enum
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass

from chaos.history import EventType, History, Operation

__all__ = ["BankAnomaly", "BankAnomalyKind", "BankResult", "check_bank"]


class BankAnomalyKind(enum.StrEnum):
    """What a read got wrong."""

    MALFORMED = "malformed-read"
    WRONG_TOTAL = "wrong-total"
    NEGATIVE = "negative-balance"
    UNEXPECTED_ACCOUNT = "unexpected-account"
    MISSING_ACCOUNT = "missing-account"


@dataclass(frozen=True, slots=True)
class BankAnomaly:
    """One bad read.

    Attributes:
        kind: the anomaly.
        op: the read.
        detail: what was seen, in words.
    """

    kind: BankAnomalyKind
    op: Operation
    detail: str

    def render(self) -> str:
        """One line: kind, operation and detail."""
        return f"{self.kind.value}: #{self.op.index} {self.op.describe()} — {self.detail}"


@dataclass(frozen=True, slots=True)
class BankResult:
    """The bank verdict.

    Attributes:
        valid: no anomaly was found.
        reads: how many ``ok`` reads were checked.
        anomalies: every anomaly, in history order.
    """

    valid: bool
    reads: int
    anomalies: tuple[BankAnomaly, ...]

    def render(self) -> str:
        """A summary line followed by one line per anomaly."""
        head = f"bank: {'OK' if self.valid else 'INVALID'} — {self.reads} reads checked, "
        head += f"{len(self.anomalies)} anomalies"
        return "\n".join([head, *(f"  {a.render()}" for a in self.anomalies)])


def check_bank(
    history: History | Iterable[Operation],
    *,
    total: int,
    accounts: Collection[str] | None = None,
    allow_negative: bool = False,
    read_f: str = "read",
) -> BankResult:
    """Checks every ``ok`` read of all accounts.

    Args:
        history: the history (or its operations).
        total: the money in the bank, constant throughout.
        accounts: the accounts every read must return exactly; None skips that check.
        allow_negative: accept negative balances (for workloads that allow overdrafts).
        read_f: the function name of a read of all accounts.

    Returns:
        The verdict with every anomaly.
    """
    expected = None if accounts is None else frozenset(accounts)
    anomalies: list[BankAnomaly] = []
    reads = 0
    for op in history:
        if op.f != read_f or op.status is not EventType.OK:
            continue
        reads += 1
        anomalies.extend(_check_read(op, total, expected, allow_negative))
    return BankResult(not anomalies, reads, tuple(anomalies))


def _check_read(
    op: Operation, total: int, expected: frozenset[str] | None, allow_negative: bool
) -> list[BankAnomaly]:
    balances = op.output
    if not isinstance(balances, Mapping) or not all(
        isinstance(b, int) and not isinstance(b, bool) for b in balances.values()
    ):
        return [BankAnomaly(BankAnomalyKind.MALFORMED, op, f"not {{account: int}}: {balances!r}")]
    found: list[BankAnomaly] = []
    if expected is not None:
        seen = frozenset(balances)
        if seen - expected:
            extra = sorted(seen - expected)
            found.append(BankAnomaly(BankAnomalyKind.UNEXPECTED_ACCOUNT, op, f"{extra}"))
        if expected - seen:
            missing = sorted(expected - seen)
            found.append(BankAnomaly(BankAnomalyKind.MISSING_ACCOUNT, op, f"{missing}"))
    values = [b for b in balances.values() if isinstance(b, int)]
    if sum(values) != total:
        found.append(
            BankAnomaly(
                BankAnomalyKind.WRONG_TOTAL, op, f"balances sum to {sum(values)}, expected {total}"
            )
        )
    negative = {a: b for a, b in balances.items() if isinstance(b, int) and b < 0}
    if negative and not allow_negative:
        found.append(BankAnomaly(BankAnomalyKind.NEGATIVE, op, f"{negative}"))
    return found
