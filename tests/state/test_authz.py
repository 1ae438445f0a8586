"""The authorizer: request footprints (etcd ``apply/auth.go``) and the check of a footprint
against merged grants (etcd ``auth/range_perm_cache.go``).

The properties decide "is this footprint inside these grants" by brute force over a finite
key universe holding every endpoint a generated grant or request can have, which is exact:
an uncovered point of a range means an uncovered universe key at or below it.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from raftkv.state.authz import (
    Grant,
    Grants,
    Need,
    Perm,
    election_footprint,
    footprint,
    lease_keys_footprint,
    lock_footprint,
    prefix_end,
    valid_permission_range,
    watch_footprint,
)
from raftkv.state.commands import (
    Compare,
    CompareResult,
    CompareTarget,
    DeleteRange,
    Op,
    Put,
    Range,
    Txn,
)

R, W, RW = Perm.READ, Perm.WRITE, Perm.READWRITE
FROM_KEY = b"\0"


def no_leases(lease: int) -> tuple[bytes, ...]:
    return ()


def allowed(grants: Iterable[Grant], op: Op, leases: Mapping[int, Iterable[bytes]] = {},
            ) -> bool:  # fmt: skip
    return Grants(grants).allows_all(footprint(op, lambda lease: leases.get(lease, ())))


def cmp(key: bytes, range_end: bytes = b"") -> Compare:
    return Compare(key, CompareTarget.VERSION, CompareResult.EQUAL, 0, range_end)


# ------------------------------------------------------------------ reference §7 cases


def test_read_on_one_key() -> None:  # §7.17
    g = [Grant(b"foo", b"", R)]
    assert allowed(g, Range(b"foo"))
    assert not allowed(g, Range(b"foo", prefix_end(b"foo")))
    assert not allowed(g, Put(b"foo", b"v"))
    assert not allowed(g, Range(b"fo"))
    assert not allowed(g, Range(b"foo\0"))


def test_prefix_grant_and_from_key() -> None:  # §7.18
    g = [Grant(b"/a/", b"/a0", R)]
    assert allowed(g, Range(b"/a/", b"/a0"))
    assert allowed(g, Range(b"/a/x"))
    assert allowed(g, Range(b"/a/b", b"/a/c"))
    assert not allowed(g, Range(b"/a/", FROM_KEY))
    assert not allowed(g, Range(b"/a", b"/a0"))
    assert not allowed(g, Range(b"/a/", b"/a1"))


def test_adjacent_grants_join() -> None:  # §7.18
    g = [Grant(b"c", b"e", R), Grant(b"a", b"c", R)]
    assert allowed(g, Range(b"a", b"e"))
    assert allowed(g, Range(b"b", b"d"))
    assert not allowed(g, Range(b"a", b"f"))
    # a gap of one key breaks the union
    assert not allowed([Grant(b"a", b"c", R), Grant(b"c\0", b"e", R)], Range(b"a", b"e"))
    # point grants join too: [a, a\0) + [a\0, a\0\0)
    assert allowed([Grant(b"a", b"", R), Grant(b"a\0", b"", R)], Range(b"a", b"a\0\0"))


def test_from_key_grant() -> None:
    g = [Grant(b"m", FROM_KEY, R)]
    assert allowed(g, Range(b"m", FROM_KEY))
    assert allowed(g, Range(b"z\xff\xff"))
    assert allowed(g, Range(b"q", FROM_KEY))
    assert not allowed(g, Range(b"l", FROM_KEY))
    assert not allowed([Grant(b"m", b"\xff" * 8, R)], Range(b"m", FROM_KEY))


def test_write_only_user() -> None:  # §7.19
    g = [Grant(b"k", b"l", W)]
    assert allowed(g, Put(b"k1", b"v"))
    assert not allowed(g, Put(b"k1", b"v", prev_kv=True))
    assert allowed(g, DeleteRange(b"k1"))
    assert allowed(g, DeleteRange(b"k", b"l"))
    assert not allowed(g, DeleteRange(b"k1", prev_kv=True))
    assert not allowed(g, DeleteRange(b"k", b"l", prev_kv=True))
    assert not allowed(g, Range(b"k1"))
    assert allowed([Grant(b"k", b"l", RW)], DeleteRange(b"k", b"l", prev_kv=True))


def test_txn_compare_needs_read() -> None:  # §7.20
    g = [Grant(b"a", b"", W), Grant(b"b", b"", R)]
    assert not allowed(g, Txn((cmp(b"a"),), (Put(b"a"),)))
    assert allowed(g, Txn((cmp(b"b"),), (Put(b"a"),)))
    assert not allowed(g, Txn((cmp(b"b", b"c"),), (Put(b"a"),)))  # a range compare


def test_txn_failure_branch_is_checked() -> None:  # §7.20
    g = [Grant(b"a", b"", RW)]
    assert allowed(g, Txn((), (Put(b"a"),), (Range(b"a"),)))
    assert not allowed(g, Txn((), (Put(b"a"),), (Put(b"x"),)))
    assert not allowed(g, Txn((), (), (DeleteRange(b"a", FROM_KEY),)))


def test_nested_txn_ops_are_checked() -> None:  # §7.20, CVE-2026-33343
    g = [Grant(b"a", b"", RW)]
    deep: Op = Put(b"secret")
    for _ in range(4):
        deep = Txn((), (Range(b"a"),), (deep,))
    assert not allowed(g, deep)
    assert not allowed(g, Txn((), (Txn((cmp(b"secret"),)),)))
    assert allowed(g, Txn((), (Txn((cmp(b"a"),), (Put(b"a"),)),)))


def test_deep_nesting_does_not_overflow_the_stack() -> None:
    deep: Op = Put(b"secret")
    for _ in range(5_000):
        deep = Txn((), (), (deep,))
    assert footprint(deep, no_leases) == (Need(b"secret", b"", W),)


def test_put_prev_kv_and_lease_inside_txn() -> None:  # §7.20, CVE-2026-44283
    g = [Grant(b"a", b"", W)]
    leases = {7: [b"other"]}
    assert allowed(g, Txn((), (Put(b"a"),)))
    assert not allowed(g, Txn((), (Put(b"a", prev_kv=True),)))
    assert not allowed(g, Txn((), (), (Put(b"a", lease=7),)), leases)
    assert allowed([*g, Grant(b"other", b"", W)], Txn((), (Put(b"a", lease=7),)), leases)


def test_put_with_lease_needs_write_on_attached_keys() -> None:  # §7.22
    leases = {1: [b"mine1", b"mine2"], 2: [b"mine1", b"theirs"]}
    g = [Grant(b"mine", b"minf", W)]
    assert allowed(g, Put(b"mine3", lease=1), leases)
    assert not allowed(g, Put(b"mine3", lease=2), leases)
    assert allowed(g, Put(b"mine3", lease=3), leases)  # unknown lease: the put fails later
    assert not allowed([Grant(b"mine", b"minf", R)], Put(b"mine3", lease=1), leases)
    # READ on the attached keys is not enough
    assert not allowed([*g, Grant(b"theirs", b"", R)], Put(b"mine3", lease=2), leases)


def test_lease_keys_are_looked_up_once_per_lease() -> None:
    calls: list[int] = []

    def lease_keys(lease: int) -> list[bytes]:
        calls.append(lease)
        return [b"x", b"y"]

    txn = Txn((), (Put(b"a", lease=5), Put(b"b", lease=5)), (Put(b"c", lease=6),))
    needs = footprint(txn, lease_keys)
    assert calls == [5, 6]
    assert needs == tuple(Need(k, b"", W) for k in (b"a", b"x", b"y", b"b", b"c"))


def test_watch_from_key_with_one_key_grant() -> None:  # §7.21, CVE-2026-73499
    g = Grants([Grant(b"w", b"", R)])
    assert g.allows_all(watch_footprint(b"w", b""))
    assert not g.allows_all(watch_footprint(b"w", FROM_KEY))
    assert not g.allows_all(watch_footprint(b"w", b"x"))
    assert watch_footprint(b"w", FROM_KEY) == (Need(b"w", FROM_KEY, R),)  # as received
    assert Grants([Grant(b"w", FROM_KEY, R)]).allows_all(watch_footprint(b"w", FROM_KEY))


def test_lease_keys_footprint() -> None:  # §7.22, CVE-2023-32082
    needs = lease_keys_footprint([b"a", b"b", b"a"], R)
    assert needs == (Need(b"a", b"", R), Need(b"b", b"", R))
    g = Grants([Grant(b"a", b"", RW)])
    assert not g.allows_all(needs)
    assert g.allows_all(lease_keys_footprint([b"a"], W))
    assert g.allows_all(lease_keys_footprint([], W))


def test_lock_needs_readwrite_on_the_prefix() -> None:  # §7.25
    needs = lock_footprint(b"N")
    assert needs == (Need(b"N/", b"N0", RW),)
    assert Grants([Grant(b"N/", b"N0", RW)]).allows_all(needs)
    assert Grants([Grant(b"N/", b"N0", R), Grant(b"N/", b"N0", W)]).allows_all(needs)
    assert Grants([Grant(b"N", FROM_KEY, RW)]).allows_all(needs)
    assert not Grants([Grant(b"N/", b"N0", R)]).allows_all(needs)
    assert not Grants([Grant(b"N/", b"N0", W)]).allows_all(needs)
    assert not Grants([Grant(b"N", b"", RW)]).allows_all(needs)
    assert not Grants([Grant(b"N/", b"N/z", RW)]).allows_all(needs)
    with_lease = lock_footprint(b"N", [b"held"])
    assert with_lease == (Need(b"N/", b"N0", RW), Need(b"held", b"", W))
    assert not Grants([Grant(b"N/", b"N0", RW)]).allows_all(with_lease)


def test_election_needs_readwrite_on_the_prefix() -> None:
    assert election_footprint(b"e\xff") == (Need(b"e\xff/", b"e\xff0", RW),)
    assert election_footprint(b"e", [b"k"]) == (Need(b"e/", b"e0", RW), Need(b"k", b"", W))


def test_valid_permission_range() -> None:  # §7.14
    assert valid_permission_range(b"a", b"")
    assert valid_permission_range(b"a", b"b")
    assert valid_permission_range(b"a", FROM_KEY)
    assert valid_permission_range(b"\0", FROM_KEY)
    assert not valid_permission_range(b"", b"")
    assert not valid_permission_range(b"", b"b")
    assert not valid_permission_range(b"", FROM_KEY)
    assert not valid_permission_range(b"b", b"b")
    assert not valid_permission_range(b"b", b"a")
    assert not valid_permission_range(b"b", b"\0\0")


def test_prefix_end() -> None:
    assert prefix_end(b"foo") == b"fop"
    assert prefix_end(b"a\xff") == b"b"
    assert prefix_end(b"a\xff\xfe") == b"a\xff\xff"
    assert prefix_end(b"\xff\xff") == FROM_KEY
    assert prefix_end(b"") == FROM_KEY


def test_perm_pb() -> None:
    assert [Perm.from_pb(t) for t in (0, 1, 2)] == [R, W, RW]
    assert [p.to_pb() for p in (R, W, RW)] == [0, 1, 2]
    assert R | W == RW
    with pytest.raises(ValueError, match="unknown"):
        Perm.from_pb(3)
    with pytest.raises(ValueError, match="no authpb"):
        Perm(0).to_pb()


def test_readwrite_need_needs_both() -> None:
    need = Need(b"k", b"", RW)
    assert not Grants([Grant(b"k", b"", R)]).allows(need)
    assert not Grants([Grant(b"k", b"", W)]).allows(need)
    assert Grants([Grant(b"k", b"", R), Grant(b"a", b"z", W)]).allows(need)


def test_fail_closed_edges() -> None:
    everything = Grants([Grant(b"\0", FROM_KEY, RW)])
    assert not everything.allows(Need(b"k", b"", Perm(0)))  # asks for nothing: malformed
    assert everything.allows(Need(b"k", b"", RW))
    # a range selecting no key is checked as its key
    assert not Grants([Grant(b"a", b"", R)]).allows(Need(b"b", b"a", R))
    assert Grants([Grant(b"b", b"", R)]).allows(Need(b"b", b"a", R))
    # a stored grant holding no key (etcd < 3.5.8) grants nothing
    assert not Grants([Grant(b"b", b"a", R)]).allows(Need(b"b", b"", R))
    assert not Grants([Grant(b"b", b"b", R)]).allows(Need(b"b", b"", R))


def test_root_and_empty() -> None:
    root = Grants([], root=True)
    assert root.root
    assert root.allows(Need(b"", FROM_KEY, RW))
    assert root.allows_all(footprint(Txn((cmp(b"x"),), (Put(b"y", prev_kv=True),)), no_leases))
    empty = Grants([])
    assert not empty.root
    assert not empty.allows(Need(b"a", b"", R))
    assert not empty.allows(Need(b"a", FROM_KEY, W))
    # etcd's synthetic root permission, as a grant, covers every key
    assert Grants([Grant(b"", FROM_KEY, RW)]).allows(Need(b"", FROM_KEY, RW))


# ------------------------------------------------------------------ brute-force reference

ALPHABET = (b"\0", b"a", b"b")
KEY_POOL = [b"".join(p) for n in range(3) for p in itertools.product(ALPHABET, repeat=n)]
"""Keys and range ends of generated grants and requests: length <= 2."""
UNIVERSE = sorted(b"".join(p) for n in range(4) for p in itertools.product(ALPHABET, repeat=n))
"""Every endpoint in use: the pool, and each pool key + b"\\0" (a one-key interval's end)."""
LEASES = (0, 1, 1, 2, 3)  # 3 is unknown

keys = st.sampled_from(KEY_POOL)
perms = st.sampled_from([R, W, RW])
grant_ends = st.sampled_from([b"", FROM_KEY]) | keys  # fewer grants that hold no key
grants_st = st.lists(st.builds(Grant, keys, grant_ends, perms), max_size=6)
leases_st = st.fixed_dictionaries(
    {1: st.lists(keys, min_size=1, max_size=3), 2: st.lists(keys, max_size=3)}
)
compares = st.builds(cmp, keys, keys)
simple_ops: st.SearchStrategy[Op] = st.one_of(
    st.builds(Range, keys, keys),
    st.builds(Put, keys, st.just(b""), st.sampled_from(LEASES), st.booleans()),
    st.builds(DeleteRange, keys, keys, st.booleans()),
)
ops: st.SearchStrategy[Op] = st.recursive(
    simple_ops,
    lambda inner: st.builds(
        Txn,
        st.lists(compares, max_size=2).map(tuple),
        st.lists(inner, max_size=3).map(tuple),
        st.lists(inner, max_size=3).map(tuple),
    ),
    max_leaves=5,
)
txns = st.builds(
    Txn,
    st.lists(compares, max_size=2).map(tuple),
    st.lists(ops, max_size=2).map(tuple),
    st.lists(ops, max_size=2).map(tuple),
)


def universe_keys(key: bytes, range_end: bytes) -> set[bytes]:
    """The universe keys a grant or a need selects (a range selecting none: empty)."""
    if range_end == b"":
        return {key}
    if range_end == FROM_KEY:
        return {k for k in UNIVERSE if k >= key}
    return {k for k in UNIVERSE if key <= k < range_end}


def need_keys(key: bytes, range_end: bytes) -> set[bytes]:
    """What a need must be granted on: its keys; a range selecting none fails closed and
    needs its key."""
    return universe_keys(key, range_end) or {key}


def brute(grants: list[Grant], op: Op, leases: Mapping[int, Iterable[bytes]]) -> bool:
    """Whether ``op`` is allowed, walking the request itself (not :func:`footprint`)."""
    granted = {
        p: set().union(*(universe_keys(g.key, g.range_end) for g in grants if g.perm & p))
        for p in (R, W)
    }

    def ok(key: bytes, range_end: bytes, perm: Perm) -> bool:
        return need_keys(key, range_end) <= granted[perm]

    def walk(o: Op) -> bool:
        if isinstance(o, Range):
            return ok(o.key, o.range_end, R)
        if isinstance(o, DeleteRange):
            return ok(o.key, o.range_end, W) and (not o.prev_kv or ok(o.key, o.range_end, R))
        if isinstance(o, Put):
            attached = leases.get(o.lease, ()) if o.lease else ()
            return (ok(o.key, b"", W) and (not o.prev_kv or ok(o.key, b"", R))
                    and all(ok(k, b"", W) for k in attached))  # fmt: skip
        return (all(ok(c.key, c.range_end, R) for c in o.compare)
                and all(walk(x) for x in (*o.success, *o.failure)))  # fmt: skip

    return walk(op)


def test_universe_holds_every_endpoint() -> None:
    endpoints = set(KEY_POOL) | {k + b"\0" for k in KEY_POOL}
    assert endpoints <= set(UNIVERSE)


@settings(max_examples=400, deadline=None)
@given(grants_st, ops, leases_st)
def test_allowed_iff_footprint_inside_grants(grants: list[Grant], op: Op,
                                             leases: dict[int, list[bytes]]) -> None:  # fmt: skip
    expected = brute(grants, op, leases)
    event(f"allowed={expected}")
    assert allowed(grants, op, leases) == expected


@settings(max_examples=300, deadline=None)
@given(grants_st, simple_ops, leases_st)
def test_one_op_against_brute_force(grants: list[Grant], op: Op,
                                    leases: dict[int, list[bytes]]) -> None:  # fmt: skip
    """Single ops, where a lease's attached keys or ``prev_kv`` alone decide more often."""
    expected = brute(grants, op, leases)
    event(f"allowed={expected}")
    assert allowed(grants, op, leases) == expected


@settings(max_examples=300, deadline=None)
@given(grants_st, keys, keys, perms)
def test_one_need_against_brute_force(grants: list[Grant], key: bytes, range_end: bytes,
                                      perm: Perm) -> None:  # fmt: skip
    expected = all(
        need_keys(key, range_end)
        <= set().union(*(universe_keys(g.key, g.range_end) for g in grants if g.perm & p))
        for p in (R, W) if perm & p
    )  # fmt: skip
    assert Grants(grants).allows(Need(key, range_end, perm)) == expected


# ------------------------------------------------------------------ txn structure


def walk_needs(op: Op, leases: Mapping[int, Iterable[bytes]]) -> set[Need]:
    """An independent recursive walk of what ``op`` needs."""
    if isinstance(op, Range):
        return {Need(op.key, op.range_end, R)}
    if isinstance(op, DeleteRange):
        return {Need(op.key, op.range_end, W)} | (
            {Need(op.key, op.range_end, R)} if op.prev_kv else set()
        )
    if isinstance(op, Put):
        out = {Need(op.key, b"", W)} | ({Need(op.key, b"", R)} if op.prev_kv else set())
        if op.lease:
            out |= {Need(k, b"", W) for k in leases.get(op.lease, ())}
        return out
    out = {Need(c.key, c.range_end, R) for c in op.compare}
    for sub in (*op.success, *op.failure):
        out |= walk_needs(sub, leases)
    return out


@settings(max_examples=150, deadline=None)
@given(txns, leases_st)
def test_txn_footprint_is_compares_plus_both_branches(
    txn: Txn, leases: dict[int, list[bytes]]
) -> None:
    def lk(lease: int) -> list[bytes]:
        return leases.get(lease, [])

    fp = footprint(txn, lk)
    assert len(fp) == len(set(fp))
    assert set(fp) == walk_needs(txn, leases)
    parts = {Need(c.key, c.range_end, R) for c in txn.compare}
    for sub in (*txn.success, *txn.failure):
        parts |= set(footprint(sub, lk))
    assert set(fp) == parts


def _insert(txn: Txn, path: list[int], op: Op, failure: bool, at: int) -> Txn:
    """``txn`` with ``op`` added to a branch of the nested txn reached by ``path``."""
    branch = txn.failure if failure else txn.success
    nested = [i for i, o in enumerate(branch) if isinstance(o, Txn)]
    if path and nested:
        i = nested[path[0] % len(nested)]
        sub = branch[i]
        assert isinstance(sub, Txn)
        branch = (*branch[:i], _insert(sub, path[1:], op, failure, at), *branch[i + 1:])
    else:
        pos = at % (len(branch) + 1)
        branch = (*branch[:pos], op, *branch[pos:])
    if failure:
        return Txn(txn.compare, txn.success, branch)
    return Txn(txn.compare, branch, txn.failure)


@settings(max_examples=150, deadline=None)
@given(grants_st, txns, ops, st.booleans(), st.lists(st.integers(0, 3), max_size=3),
       st.integers(0, 5), leases_st)  # fmt: skip
def test_adding_an_op_never_allows_a_denied_txn(grants: list[Grant], txn: Txn, op: Op,
                                               failure: bool, path: list[int], at: int,
                                               leases: dict[int, list[bytes]]) -> None:  # fmt: skip
    bigger = _insert(txn, path, op, failure, at)
    assert set(footprint(txn, no_leases)) <= set(footprint(bigger, no_leases))
    if not allowed(grants, txn, leases):
        assert not allowed(grants, bigger, leases)
    if allowed(grants, bigger, leases):
        assert allowed(grants, txn, leases)
        assert allowed(grants, op, leases)


@given(txns, st.lists(st.builds(Grant, keys, keys, perms), max_size=3), leases_st)
def test_root_allows_everything_empty_nothing(txn: Txn, grants: list[Grant],
                                              leases: dict[int, list[bytes]]) -> None:  # fmt: skip
    fp = footprint(txn, lambda lease: leases.get(lease, ()))
    assert Grants(grants, root=True).allows_all(fp)
    empty = Grants([])
    assert not any(empty.allows(need) for need in fp)
    assert empty.allows_all(fp) == (not fp)



@settings(max_examples=400, deadline=None)
@given(grants_st, st.one_of(simple_ops, ops), leases_st)
def test_allows_op_is_allows_all_of_the_footprint(
        grants: list[Grant], op: Op,
        leases: dict[int, list[bytes]]) -> None:
    """The fast path of the commonest requests answers exactly as the footprint does."""
    g = Grants(grants)
    def lease_keys(i: int) -> list[bytes]:
        return leases.get(i, [])
    assert g.allows_op(op, lease_keys) == g.allows_all(footprint(op, lease_keys))
    assert g.allows_op(op, lease_keys) == brute(grants, op, leases)
