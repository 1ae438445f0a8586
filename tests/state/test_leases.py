"""Leases: etcd 3.4 ``lease/lessor.go`` and ``etcdserver/apply.go`` semantics."""

from __future__ import annotations

from raftkv.state.commands import (
    DeleteRange,
    ErrorCode,
    LeaseCheckpoint,
    LeaseCheckpointItem,
    LeaseGrant,
    LeaseGrantResult,
    LeaseRenew,
    LeaseRenewResult,
    LeaseRevoke,
    LeaseRevokeResult,
    Put,
    Range,
)
from raftkv.state.leases import MAX_LEASE_TTL_S
from tests.state.helpers import Node


def test_grant_does_not_bump_revision_and_duplicate_id_fails() -> None:
    node = Node()
    assert node.ok(LeaseGrant(5, 10, 1_000)) == LeaseGrantResult(revision=1, id=5, ttl_s=10)
    err = node.error(LeaseGrant(5, 10, 1_000))
    assert (err.code, err.message) == (ErrorCode.LEASE_EXISTS, "etcdserver: lease already exists")
    assert node.sm.lease_ids() == [5]


def test_grant_rejects_zero_id_and_huge_ttl() -> None:
    node = Node()
    assert node.error(LeaseGrant(0, 10, 0)).code == ErrorCode.LEASE_NOT_FOUND
    err = node.error(LeaseGrant(1, MAX_LEASE_TTL_S + 1, 0))
    assert (err.code, err.message) == (
        ErrorCode.LEASE_TTL_TOO_LARGE,
        "etcdserver: too large lease TTL",
    )
    assert node.sm.lease_ids() == []


def test_put_with_unknown_lease_fails() -> None:
    node = Node()
    err = node.error(Put(b"a", b"v", lease=77))
    assert (err.code, err.message) == (
        ErrorCode.LEASE_NOT_FOUND,
        "etcdserver: requested lease not found",
    )
    assert node.sm.revision == 1


def test_revoke_deletes_attached_keys_in_one_revision() -> None:
    node = Node()
    node.ok(LeaseGrant(1, 10, 0))
    node.ok(Put(b"b", b"x", lease=1))  # 2
    node.ok(Put(b"a", b"x", lease=1))  # 3
    node.ok(Put(b"c", b"x"))  # 4
    node.index += 1
    applied = node.sm.apply(node.index, _encode(LeaseRevoke(1)))
    assert applied.result == LeaseRevokeResult(revision=5)
    assert [(e.type.name, e.kv.key, e.kv.mod_revision) for e in applied.events] == [
        ("DELETE", b"a", 5),
        ("DELETE", b"b", 5),
    ]
    assert [kv.key for kv in node.sm.range(Range(b"\0", b"\0")).kvs] == [b"c"]
    assert node.error(LeaseRevoke(1)).code == ErrorCode.LEASE_NOT_FOUND


def test_revoke_without_keys_does_not_bump() -> None:
    node = Node()
    node.ok(LeaseGrant(1, 10, 0))
    assert node.ok(LeaseRevoke(1)) == LeaseRevokeResult(revision=1)


def test_put_moves_key_between_leases_and_delete_detaches() -> None:
    node = Node()
    node.ok(LeaseGrant(1, 10, 0))
    node.ok(LeaseGrant(2, 10, 0))
    node.ok(Put(b"k", lease=1))
    node.ok(Put(b"k", lease=2))
    assert _keys(node, 1) == ()
    assert _keys(node, 2) == (b"k",)
    node.ok(Put(b"k"))  # lease 0 detaches
    assert _keys(node, 2) == ()
    node.ok(Put(b"k", lease=2))
    node.ok(DeleteRange(b"k"))
    assert _keys(node, 2) == ()
    node.ok(LeaseRevoke(2))
    assert node.sm.revision == 6  # revoking an empty lease changed nothing


def test_expiry_is_a_query_on_now_carried_by_commands() -> None:
    node = Node()
    node.ok(LeaseGrant(1, 10, 1_000))  # expires at 11_000
    node.ok(LeaseGrant(2, 5, 1_000))  # expires at 6_000
    assert node.sm.expired_leases(5_999) == []
    assert node.sm.expired_leases(6_000) == [2]
    assert node.sm.expired_leases(20_000) == [2, 1]
    assert node.ok(LeaseRenew(2, 5_000)) == LeaseRenewResult(revision=1, id=2, ttl_s=5)
    assert node.sm.expired_leases(9_999) == []  # renewed at 5_000: expires at 10_000
    assert node.sm.expired_leases(11_000) == [2, 1]
    status = node.sm.lease_status(2, 7_000)
    assert status is not None
    assert (status.ttl_s, status.remaining_ms) == (5, 3_000)
    assert node.sm.lease_status(99, 0) is None
    assert node.error(LeaseRenew(99, 0)).code == ErrorCode.LEASE_NOT_FOUND


def test_a_lease_past_its_deadline_is_not_revived_by_a_renewal() -> None:
    """Its revoke may not be applied yet; a renewal stamped after the deadline fails as
    etcd's does (a paused lock holder must not get its lease, and lock, back)."""
    node = Node()
    node.ok(LeaseGrant(1, 5, 1_000))  # expires at 6_000
    assert node.error(LeaseRenew(1, 6_000)).code == ErrorCode.LEASE_NOT_FOUND
    assert node.sm.expired_leases(6_000) == [1]  # still there, for the leader to revoke
    assert node.ok(LeaseRenew(1, 5_999)) == LeaseRenewResult(revision=1, id=1, ttl_s=5)


def test_checkpoint_rebases_deadlines_and_ignores_unknown_ids() -> None:
    node = Node()
    node.ok(LeaseGrant(1, 10, 0))
    node.ok(LeaseCheckpoint((LeaseCheckpointItem(1, 2_500), LeaseCheckpointItem(9, 1)), 50_000))
    assert node.sm.expired_leases(52_499) == []
    assert node.sm.expired_leases(52_500) == [1]


def test_leases_survive_restart_with_attachments() -> None:
    node = Node()
    node.ok(LeaseGrant(3, 10, 0))
    node.ok(Put(b"x", lease=3))
    again = Node(node.backend)
    assert again.sm.lease_ids() == [3]
    assert _keys(again, 3) == (b"x",)


def _keys(node: Node, lease_id: int) -> tuple[bytes, ...]:
    status = node.sm.lease_status(lease_id, 0)
    assert status is not None
    return status.keys


def _encode(op: LeaseRevoke) -> bytes:
    from raftkv.state import encode_request
    from raftkv.state.commands import Request

    return encode_request(Request(0, 0, op))
