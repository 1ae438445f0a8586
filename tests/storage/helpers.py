"""Shared helpers: a common face of MemoryStorage and DurableLogStorage, and state dumps."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from raftkv.raft.storage import MemoryStorage
from raftkv.raft.types import ConfState, Entry, HardState, Snapshot
from raftkv.storage import DurableLogStorage, Engine


class WritableStorage(Protocol):
    """The read side of LogStorage plus the MemoryStorage write spellings."""

    def initial_state(self) -> tuple[HardState, ConfState]: ...
    def entries(self, lo: int, hi: int, max_size: int = 0) -> list[Entry]: ...
    def term(self, index: int) -> int: ...
    def first_index(self) -> int: ...
    def last_index(self) -> int: ...
    def snapshot(self) -> Snapshot: ...
    def set_hard_state(self, hs: HardState) -> None: ...
    def apply_snapshot(self, snap: Snapshot) -> None: ...
    def create_snapshot(self, index: int, conf_state: ConfState, data: bytes) -> Snapshot: ...
    def compact(self, compact_index: int) -> None: ...
    def append(self, entries: list[Entry]) -> None: ...


def ents(*pairs: tuple[int, int]) -> list[Entry]:
    """Entries from ``(index, term)`` pairs, each with a payload naming it."""
    return [Entry(term=t, index=i, data=f"e{i}t{t}".encode()) for i, t in pairs]


def outcome(fn: Callable[[], Any]) -> Any:
    """The value of ``fn()``, or the type of the exception it raised."""
    try:
        return fn()
    except Exception as exc:  # the comparison is the point
        return type(exc)


def dump(s: WritableStorage) -> dict[str, Any]:
    """Everything a reader can observe, for comparing two storages."""
    first, last = s.first_index(), s.last_index()
    return {
        "first": first,
        "last": last,
        "entries": s.entries(first, last + 1),
        "terms": [_term(s, i) for i in range(first - 2, last + 2)],
        "snapshot": s.snapshot(),
        "initial": s.initial_state(),
    }


def _term(s: WritableStorage, index: int) -> Any:
    return outcome(lambda: s.term(index))


def memory() -> MemoryStorage:
    return MemoryStorage()


def open_durable(path: Path, **kw: int) -> tuple[Engine, DurableLogStorage]:
    engine = Engine.open(path)
    return engine, DurableLogStorage(engine, **kw)
