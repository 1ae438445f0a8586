"""The state machine against the naive dict model (tests/state/model.py), step by step.

Every step applies the same random command to both, through the log (encoded, with
de-duplication ids), and compares results, revisions and whole-store contents. Restarts
(rebuild from the backend) and snapshot/restore into a fresh backend are steps too.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from raftkv.errors import RaftKVError
from raftkv.state.commands import (
    Command,
    Compact,
    CompactResult,
    Compare,
    CompareResult,
    CompareTarget,
    DeleteRange,
    ErrorResult,
    LeaseGrant,
    LeaseGrantResult,
    LeaseRevoke,
    LeaseRevokeResult,
    Op,
    Put,
    Range,
    Response,
    Txn,
)
from raftkv.state.machine import error_result
from tests.state.helpers import Node
from tests.state.model import Model, ModelError

KEYS = [b"a", b"b", b"c", b"d"]
LEASES = [1, 2, 3]

keys = st.sampled_from(KEYS)
range_ends = st.sampled_from([b"", b"", b"\0", b"b", b"c", b"e"])
values = st.binary(max_size=2)
leases = st.sampled_from([0, 0, *LEASES])
puts = st.builds(Put, keys, values, leases, st.booleans())
deletes = st.builds(DeleteRange, keys, range_ends, st.booleans())
ranges_now = st.builds(Range, keys, range_ends, st.integers(0, 3))
compares = st.one_of(
    st.builds(Compare, keys, st.sampled_from([CompareTarget.VERSION, CompareTarget.CREATE,
              CompareTarget.MOD, CompareTarget.LEASE]), st.sampled_from(list(CompareResult)),
              st.integers(0, 6), range_ends),
    st.builds(Compare, keys, st.just(CompareTarget.VALUE), st.sampled_from(list(CompareResult)),
              values, range_ends),
)  # fmt: skip
branch = st.lists(st.one_of(puts, deletes, ranges_now), max_size=4).map(tuple)
txns = st.builds(Txn, st.lists(compares, max_size=2).map(tuple), branch, branch)


def strip(result: Response) -> Response:
    """Error messages are not modelled; compare codes only."""
    if isinstance(result, ErrorResult):
        return ErrorResult(result.code, "")
    return result


class StoreVsModel(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.node = Node()
        self.model = Model()
        self.seq = 0

    @initialize()
    def start(self) -> None:
        self.node = Node()
        self.model = Model()

    def both(self, op: Command, expected: Response) -> None:
        self.seq += 1
        got = self.node.apply(op, client_id=1, seq=self.seq)
        assert strip(got) == expected, (op, got, expected)
        # a retry of the same proposal is answered from the dedup table, unchanged
        revision = self.node.sm.revision
        assert self.node.apply(op, client_id=1, seq=self.seq) == got
        assert self.node.sm.revision == revision

    @rule(op=puts)
    def put(self, op: Op) -> None:
        self.both(op, self.model.apply(op))

    @rule(op=st.builds(Put, keys, values))
    def put_without_lease(self, op: Op) -> None:
        self.both(op, self.model.apply(op))

    @rule(op=deletes)
    def delete(self, op: Op) -> None:
        self.both(op, self.model.apply(op))

    @rule(op=txns)
    def txn(self, op: Op) -> None:
        self.both(op, self.model.apply(op))

    @rule(data=st.data(), key=keys, range_end=range_ends, limit=st.integers(0, 3))
    def read(self, data: st.DataObject, key: bytes, range_end: bytes, limit: int) -> None:
        revision = data.draw(st.integers(-1, self.model.revision + 1))
        req = Range(key, range_end, limit=limit, revision=revision)
        expected = self.model.apply(req)
        try:
            got: Response = self.node.sm.range(req)
        except RaftKVError as exc:
            got = error_result(exc)
        assert strip(got) == expected, (req, got, expected)

    @rule(data=st.data())
    def compact(self, data: st.DataObject) -> None:
        revision = data.draw(st.integers(self.model.compact, self.model.revision + 1))
        try:
            self.model.compact_to(revision)
            expected: Response = CompactResult(self.model.revision)
        except ModelError as exc:
            expected = ErrorResult(exc.code, "")
        self.both(Compact(revision), expected)

    @rule(lease_id=st.sampled_from(LEASES), ttl=st.integers(1, 100))
    def grant(self, lease_id: int, ttl: int) -> None:
        try:
            self.model.grant(lease_id)
            expected: Response = LeaseGrantResult(self.model.revision, lease_id, ttl)
        except ModelError as exc:
            expected = ErrorResult(exc.code, "")
        self.both(LeaseGrant(lease_id, ttl, 0), expected)

    @rule(lease_id=st.sampled_from(LEASES))
    def revoke(self, lease_id: int) -> None:
        try:
            self.model.revoke(lease_id)
            expected: Response = LeaseRevokeResult(self.model.revision)
        except ModelError as exc:
            expected = ErrorResult(exc.code, "")
        self.both(LeaseRevoke(lease_id), expected)

    @rule()
    def noop_entry(self) -> None:
        self.node.index += 1
        assert self.node.sm.apply(self.node.index, b"").result is None

    @rule()
    def restart(self) -> None:
        self.node = Node(self.node.backend)

    @precondition(lambda self: self.node.index > 0)
    @rule()
    def snapshot_restore(self) -> None:
        snap = self.node.sm.snapshot()
        fresh = Node()
        fresh.sm.restore(snap)
        fresh.index = fresh.sm.applied_index
        assert fresh.sm.snapshot() == snap
        self.node = fresh

    @invariant()
    def same_store(self) -> None:
        sm, model = self.node.sm, self.model
        assert sm.revision == model.revision
        assert sm.compact_revision == model.compact
        assert sm.applied_index == self.node.index
        everything = sm.range(Range(b"\0", b"\0"))
        assert everything.kvs == tuple(model.state[k] for k in sorted(model.state))
        assert sm.lease_ids() == sorted(model.leases)
        for lease_id in model.leases:
            status = sm.lease_status(lease_id, 0)
            assert status is not None
            attached = sorted(k for k, kv in model.state.items() if kv.lease == lease_id)
            assert list(status.keys) == attached

    @invariant()
    def history_readable_down_to_compaction(self) -> None:
        for rev in range(max(self.model.compact, 1), self.model.revision + 1):
            got = self.node.sm.range(Range(b"\0", b"\0", revision=rev)).kvs
            state = self.model.history[rev]
            assert got == tuple(state[k] for k in sorted(state)), rev


StoreVsModel.TestCase.settings = settings(max_examples=200, stateful_step_count=50, deadline=None)
TestStoreVsModel = StoreVsModel.TestCase


@settings(max_examples=60, deadline=None)
@given(st.lists(st.one_of(puts, deletes, txns, st.builds(LeaseGrant, st.sampled_from(LEASES),
       st.just(5), st.integers(0, 9)), st.builds(LeaseRevoke, st.sampled_from(LEASES)),
       st.builds(Compact, st.integers(0, 8))), max_size=25))  # fmt: skip
def test_snapshot_restore_reproduces_the_whole_state(ops: list[Command]) -> None:
    node = Node()
    for op in ops:
        node.apply(op)
    snap = node.sm.snapshot()
    copy = Node()
    copy.sm.restore(snap)
    copy.index = copy.sm.applied_index
    assert copy.sm.snapshot() == snap
    assert copy.sm.applied_index == node.sm.applied_index
    assert copy.sm.revision == node.sm.revision
    assert copy.sm.compact_revision == node.sm.compact_revision
    assert copy.sm.lease_ids() == node.sm.lease_ids()
    for rev in range(max(node.sm.compact_revision, 1), node.sm.revision + 1):
        req = Range(b"\0", b"\0", revision=rev)
        assert copy.sm.range(req) == node.sm.range(req)
    # both continue identically
    follow = Put(b"a", b"after", prev_kv=True)
    assert copy.apply(follow) == node.apply(follow)
    assert copy.sm.snapshot() == node.sm.snapshot()
