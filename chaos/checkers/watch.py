"""The watch-completeness checker: a watch sees every change exactly once, and only real ones.

Workload (``set`` with ``--client raftkv``): one watch on the set's prefix, opened from a
known revision before the clients start, runs through every fault (resuming after its
member is killed, cut off or paused) until it has delivered everything up to the final
read's revision. Adds are unique and nothing is ever deleted, so against the final read:

* ``missing``: elements in the final read the watch never delivered;
* ``repeated``: elements delivered more than once (a replayed event, or a Put applied
  twice);
* ``unexpected``: elements delivered that no add could have written (never attempted, or
  the add definitely failed);
* ``phantom``: elements delivered that are not in the final read (a change the watch saw
  committed and the cluster then lost);
* ``deletes``: delete events (the workload never deletes).

Any of these is a violation. A watch that ended with an error (its start revision was
compacted: it cannot be complete by design) makes the verdict unknown instead of
``missing``; one that never caught up with the final revision is a violation.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Iterable
from dataclasses import dataclass

from chaos.history import Value

__all__ = ["WatchEvent", "WatchResult", "check_watch"]

WatchEvent = tuple[str, Value, int]
"""``(kind, element, revision)``: kind ``put`` or ``delete``."""


@dataclass(frozen=True, slots=True)
class WatchResult:
    """The watch verdict (see the module docstring for the fields' meaning).

    Attributes:
        valid: True, False (a violation) or None (the watch ended with ``error``).
        events: events delivered.
        final: elements in the final read.
        reconnects: times the watch re-opened its stream (resumed).
    """

    valid: bool | None
    events: int
    final: int
    missing: tuple[Value, ...]
    repeated: tuple[Value, ...]
    unexpected: tuple[Value, ...]
    phantom: tuple[Value, ...]
    deletes: tuple[Value, ...]
    caught_up: bool
    error: str | None
    reconnects: int

    def counts(self) -> dict[str, int]:
        return {"events": self.events, "final": self.final, "missing": len(self.missing),
                "repeated": len(self.repeated), "unexpected": len(self.unexpected),
                "phantom": len(self.phantom), "deletes": len(self.deletes),
                "caught_up": int(self.caught_up), "reconnects": self.reconnects}

    def render(self) -> str:
        verdict = {True: "OK", False: "INVALID", None: "UNKNOWN"}[self.valid]
        lines = [f"watch: {verdict} — {self.events} events for {self.final} elements in the "
                 f"final read, resumed {self.reconnects} times; {len(self.missing)} missing, "
                 f"{len(self.repeated)} repeated, {len(self.unexpected)} unexpected, "
                 f"{len(self.phantom)} phantom, {len(self.deletes)} deletes"]
        if not self.caught_up:
            lines.append("  the watch did not catch up with the final read's revision")
        if self.error:
            lines.append(f"  the watch ended: {self.error}")
        for name in ("missing", "repeated", "unexpected", "phantom", "deletes"):
            items = getattr(self, name)
            if items:
                lines.append(f"  {name}: {list(items[:50])}")
        return "\n".join(lines)


def _sorted(items: Iterable[Value]) -> tuple[Value, ...]:
    return tuple(sorted(items, key=lambda v: (type(v).__name__, repr(v))))


def check_watch(events: Iterable[WatchEvent], final: Collection[Value],
                possible: Collection[Value], *, caught_up: bool, error: str | None = None,
                reconnects: int = 0) -> WatchResult:
    """Judges a watch's events (see the module docstring).

    Args:
        events: what the watch delivered, in order.
        final: the elements of the final read.
        possible: elements an add may have written (``ok`` or ``info`` adds).
        caught_up: the watch delivered everything up to the final read's revision.
        error: why the watch ended early, if it did.
    """
    events = list(events)
    puts = Counter(e for kind, e, _ in events if kind == "put")
    final_set, possible_set = set(final), set(possible)
    missing = _sorted(final_set - set(puts))
    repeated = _sorted(e for e, n in puts.items() if n > 1)
    unexpected = _sorted(set(puts) - possible_set)
    phantom = _sorted(set(puts) - final_set - set(unexpected))
    deletes = _sorted({e for kind, e, _ in events if kind != "put"})
    valid: bool | None = True
    if repeated or unexpected or phantom or deletes:
        valid = False
    elif error is not None:
        valid = None
    elif missing or not caught_up:
        valid = False
    return WatchResult(valid, len(events), len(final_set), missing, repeated, unexpected,
                       phantom, deletes, caught_up, error, reconnects)
