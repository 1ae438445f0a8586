"""The auth store in the state machine: etcd's rules and exact errors, the one check every
request passes when auth is on, and auth state carried by the backend and snapshots."""

from __future__ import annotations

import pytest

from raftkv import errors as e
from raftkv.state import MemoryBackend, StateMachine, encode_request
from raftkv.state.commands import (
    AuthDisable,
    AuthEnable,
    AuthResult,
    Command,
    Compact,
    DeleteRange,
    ErrorCode,
    ErrorResult,
    LeaseGrant,
    LeaseRevoke,
    Permission,
    Put,
    Range,
    RangeResult,
    Request,
    Response,
    RoleAdd,
    RoleDelete,
    RoleGrantPermission,
    RoleRevokePermission,
    TokenIssue,
    Txn,
    UserAdd,
    UserChangePassword,
    UserDelete,
    UserGrantRole,
    UserRevokeRole,
)

READ, WRITE, READWRITE = 0, 1, 2


class Member:
    def __init__(self) -> None:
        self.backend = MemoryBackend()
        self.sm = StateMachine(self.backend)
        self.index = 0

    def apply(self, op: Command, user: str = "root", *, internal: bool = False) -> Response:
        self.index += 1
        req = Request(0, 0, op, user=user, auth_revision=self.sm.auth.revision,
                      internal=internal)
        applied = self.sm.apply(self.index, encode_request(req))
        assert applied.result is not None
        return applied.result

    def ok(self, op: Command, user: str = "root") -> Response:
        result = self.apply(op, user)
        assert not isinstance(result, ErrorResult), result
        return result

    def error(self, op: Command, user: str = "root") -> str:
        result = self.apply(op, user)
        assert isinstance(result, ErrorResult), result
        assert result.code == ErrorCode.AUTH
        return result.message


def enabled() -> Member:
    m = Member()
    m.ok(UserAdd("root", b"$2b$hash"))
    m.ok(RoleAdd("root"))
    m.ok(UserGrantRole("root", "root"))
    m.ok(AuthEnable())
    return m


def test_enable_needs_root_with_the_root_role() -> None:
    m = Member()
    assert m.error(AuthEnable()) == e.AUTH_ROOT_USER_NOT_EXIST
    m.ok(UserAdd("root", b"h"))
    assert m.error(AuthEnable()) == e.AUTH_ROOT_ROLE_NOT_EXIST
    # etcd: granting the root role needs no role named root to exist
    m.ok(UserGrantRole("root", "root"))
    before = m.sm.auth.revision
    assert isinstance(m.ok(AuthEnable()), AuthResult)
    assert m.sm.auth.enabled
    assert m.sm.auth.revision == before + 1
    m.ok(AuthEnable())  # already on: a no-op success
    assert m.sm.auth.revision == before + 1


def test_every_mutation_raises_the_revision() -> None:
    m = Member()
    seen = [m.sm.auth.revision]
    for op in (UserAdd("u", b"h"), RoleAdd("r"), UserGrantRole("u", "r"),
               RoleGrantPermission("r", Permission(b"a", b"b", READ)),
               RoleRevokePermission("r", b"a", b"b"), UserRevokeRole("u", "r"),
               UserChangePassword("u", b"h2"), RoleDelete("r"), UserDelete("u")):
        m.ok(op)
        seen.append(m.sm.auth.revision)
    assert seen == sorted(set(seen))


def test_duplicates_empties_and_missing_things() -> None:
    m = Member()
    m.ok(UserAdd("u", b"h"))
    assert m.error(UserAdd("u", b"h")) == e.AUTH_USER_ALREADY_EXIST
    assert m.error(UserAdd("", b"h")) == e.AUTH_USER_EMPTY
    m.ok(RoleAdd("r"))
    assert m.error(RoleAdd("r")) == e.AUTH_ROLE_ALREADY_EXIST
    assert m.error(RoleAdd("")) == e.AUTH_ROLE_EMPTY
    assert m.error(UserDelete("nobody")) == e.AUTH_USER_NOT_FOUND
    assert m.error(UserGrantRole("nobody", "r")) == e.AUTH_USER_NOT_FOUND
    assert m.error(UserGrantRole("u", "none")) == e.AUTH_ROLE_NOT_FOUND
    assert m.error(UserRevokeRole("u", "r")) == e.AUTH_ROLE_NOT_GRANTED
    assert m.error(RoleRevokePermission("r", b"k")) == e.AUTH_PERMISSION_NOT_GRANTED
    assert m.error(RoleGrantPermission("r")) == e.AUTH_PERMISSION_NOT_GIVEN
    assert m.error(RoleDelete("none")) == e.AUTH_ROLE_NOT_FOUND


@pytest.mark.parametrize(("key", "end"), [(b"", b""), (b"b", b"a"), (b"b", b"b")])
def test_invalid_permission_ranges(key: bytes, end: bytes) -> None:
    m = Member()
    m.ok(RoleAdd("r"))
    assert m.error(RoleGrantPermission("r", Permission(key, end, READ))) == \
        e.AUTH_INVALID_MGMT


def test_regranting_a_range_updates_its_type_and_root_reads_as_everything() -> None:
    m = Member()
    m.ok(RoleAdd("r"))
    m.ok(RoleGrantPermission("r", Permission(b"a", b"c", READ)))
    m.ok(RoleGrantPermission("r", Permission(b"a", b"c", WRITE)))
    m.ok(RoleGrantPermission("r", Permission(b"k", b"\0", READ)))
    assert m.sm.auth.role_perms("r") == (Permission(b"a", b"c", WRITE),
                                         Permission(b"k", b"\0", READ))
    m.ok(RoleAdd("root"))
    assert m.sm.auth.role_perms("root") == (Permission(b"", b"\0", READWRITE),)


def test_root_cannot_be_removed_while_auth_is_on() -> None:
    m = enabled()
    assert m.error(UserDelete("root")) == e.AUTH_INVALID_MGMT
    assert m.error(RoleDelete("root")) == e.AUTH_INVALID_MGMT
    assert m.error(UserRevokeRole("root", "root")) == e.AUTH_INVALID_MGMT
    m.ok(AuthDisable())
    m.ok(RoleDelete("root"), user="")
    m.ok(UserDelete("root"), user="")


def _alice(m: Member) -> None:
    m.ok(UserAdd("alice", b"h"))
    m.ok(RoleAdd("reader"))
    m.ok(RoleGrantPermission("reader", Permission(b"foo", b"", READ)))
    m.ok(RoleGrantPermission("reader", Permission(b"/a/", b"/a0", READWRITE)))
    m.ok(UserGrantRole("alice", "reader"))


def test_requests_are_checked_at_apply_against_the_grants() -> None:
    m = enabled()
    _alice(m)
    assert isinstance(m.ok(Range(b"foo"), "alice"), RangeResult)
    assert m.error(Range(b"foo", b"fop"), "alice") == e.AUTH_PERMISSION_DENIED
    assert m.error(Put(b"foo", b"v"), "alice") == e.AUTH_PERMISSION_DENIED
    m.ok(Put(b"/a/x", b"v"), "alice")
    assert m.error(Range(b"/a/", b"\0"), "alice") == e.AUTH_PERMISSION_DENIED
    nested = Txn(success=(Txn(success=(Put(b"zzz", b"v"),)),))
    assert m.error(nested, "alice") == e.AUTH_PERMISSION_DENIED
    assert m.error(Txn(failure=(DeleteRange(b"bar"),)), "alice") == e.AUTH_PERMISSION_DENIED
    assert m.error(Compact(1), "alice") == e.AUTH_PERMISSION_DENIED
    assert m.error(UserAdd("mallory", b"h"), "alice") == e.AUTH_PERMISSION_DENIED
    assert m.sm.range(Range(b"zzz")).kvs == ()


def test_no_user_a_stale_stamp_and_unknown_users_are_refused() -> None:
    m = enabled()
    _alice(m)
    assert m.error(Put(b"/a/x", b"v"), user="") == e.AUTH_USER_EMPTY
    assert m.error(LeaseGrant(7, 10, 0), user="") == e.AUTH_USER_EMPTY
    m.index += 1
    stale = Request(0, 0, Put(b"/a/x", b"v"), user="alice",
                    auth_revision=m.sm.auth.revision - 1)
    result = m.sm.apply(m.index, encode_request(stale)).result
    assert isinstance(result, ErrorResult)
    assert result.message == e.AUTH_OLD_REVISION
    assert m.error(Put(b"/a/x", b"v"), "ghost") == e.AUTH_PERMISSION_DENIED


def test_a_revoke_applies_to_the_very_next_request() -> None:
    m = enabled()
    _alice(m)
    m.ok(Put(b"/a/1", b"v"), "alice")
    m.ok(RoleRevokePermission("reader", b"/a/", b"/a0"))
    assert m.error(Put(b"/a/2", b"v"), "alice") == e.AUTH_PERMISSION_DENIED


def test_leases_check_their_attached_keys() -> None:
    m = enabled()
    _alice(m)
    m.ok(LeaseGrant(7, 60, 0), "alice")
    m.ok(Put(b"secret", b"v", lease=7), "root")
    # attaching to a lease that holds a key alice cannot write, and revoking it: denied
    assert m.error(Put(b"/a/k", b"v", lease=7), "alice") == e.AUTH_PERMISSION_DENIED
    assert m.error(LeaseRevoke(7), "alice") == e.AUTH_PERMISSION_DENIED
    m.ok(LeaseRevoke(7), "root")


def test_internal_requests_pass_and_members_only_commands_are_theirs() -> None:
    m = enabled()
    assert isinstance(m.apply(LeaseGrant(8, 60, 0), user="", internal=True), Response)
    assert m.error(TokenIssue("root", b"h" * 32, 0), "root") == e.AUTH_PERMISSION_DENIED
    m.apply(TokenIssue("root", b"h" * 32, 1000), user="", internal=True)
    assert m.sm.auth.token(b"h" * 32) is not None


def test_password_change_and_delete_drop_only_that_users_tokens() -> None:
    m = enabled()
    _alice(m)
    m.apply(TokenIssue("alice", b"a" * 32, 1), user="", internal=True)
    m.apply(TokenIssue("root", b"r" * 32, 1), user="", internal=True)
    m.ok(UserChangePassword("alice", b"h2"))
    assert m.sm.auth.token(b"a" * 32) is None
    assert m.sm.auth.token(b"r" * 32) is not None
    m.apply(TokenIssue("alice", b"b" * 32, 2), user="", internal=True)
    m.ok(UserDelete("alice"))
    assert m.sm.auth.token(b"b" * 32) is None
    m.ok(AuthDisable())
    assert m.sm.auth.token(b"r" * 32) is None  # disabling drops every token


def test_auth_state_survives_a_reopen_and_a_snapshot() -> None:
    m = enabled()
    _alice(m)
    m.apply(TokenIssue("alice", b"a" * 32, 5), user="", internal=True)
    reopened = StateMachine(m.backend)
    other = StateMachine(MemoryBackend())
    other.restore(m.sm.snapshot())
    for sm in (reopened, other):
        assert sm.auth.enabled
        assert sm.auth.revision == m.sm.auth.revision
        assert sm.auth.users == m.sm.auth.users
        assert sm.auth.roles == m.sm.auth.roles
        assert sm.auth.token(b"a" * 32) is not None
        sm.auth.check("alice", Put(b"/a/x", b"v"), sm.lease_keys)
        with pytest.raises(e.AuthError):
            sm.auth.check("alice", Put(b"foo", b"v"), sm.lease_keys)


def test_a_failed_entry_changes_no_auth_state() -> None:
    m = enabled()
    before = (m.sm.auth.revision, dict(m.sm.auth.users), dict(m.sm.auth.roles))
    m.error(UserAdd("root", b"again"))
    m.error(UserRevokeRole("root", "root"))
    assert (m.sm.auth.revision, m.sm.auth.users, m.sm.auth.roles) == before
