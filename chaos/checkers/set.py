"""The set checker: acknowledged adds survive, nothing appears from nowhere.

Workload: clients ``add`` unique elements (``ok``: acknowledged; ``fail``: definitely not
added; ``info``: unknown), then, after the cluster has healed, one or more ``read``s of the
whole set (``ok`` value: the elements, as a tuple or list). Against the *last* successful
read:

* ``lost``: acknowledged adds missing from it (an acknowledged write was lost);
* ``unexpected``: elements in it that no ``add`` attempted, or whose add definitely failed;
* ``recovered`` / ``absent-indeterminate``: indeterminate adds present / missing (both
  fine, reported for the record).

Every final read must agree with the others (a disagreement means members diverged).

``duplicated``: when the final reads' ``version`` of each element's key is given, a key
with version above 1 was written twice -- a retried add applied more than once (each add
is one Put of a fresh key, so its version must be 1).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from chaos.history import EventType, History, Operation, Value

__all__ = ["SetResult", "check_set"]


@dataclass(frozen=True, slots=True)
class SetResult:
    """The set verdict.

    Attributes:
        valid: True if nothing was lost, unexpected or divergent; None if no final read
            succeeded (nothing can be judged).
        ok: acknowledged adds.
        failed: adds that definitely failed.
        indeterminate: adds with unknown outcome.
        recovered: indeterminate adds found in the final read.
        lost: acknowledged adds missing from the final read, sorted.
        unexpected: elements read that were never (successfully or possibly) added, sorted.
        divergent: final reads that disagree with the last one.
        duplicated: ``(element, version)`` of keys written more than once, sorted.
    """

    valid: bool | None
    ok: int
    failed: int
    indeterminate: int
    recovered: int
    lost: tuple[Value, ...]
    unexpected: tuple[Value, ...]
    divergent: tuple[Operation, ...]
    duplicated: tuple[tuple[Value, int], ...] = ()

    def render(self) -> str:
        verdict = {True: "OK", False: "INVALID", None: "UNKNOWN (no final read)"}[self.valid]
        lines = [f"set: {verdict} — {self.ok} acknowledged adds, {self.indeterminate} "
                 f"indeterminate ({self.recovered} present at the end), {self.failed} failed; "
                 f"{len(self.lost)} lost, {len(self.unexpected)} unexpected, "
                 f"{len(self.divergent)} divergent final reads, "
                 f"{len(self.duplicated)} keys written twice"]
        if self.lost:
            lines.append(f"  lost: {list(self.lost[:50])}")
        if self.unexpected:
            lines.append(f"  unexpected: {list(self.unexpected[:50])}")
        if self.duplicated:
            lines.append(f"  written twice (element, version): {list(self.duplicated[:50])}")
        lines += [f"  divergent: #{op.index} {op.describe()[:200]}" for op in self.divergent[:5]]
        return "\n".join(lines)


def _sort_key(v: Value) -> tuple[str, str]:
    return (type(v).__name__, repr(v))


def check_set(history: History | Iterable[Operation], *, add_f: str = "add",
              read_f: str = "read", versions: Mapping[Value, int] | None = None) -> SetResult:
    """Judges adds against the final read(s); see the module docstring.

    Args:
        versions: the highest ``version`` any final read saw for each element's key.
    """
    ops = list(history)
    adds = [o for o in ops if o.f == add_f]
    ok = {o.input for o in adds if o.status is EventType.OK}
    failed = {o.input for o in adds if o.status is EventType.FAIL}
    maybe = {o.input for o in adds if o.status is EventType.INFO}
    reads = [o for o in ops if o.f == read_f and o.status is EventType.OK
             and isinstance(o.output, tuple | list)]
    if not reads:
        return SetResult(None, len(ok), len(failed), len(maybe), 0, (), (), ())
    final = reads[-1]
    assert isinstance(final.output, tuple | list)
    seen = set(final.output)
    lost = tuple(sorted(ok - seen, key=_sort_key))
    unexpected = tuple(sorted(seen - ok - (maybe - failed), key=_sort_key))
    divergent = tuple(o for o in reads[:-1] if set(o.output or ()) != seen)  # type: ignore[arg-type]
    duplicated = tuple(sorted(((e, v) for e, v in (versions or {}).items() if v > 1),
                              key=lambda ev: _sort_key(ev[0])))
    valid = not lost and not unexpected and not divergent and not duplicated
    return SetResult(valid, len(ok), len(failed), len(maybe), len(maybe & seen), lost,
                     unexpected, divergent, duplicated)
