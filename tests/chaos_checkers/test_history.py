"""The history format: events, JSON lines, pairing into operations, EDN."""

from __future__ import annotations

import io
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chaos.history import (
    Event,
    EventType,
    History,
    HistoryError,
    Recorder,
    Value,
    decode_value,
    encode_value,
    to_edn,
)
from tests.chaos_checkers.gen import op_events

INVOKE, OK, FAIL, INFO = EventType.INVOKE, EventType.OK, EventType.FAIL, EventType.INFO

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.text()
    | st.binary()
    | st.floats(allow_nan=False, allow_infinity=False)
)
values: st.SearchStrategy[Value] = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4).map(tuple)
        | st.dictionaries(st.text(max_size=5), inner, max_size=4)
    ),
    max_leaves=12,
)


@given(values)
def test_values_round_trip_through_json(v: Value) -> None:
    e = Event(OK, 1, 5, "write", b"k\xff", v)
    back = Event.from_json(e.to_json())
    assert back == e
    assert type(back.value) is type(v) or isinstance(v, dict)


def test_bytes_tuples_and_dollar_keys_are_encoded_as_documented() -> None:
    assert encode_value(b"\x00\xff") == {"$bytes": "AP8="}
    assert encode_value((1, (2, b"a"))) == [1, [2, {"$bytes": "YQ=="}]]
    assert encode_value({"$bytes": 1}) == {"$map": {"$bytes": 1}}
    assert decode_value({"$map": {"$bytes": 1}}) == {"$bytes": 1}
    assert decode_value([1, [2]]) == (1, (2,))
    with pytest.raises(HistoryError):
        decode_value({"$nope": 1})
    with pytest.raises(TypeError):
        encode_value({1: 2})  # type: ignore[dict-item]


def test_json_line_shape_omits_none_fields() -> None:
    line = Event(INVOKE, 3, 1200, "read", "k1").to_json()
    assert line == '{"type":"invoke","process":3,"time":1200,"f":"read","key":"k1"}'


@pytest.mark.parametrize(
    "line",
    [
        "not json",
        '{"type":"nope","process":1,"time":1,"f":"read"}',
        '{"type":"ok","process":1,"time":"1","f":"read"}',
        '{"type":"ok","process":1,"time":1,"f":"read","key":[1]}',
        '{"type":"ok","process":true,"time":1,"f":"read"}',
    ],
)
def test_bad_lines_are_rejected(line: str) -> None:
    with pytest.raises(HistoryError):
        Event.from_json(line)


def _sample() -> History:
    return History(
        [
            Event(INVOKE, 0, 10, "write", "x", 1),
            Event(INVOKE, 1, 11, "read", "x"),
            Event(OK, 0, 20, "write", "x", 1),
            Event(INVOKE, 2, 21, "cas", "x", (1, 2)),
            Event(INFO, 2, 30, "cas", "x", None, "timeout"),
            Event(OK, 1, 31, "read", "x", 1),
            Event(INVOKE, 3, 32, "write", "y", b"v"),
            Event(FAIL, 3, 33, "write", "y", None, "no leader"),
            Event(INVOKE, 4, 40, "write", "y", 7),
        ]
    )


def test_pairing_builds_operations_in_invocation_order() -> None:
    ops = _sample().operations
    assert [(o.process, o.f, o.status) for o in ops] == [
        (0, "write", OK),
        (1, "read", OK),
        (2, "cas", INFO),
        (3, "write", FAIL),
        (4, "write", INFO),
    ]
    w, r, cas, failed, pending = ops
    assert (w.call, w.ret, w.input, w.output) == (10, 20, 1, 1)
    assert (r.call, r.ret, r.output) == (11, 31, 1)
    assert cas.ret == math.inf
    assert cas.indeterminate
    assert cas.error == "timeout"
    assert cas.output is None
    assert cas.input == (1, 2)
    assert failed.ret == 33
    assert not failed.indeterminate
    assert pending.ret == math.inf
    assert pending.complete_index == -1
    assert [o.index for o in ops] == [0, 1, 2, 3, 4]
    assert {k: len(v) for k, v in _sample().by_key().items()} == {"x": 3, "y": 2}


def test_jsonl_round_trip_through_text_and_streams() -> None:
    h = _sample()
    assert History.loads(h.dumps()).events == h.events
    buf = io.StringIO()
    h.dump(buf)
    buf.seek(0)
    assert History.load(buf).operations == h.operations
    assert History.loads("\n" + h.dumps() + "\n\n").events == h.events


def test_from_operations_rebuilds_an_equivalent_history() -> None:
    h = _sample()
    again = History.from_operations(h.operations)
    strip = [
        (o.process, o.f, o.key, o.input, o.output, o.call, o.ret, o.status)
        for o in again.operations
    ]
    assert strip == [
        (o.process, o.f, o.key, o.input, o.output, o.call, o.ret, o.status) for o in h.operations
    ]


@pytest.mark.parametrize(
    ("events", "message"),
    [
        ([Event(INVOKE, 0, 1, "read", "x"), Event(INVOKE, 0, 2, "read", "x")], "twice"),
        ([Event(OK, 0, 1, "read", "x")], "without invocation"),
        ([Event(INVOKE, 0, 1, "read", "x"), Event(OK, 0, 2, "write", "x")], "does not match"),
        ([Event(INVOKE, 0, 1, "read", "x"), Event(OK, 0, 2, "read", "y")], "does not match"),
        ([Event(INVOKE, 0, 5, "read", "x"), Event(OK, 0, 4, "read", "x")], "before"),
    ],
)
def test_malformed_histories_are_rejected(events: list[Event], message: str) -> None:
    with pytest.raises(HistoryError, match=message):
        History(events)


def test_describe_is_readable() -> None:
    w, r, cas, failed, _ = _sample().operations
    assert w.describe() == "p0 write 1"
    assert r.describe() == "p1 read -> 1"
    assert cas.describe() == "p2 cas (1, 2) [info: timeout]"
    assert failed.describe() == "p3 write b'v' [fail: no leader]"


def test_edn_uses_jepsen_independent_tuples() -> None:
    h = History(
        [
            *op_events(7, "cas", "x", (1, 2), 5, 9, OK, True),
            Event(INVOKE, "nemesis", 10, "start", None, b"\xff"),
        ]
    )
    lines = to_edn(h).splitlines()
    assert lines[0] == (
        '{:index 0, :type :invoke, :f :cas, :process 7, :time 5, :value ["x" [1 2]]}'
    )
    assert lines[1] == '{:index 1, :type :ok, :f :cas, :process 7, :time 9, :value ["x" true]}'
    assert (
        lines[2] == "{:index 2, :type :invoke, :f :start, :process :nemesis, :time 10, "
        ':value "/w=="}'
    )


def test_recorder_stamps_events_with_the_injected_clock_and_streams_them() -> None:
    ticks = iter(range(100, 1000, 10))
    sink = io.StringIO()
    rec = Recorder(lambda: next(ticks), sink)
    a = rec.invoke(1, "write", "x", b"\x01")
    b = rec.invoke(2, "read", "x")
    rec.complete(a, OK, b"\x01")
    rec.complete(b, INFO, error="timeout")
    with pytest.raises(HistoryError):
        rec.complete(b, INVOKE)
    h = rec.history()
    assert [(e.type, e.time) for e in h.events] == [
        (INVOKE, 100),
        (INVOKE, 110),
        (OK, 120),
        (INFO, 130),
    ]
    assert h.operations[1].error == "timeout"
    assert History.loads(sink.getvalue()).events == h.events
