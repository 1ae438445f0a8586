"""The recorded operation history, in Jepsen's shape.

A client-side recorder appends one :class:`Event` when a client *invokes* an operation and
one when it learns the outcome. The outcome is one of:

* ``ok`` — the operation definitely took effect, and ``value`` is its result;
* ``fail`` — the operation definitely did **not** take effect (e.g. the server rejected it
  before proposing it);
* ``info`` — indeterminate: a timeout, a lost connection, a crashed client. The operation
  may take effect at any point after its invocation, or never.

:class:`History` pairs each invocation with its completion into an :class:`Operation`
(call time, return time, input, output). An invocation that never completes is treated as
``info`` (its return time is ``math.inf``).

Wire format (JSON lines)
------------------------
One JSON object per line, in the order the events were recorded::

    {"type": "invoke", "process": 3, "time": 1200, "f": "write", "key": "k1", "value": 5}
    {"type": "ok", "process": 3, "time": 1350, "f": "write", "key": "k1", "value": 5}
    {"type": "info", "process": 4, "time": 9000, "f": "cas", "key": "k1",
     "value": [5, 6], "error": "deadline exceeded"}

``time`` is a monotonic clock in integer nanoseconds. ``key``, ``value`` and ``error`` are
omitted when ``None``. Values are JSON values with these conventions, so that every
:data:`Value` round-trips exactly:

* ``bytes`` are written as ``{"$bytes": "<standard base64>"}``;
* tuples are written as JSON arrays, and every JSON array is read back as a tuple (so
  values stay hashable: ``(5, 6)`` and ``[5, 6]`` are the same value);
* mappings (string keys only) are written as JSON objects, except that a mapping with a key
  that starts with ``$`` is wrapped as ``{"$map": {...}}`` so it cannot be mistaken for a tag.

:func:`to_edn` renders a history as Jepsen EDN (one map per line) for Knossos or Elle.
"""

from __future__ import annotations

import base64
import enum
import json
import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import IO, TypeAlias

__all__ = [
    "Event",
    "EventType",
    "History",
    "HistoryError",
    "Key",
    "Operation",
    "Process",
    "Recorder",
    "Value",
    "decode_value",
    "encode_value",
    "to_edn",
]

Value: TypeAlias = (
    "bool | int | float | str | bytes | tuple[Value, ...] | Mapping[str, Value] | None"
)
"""A JSON-like value that may also hold ``bytes`` and tuples (see the module docstring)."""

Key: TypeAlias = "str | bytes | int | None"
"""The object an operation acts on; checkers partition histories by key."""

Process: TypeAlias = "int | str"
"""A client id (Jepsen's ``:process``); a string such as ``"nemesis"`` for non-clients."""


class HistoryError(ValueError):
    """The events do not form a well-formed history (the recorder was misused)."""


class EventType(enum.StrEnum):
    """The four kinds of history event."""

    INVOKE = "invoke"
    OK = "ok"
    FAIL = "fail"
    INFO = "info"


@dataclass(frozen=True, slots=True)
class Event:
    """One line of the history.

    Attributes:
        type: invoke, or the completion kind.
        process: the client that issued the operation; a process has at most one
            operation in flight.
        time: monotonic time in nanoseconds when the event was recorded.
        f: the operation's function, e.g. ``"read"``, ``"write"``, ``"cas"``.
        key: the object acted on (``None`` for whole-database operations).
        value: the input on ``invoke``; the result on ``ok``; anything on fail/info.
        error: a human-readable reason for ``fail`` / ``info``.
    """

    type: EventType
    process: Process
    time: int
    f: str
    key: Key = None
    value: Value = None
    error: str | None = None

    def to_json(self) -> str:
        """Encodes the event as one JSON line (without the newline)."""
        obj: dict[str, object] = {
            "type": self.type.value,
            "process": self.process,
            "time": self.time,
            "f": self.f,
        }
        if self.key is not None:
            obj["key"] = encode_value(self.key)
        if self.value is not None:
            obj["value"] = encode_value(self.value)
        if self.error is not None:
            obj["error"] = self.error
        return json.dumps(obj, separators=(",", ":"), allow_nan=False)

    @classmethod
    def from_json(cls, line: str) -> Event:
        """Decodes one JSON line written by :meth:`to_json`.

        Raises:
            HistoryError: the line is not a valid event.
        """
        try:
            obj = json.loads(line)
            key = decode_value(obj.get("key"))
            if not isinstance(key, str | bytes | int | None) or isinstance(key, bool):
                raise HistoryError(f"bad key {key!r}")
            return cls(
                type=EventType(obj["type"]),
                process=_check_process(obj["process"]),
                time=_check_int(obj["time"]),
                f=str(obj["f"]),
                key=key,
                value=decode_value(obj.get("value")),
                error=None if obj.get("error") is None else str(obj["error"]),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise HistoryError(f"bad event line {line!r}: {exc}") from exc


def _check_int(x: object) -> int:
    if not isinstance(x, int) or isinstance(x, bool):
        raise HistoryError(f"expected an integer, got {x!r}")
    return x


def _check_process(x: object) -> Process:
    if isinstance(x, str):
        return x
    return _check_int(x)


def encode_value(v: Value) -> object:
    """Turns a :data:`Value` into a JSON-serialisable object (see the module docstring).

    Raises:
        TypeError: ``v`` is not a :data:`Value` (e.g. a mapping with a non-string key).
    """
    if v is None or isinstance(v, bool | int | float | str):
        return v
    if isinstance(v, bytes):
        return {"$bytes": base64.b64encode(v).decode("ascii")}
    if isinstance(v, tuple | list):
        return [encode_value(x) for x in v]
    if isinstance(v, Mapping):
        out: dict[str, object] = {}
        for k, x in v.items():
            if not isinstance(k, str):
                raise TypeError(f"mapping keys must be str, got {k!r}")
            out[k] = encode_value(x)
        if any(k.startswith("$") for k in out):
            return {"$map": out}
        return out
    raise TypeError(f"not a history value: {v!r}")


def decode_value(obj: object) -> Value:
    """Inverse of :func:`encode_value`: JSON arrays become tuples, tags are unwrapped.

    Raises:
        HistoryError: an unknown ``$`` tag or a non-JSON object.
    """
    if obj is None or isinstance(obj, bool | int | float | str):
        return obj
    if isinstance(obj, list):
        return tuple(decode_value(x) for x in obj)
    if isinstance(obj, dict):
        if len(obj) == 1:
            ((tag, inner),) = obj.items()
            if tag == "$bytes" and isinstance(inner, str):
                return base64.b64decode(inner.encode("ascii"), validate=True)
            if tag == "$map" and isinstance(inner, dict):
                return {str(k): decode_value(x) for k, x in inner.items()}
        if any(str(k).startswith("$") for k in obj):
            raise HistoryError(f"unknown tagged value {obj!r}")
        return {str(k): decode_value(x) for k, x in obj.items()}
    raise HistoryError(f"not a JSON value: {obj!r}")


@dataclass(frozen=True, slots=True)
class Operation:
    """An invocation paired with its completion.

    Invariant: ``call <= ret``; ``ret`` is ``math.inf`` exactly when ``status`` is
    ``info`` (the operation may take effect at any time after ``call``, or never).

    Attributes:
        index: position in :attr:`History.operations`, ordered by invocation.
        process: the client.
        f: the function.
        key: the object acted on.
        input: the invocation's value.
        output: the completion's value for ``ok``; ``None`` otherwise.
        call: invocation time (ns).
        ret: completion time (ns), or ``math.inf`` when indeterminate.
        status: ``ok``, ``fail`` or ``info``.
        error: the completion's error text, if any.
        invoke_index: position of the invoke event in :attr:`History.events`.
        complete_index: position of the completion event, or ``-1`` if none was recorded.
    """

    index: int
    process: Process
    f: str
    key: Key
    input: Value
    output: Value
    call: int
    ret: float
    status: EventType
    error: str | None = None
    invoke_index: int = -1
    complete_index: int = -1

    @property
    def indeterminate(self) -> bool:
        """True for ``info`` operations (outcome unknown)."""
        return self.status is EventType.INFO

    def describe(self) -> str:
        """A one-line rendering, e.g. ``p3 cas (1, 2) -> True``."""
        text = f"p{self.process} {self.f}"
        if self.input is not None:
            text += f" {self.input!r}"
        if self.status is EventType.OK:
            if self.f == "read" or self.output not in (None, self.input):
                text += f" -> {self.output!r}"
        else:
            text += f" [{self.status.value}{': ' + self.error if self.error else ''}]"
        return text


class History:
    """An immutable, validated sequence of events and the operations they form.

    Invariants (checked on construction, :class:`HistoryError` otherwise): a process has at
    most one operation in flight; every completion follows an invocation by the same
    process with the same ``f`` and ``key``; a completion's time is not before its
    invocation's.
    """

    __slots__ = ("_events", "_operations")

    def __init__(self, events: Iterable[Event]) -> None:
        """Builds a history from events in recorded order.

        Raises:
            HistoryError: the events are not well formed.
        """
        self._events: tuple[Event, ...] = tuple(events)
        self._operations: tuple[Operation, ...] = _pair(self._events)

    @property
    def events(self) -> tuple[Event, ...]:
        """The events, in recorded order."""
        return self._events

    @property
    def operations(self) -> tuple[Operation, ...]:
        """The operations, ordered by invocation; pending invocations become ``info``."""
        return self._operations

    def __len__(self) -> int:
        return len(self._operations)

    def __iter__(self) -> Iterator[Operation]:
        return iter(self._operations)

    def by_key(self) -> dict[Key, list[Operation]]:
        """Groups operations by key, each group in invocation order."""
        groups: dict[Key, list[Operation]] = {}
        for op in self._operations:
            groups.setdefault(op.key, []).append(op)
        return groups

    def dumps(self) -> str:
        """The history as JSON lines (one event per line, trailing newline)."""
        return "".join(e.to_json() + "\n" for e in self._events)

    def dump(self, fp: IO[str]) -> None:
        """Writes the history as JSON lines to a text stream."""
        for e in self._events:
            fp.write(e.to_json() + "\n")

    @classmethod
    def loads(cls, text: str) -> History:
        """Parses JSON lines (blank lines are ignored)."""
        return cls(Event.from_json(line) for line in text.splitlines() if line.strip())

    @classmethod
    def load(cls, fp: IO[str]) -> History:
        """Reads JSON lines from a text stream."""
        return cls(Event.from_json(line) for line in fp if line.strip())

    @classmethod
    def from_operations(cls, ops: Sequence[Operation]) -> History:
        """Rebuilds events from operations (e.g. a sub-history), ordered by time.

        An ``info`` operation with ``complete_index == -1`` gets no completion event.
        """
        stamped: list[tuple[float, int, int, Event]] = []
        for i, op in enumerate(ops):
            stamped.append((op.call, 0, i, _invoke_event(op)))
            if op.status is not EventType.INFO or op.complete_index != -1:
                done = Event(
                    op.status,
                    op.process,
                    _completion_time(op),
                    op.f,
                    op.key,
                    op.output if op.status is EventType.OK else None,
                    op.error,
                )
                stamped.append((done.time, 1, i, done))
        stamped.sort(key=lambda s: s[:3])
        return cls(s[3] for s in stamped)


def _invoke_event(op: Operation) -> Event:
    return Event(EventType.INVOKE, op.process, op.call, op.f, op.key, op.input)


def _completion_time(op: Operation) -> int:
    if math.isinf(op.ret):
        return op.call
    return int(op.ret)


@dataclass(slots=True)
class _Pending:
    invoke_index: int
    event: Event


def _pair(events: Sequence[Event]) -> tuple[Operation, ...]:
    """Pairs invocations with completions; see :class:`History` for the rules."""
    pending: dict[Process, _Pending] = {}
    slots: list[tuple[int, Event, int, Event | None]] = []
    for i, e in enumerate(events):
        if e.type is EventType.INVOKE:
            if e.process in pending:
                raise HistoryError(f"event {i}: process {e.process!r} invoked twice: {e}")
            pending[e.process] = _Pending(i, e)
            continue
        p = pending.pop(e.process, None)
        if p is None:
            raise HistoryError(f"event {i}: completion without invocation: {e}")
        if (p.event.f, p.event.key) != (e.f, e.key):
            raise HistoryError(f"event {i}: completion {e} does not match {p.event}")
        if e.time < p.event.time:
            raise HistoryError(f"event {i}: completes before it was invoked: {e}")
        slots.append((p.invoke_index, p.event, i, e))
    slots.extend((p.invoke_index, p.event, -1, None) for p in pending.values())
    slots.sort(key=lambda s: s[0])
    return tuple(_operation(n, *s) for n, s in enumerate(slots))


def _operation(
    n: int, invoke_index: int, inv: Event, complete_index: int, done: Event | None
) -> Operation:
    status = EventType.INFO if done is None else done.type
    ret: float = math.inf if status is EventType.INFO or done is None else done.time
    return Operation(
        index=n,
        process=inv.process,
        f=inv.f,
        key=inv.key,
        input=inv.value,
        output=done.value if done is not None and status is EventType.OK else None,
        call=inv.time,
        ret=ret,
        status=status,
        error=None if done is None else done.error,
        invoke_index=invoke_index,
        complete_index=complete_index,
    )


class Recorder:
    """Records events as they happen, for a workload runner.

    Time comes from an injected monotonic clock in nanoseconds (e.g.
    ``time.monotonic_ns``), so tests can drive it. If ``sink`` is given, each event is
    written to it as a JSON line and flushed at once, so a crashed run keeps its history.
    Not thread-safe: use it from one thread (or one asyncio loop).
    """

    def __init__(self, clock_ns: Callable[[], int], sink: IO[str] | None = None) -> None:
        """Creates an empty recorder.

        Args:
            clock_ns: a monotonic clock in integer nanoseconds.
            sink: an optional text stream that receives every event as it is recorded.
        """
        self._clock_ns = clock_ns
        self._sink = sink
        self._events: list[Event] = []

    def invoke(self, process: Process, f: str, key: Key = None, value: Value = None) -> Event:
        """Records that ``process`` is about to send an operation."""
        return self._add(Event(EventType.INVOKE, process, self._clock_ns(), f, key, value))

    def complete(
        self, invocation: Event, outcome: EventType, value: Value = None, error: str | None = None
    ) -> Event:
        """Records the outcome of ``invocation`` (``ok``, ``fail`` or ``info``).

        Raises:
            HistoryError: ``outcome`` is ``invoke``.
        """
        if outcome is EventType.INVOKE:
            raise HistoryError("complete() needs ok, fail or info")
        inv = invocation
        return self._add(
            Event(outcome, inv.process, self._clock_ns(), inv.f, inv.key, value, error)
        )

    def history(self) -> History:
        """The events so far, as a validated :class:`History`."""
        return History(self._events)

    def _add(self, event: Event) -> Event:
        self._events.append(event)
        if self._sink is not None:
            self._sink.write(event.to_json() + "\n")
            self._sink.flush()
        return event


# --- Jepsen EDN -----------------------------------------------------------------------


def to_edn(history: History) -> str:
    """Renders the history as Jepsen EDN, one op map per line.

    Keyed operations use ``jepsen.independent``'s convention: ``:value [key value]``.
    Functions become keywords (``:write``), tuples become vectors, mappings become maps,
    strings and ``bytes`` become strings (``bytes`` that are not UTF-8 are rendered as
    base64 text: this direction is lossy and meant for Knossos / Elle, not for reloading).

    Returns:
        The EDN text, with a trailing newline.
    """
    lines = []
    for i, e in enumerate(history.events):
        value = _edn(e.value) if e.key is None else f"[{_edn(e.key)} {_edn(e.value)}]"
        process = f":{e.process}" if isinstance(e.process, str) else str(e.process)
        fields = [
            f":index {i}",
            f":type :{e.type.value}",
            f":f :{e.f}",
            f":process {process}",
            f":time {e.time}",
            f":value {value}",
        ]
        if e.error is not None:
            fields.append(f":error {_edn(e.error)}")
        lines.append("{" + ", ".join(fields) + "}\n")
    return "".join(lines)


def _edn(v: Value) -> str:
    if v is None:
        return "nil"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "##NaN"
        return repr(v) if math.isfinite(v) else ("##Inf" if v > 0 else "##-Inf")
    if isinstance(v, bytes):
        try:
            return json.dumps(v.decode("utf-8"))
        except UnicodeDecodeError:
            return json.dumps(base64.b64encode(v).decode("ascii"))
    if isinstance(v, str):
        return json.dumps(v)  # EDN string escapes are a superset of these
    if isinstance(v, tuple):
        return "[" + " ".join(_edn(x) for x in v) + "]"
    return "{" + ", ".join(f"{_edn(k)} {_edn(x)}" for k, x in v.items()) + "}"
