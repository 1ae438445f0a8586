"""Random append / truncate / compact / snapshot / reopen sequences: DurableLogStorage must
behave exactly like MemoryStorage (the model) after every step, including after a reopen."""

from __future__ import annotations

import copy
import shutil
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from raftkv.raft.storage import MemoryStorage
from raftkv.raft.types import ConfState, Entry, HardState, Snapshot, SnapshotMeta
from raftkv.storage import DurableLogStorage, Engine
from tests.storage.helpers import dump, outcome

TERMS = st.integers(min_value=0, max_value=6)
PAYLOADS = st.binary(max_size=40)
CONF = st.builds(ConfState, st.frozensets(st.integers(1, 5), max_size=3),
                 st.frozensets(st.integers(6, 8), max_size=2))


class LogModel(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.dir = Path(tempfile.mkdtemp(prefix="raftkv-model-"))
        self.model = MemoryStorage()
        self.engine = Engine.open(self.dir)
        self.cache = 3
        self.store = DurableLogStorage(self.engine, cache_entries=self.cache)

    def teardown(self) -> None:
        self.engine.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def both(self, name: str, *args: Any) -> None:
        want = outcome(lambda: getattr(self.model, name)(*args))
        got = outcome(lambda: getattr(self.store, name)(*args))
        assert got == want, (name, args)

    @rule(data=st.data(), n=st.integers(0, 8), term=TERMS, payload=PAYLOADS)
    def append(self, data: st.DataObject, n: int, term: int, payload: bytes) -> None:
        last = self.model.last_index()
        start = data.draw(st.integers(max(1, self.model.first_index() - 3), last + 2))
        new = [Entry(term=term, index=start + i, data=payload[:i * 5]) for i in range(n)]
        self.both("append", new)

    @rule(term=TERMS, vote=st.integers(0, 5), commit=st.integers(0, 50))
    def set_hard_state(self, term: int, vote: int, commit: int) -> None:
        self.both("set_hard_state", HardState(term, vote, commit))

    @rule(data=st.data())
    def compact(self, data: st.DataObject) -> None:
        lo = max(0, self.model.first_index() - 2)
        self.both("compact", data.draw(st.integers(lo, self.model.last_index() + 1)))

    @rule(data=st.data(), cs=CONF, payload=PAYLOADS)
    def create_snapshot(self, data: st.DataObject, cs: ConfState, payload: bytes) -> None:
        lo = max(0, self.model.first_index() - 2)
        index = data.draw(st.integers(lo, self.model.last_index() + 1))
        self.both("create_snapshot", index, cs, payload)

    @rule(delta=st.integers(-2, 6), term=TERMS, cs=CONF, payload=PAYLOADS)
    def apply_snapshot(self, delta: int, term: int, cs: ConfState, payload: bytes) -> None:
        index = max(0, self.model.last_index() + delta)
        self.both("apply_snapshot", Snapshot(SnapshotMeta(index, term, cs), payload))

    @rule(data=st.data(), n=st.integers(0, 4), term=TERMS, with_hs=st.booleans(),
          with_snap=st.booleans())
    def save(self, data: st.DataObject, n: int, term: int, with_hs: bool,
             with_snap: bool) -> None:
        """One Ready: snapshot, then entries, then hard state, as the server persists it."""
        snap = None
        base = self.model.last_index()
        if with_snap:
            base = base + data.draw(st.integers(-1, 3))
            snap = Snapshot(SnapshotMeta(max(base, 0), term, ConfState()), b"snap")
        start = data.draw(st.integers(max(1, base - 1), max(1, base + 1)))
        new = [Entry(term=term, index=start + i) for i in range(n)]
        hs = HardState(term, 1, 0) if with_hs else None
        model = copy.deepcopy(self.model)
        steps = [("apply_snapshot", snap), ("append", new), ("set_hard_state", hs)]
        want = outcome(lambda: [getattr(model, name)(arg)
                                for name, arg in steps if arg is not None])
        got = outcome(lambda: self.store.save(hs, new, snap))
        if isinstance(want, type):
            assert got == want  # and the store is unchanged: `agree` checks it
        else:
            assert got is None
            self.model = model

    @rule(cache=st.sampled_from([1, 3, 1000]))
    def reopen(self, cache: int) -> None:
        self.engine.close()
        self.engine = Engine.open(self.dir)
        self.store = DurableLogStorage(self.engine, cache_entries=cache)

    @rule(data=st.data(), max_size=st.sampled_from([0, 1, 20, 50, 100]))
    def read(self, data: st.DataObject, max_size: int) -> None:
        first, last = self.model.first_index(), self.model.last_index()
        lo = data.draw(st.integers(max(0, first - 2), last + 2))
        hi = data.draw(st.integers(lo, last + 3))
        self.both("entries", lo, hi, max_size)

    @invariant()
    def agree(self) -> None:
        assert dump(self.store) == dump(self.model)


LogModel.TestCase.settings = settings(max_examples=50, stateful_step_count=30, deadline=None)
test_log_model = LogModel.TestCase
