"""The binary codec: deterministic, canonical, total on valid values, strict on input."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from raftkv.state import codec
from raftkv.state.codec import DecodeError
from raftkv.state.commands import (
    Compare,
    CompareResult,
    CompareTarget,
    Event,
    KeyValue,
    Put,
    Range,
    Request,
    Response,
    Txn,
)
from raftkv.state.revision import Revision
from tests.state import strategies as s


@settings(max_examples=300, deadline=None)
@given(s.requests)
def test_request_roundtrip_is_exact_and_canonical(request: Request) -> None:
    data = codec.encode_request(request)
    decoded = codec.decode_request(data)
    assert decoded == request
    assert codec.encode_request(decoded) == data


@settings(max_examples=200, deadline=None)
@given(s.responses)
def test_response_roundtrip(response: Response) -> None:
    assert codec.decode_response(codec.encode_response(response)) == response


@settings(max_examples=50, deadline=None)
@given(s.events)
def test_event_roundtrip(event: Event) -> None:
    assert codec.decode(codec.encode(event), Event) == event


@settings(max_examples=200, deadline=None)
@given(s.requests, st.data())
def test_truncated_or_extended_input_is_rejected(request: Request, data: st.DataObject) -> None:
    raw = codec.encode_request(request)
    cut = data.draw(st.integers(min_value=0, max_value=len(raw) - 1))
    with pytest.raises(DecodeError):
        codec.decode_request(raw[:cut])
    with pytest.raises(DecodeError):
        codec.decode_request(raw + b"\x00")


@given(st.binary(max_size=40))
def test_garbage_never_crashes_with_anything_but_decode_error(raw: bytes) -> None:
    with contextlib.suppress(DecodeError):
        codec.decode_request(raw)


def test_small_and_default_fields_are_omitted() -> None:
    assert len(codec.encode_request(Request(1, 2, Range(b"k")))) <= 12
    assert codec.encode(KeyValue(b"k")) == bytes([1, 12, 1, 1]) + b"k"


def test_wrong_types_are_refused() -> None:
    with pytest.raises(DecodeError):
        codec.decode_request(codec.encode(KeyValue(b"k")))
    with pytest.raises(TypeError):
        codec.encode(Put("k", b"v"))  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        codec.encode(Put(b"k", lease=1 << 63))
    with pytest.raises(TypeError):
        codec.encode(Put(b"k", prev_kv=1))  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        codec.encode(object())
    with pytest.raises(DecodeError):
        codec.decode_request(b"\x02" + codec.encode_request(Request(0, 0, Put(b"k")))[1:])


def test_fewer_fields_decode_with_defaults() -> None:
    # An entry written before fields were appended decodes with their defaults.
    nested = Txn((Compare(b"a", CompareTarget.VALUE, CompareResult.EQUAL, b"x"),), (Put(b"a"),))
    raw = codec.encode_request(Request(0, 0, nested))
    assert codec.decode_request(raw).op == nested


@given(st.tuples(st.integers(0, 2**64 - 1), st.integers(0, 2**64 - 1)),
       st.tuples(st.integers(0, 2**64 - 1), st.integers(0, 2**64 - 1)))  # fmt: skip
def test_revision_encoding_preserves_order(a: tuple[int, int], b: tuple[int, int]) -> None:
    ra, rb = Revision(*a), Revision(*b)
    assert (ra < rb) == (ra.to_bytes() < rb.to_bytes()) == (a < b)
    assert Revision.from_bytes(ra.to_bytes()) == ra
