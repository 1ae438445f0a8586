"""Hypothesis strategies for every command and result type."""

from __future__ import annotations

from enum import IntEnum
from typing import TypeVar

from hypothesis import strategies as st

from raftkv.state import commands as c

INT64 = st.integers(min_value=-(1 << 63), max_value=(1 << 63) - 1)
SMALL = st.integers(min_value=-3, max_value=300) | INT64
KEYS = st.binary(max_size=6)


E = TypeVar("E", bound=IntEnum)


def _enum(e: type[E]) -> st.SearchStrategy[E]:
    return st.sampled_from(list(e))


ranges = st.builds(
    c.Range, KEYS, KEYS, SMALL, SMALL, _enum(c.SortOrder), _enum(c.SortTarget), st.booleans(),
    st.booleans(), st.booleans(), SMALL, SMALL, SMALL, SMALL,
)  # fmt: skip
puts = st.builds(c.Put, KEYS, st.binary(max_size=8), SMALL, st.booleans(), st.booleans(),
                 st.booleans())  # fmt: skip
deletes = st.builds(c.DeleteRange, KEYS, KEYS, st.booleans())
compares = st.builds(
    c.Compare, KEYS, _enum(c.CompareTarget), _enum(c.CompareResult), SMALL | KEYS, KEYS
)
txns: st.SearchStrategy[c.Txn] = st.recursive(
    st.builds(c.Txn, st.tuples(), st.tuples(), st.tuples()),
    lambda inner: st.builds(
        c.Txn,
        st.lists(compares, max_size=3).map(tuple),
        st.lists(ranges | puts | deletes | inner, max_size=3).map(tuple),
        st.lists(ranges | puts | deletes | inner, max_size=3).map(tuple),
    ),
    max_leaves=6,
)
commands: st.SearchStrategy[c.Command] = st.one_of(
    ranges, puts, deletes, txns,
    st.builds(c.Compact, SMALL, st.booleans()),
    st.builds(c.LeaseGrant, SMALL, SMALL, SMALL),
    st.builds(c.LeaseRevoke, SMALL),
    st.builds(c.LeaseRenew, SMALL, SMALL),
    st.builds(
        c.LeaseCheckpoint,
        st.lists(st.builds(c.LeaseCheckpointItem, SMALL, SMALL), max_size=3).map(tuple),
        SMALL,
    ),
)  # fmt: skip
requests = st.builds(c.Request, SMALL, SMALL, commands)

kvs = st.builds(c.KeyValue, KEYS, SMALL, SMALL, SMALL, st.binary(max_size=8), SMALL)
range_results = st.builds(c.RangeResult, SMALL, st.lists(kvs, max_size=3).map(tuple),
                          st.booleans(), SMALL)  # fmt: skip
put_results = st.builds(c.PutResult, SMALL, st.none() | kvs)
delete_results = st.builds(c.DeleteResult, SMALL, SMALL, st.lists(kvs, max_size=3).map(tuple))
txn_results: st.SearchStrategy[c.TxnResult] = st.recursive(
    st.builds(c.TxnResult, SMALL, st.booleans(), st.tuples()),
    lambda inner: st.builds(
        c.TxnResult,
        SMALL,
        st.booleans(),
        st.lists(range_results | put_results | delete_results | inner, max_size=3).map(tuple),
    ),
    max_leaves=5,
)
responses: st.SearchStrategy[c.Response] = st.one_of(
    range_results, put_results, delete_results, txn_results,
    st.builds(c.CompactResult, SMALL),
    st.builds(c.LeaseGrantResult, SMALL, SMALL, SMALL),
    st.builds(c.LeaseRevokeResult, SMALL),
    st.builds(c.LeaseRenewResult, SMALL, SMALL, SMALL),
    st.builds(c.LeaseCheckpointResult, SMALL),
    st.builds(c.ErrorResult, _enum(c.ErrorCode), st.text(max_size=10), SMALL),
)  # fmt: skip
events = st.builds(c.Event, _enum(c.EventType), kvs, st.none() | kvs)
