"""The peer protocol ``raftkv.raft.v1`` and its conversions (raftkv/wire/raft_convert.py)."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from concurrent import futures
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from raftkv.raft.types import (
    LOCAL_MESSAGES,
    ConfState,
    Entry,
    EntryType,
    Message,
    MessageType,
    Snapshot,
    SnapshotMeta,
)
from raftkv.wire.pb.raftpb import raft_pb2, raft_pb2_grpc
from raftkv.wire.raft_convert import (
    PROTOCOL_VERSION,
    SnapshotAssembler,
    SnapshotStreamError,
    WireFormatError,
    batch_from_pb,
    batch_to_pb,
    check_hello,
    entries_from_pb,
    entries_to_pb,
    entry_from_pb,
    entry_to_pb,
    message_from_pb,
    message_to_pb,
    peer_header_from_metadata,
    peer_metadata,
    snapshot_from_chunks,
    snapshot_message_from_chunks,
    snapshot_message_to_chunks,
    snapshot_to_chunks,
)

# grpcio ships no type information; loaded this way it is Any whether or not stubs are added.
grpc: Any = importlib.import_module("grpc")

NETWORK_TYPES = sorted(set(MessageType) - LOCAL_MESSAGES)
U64 = st.integers(min_value=0, max_value=2**64 - 1)
SMALL = st.integers(min_value=0, max_value=2**20)
IDS = st.one_of(st.integers(min_value=0, max_value=9), U64)

# --------------------------------------------------------------------------------------
# strategies

entries_st = st.lists(
    st.builds(
        Entry,
        term=st.one_of(SMALL, U64),
        index=st.one_of(SMALL, U64),
        type=st.sampled_from(EntryType),
        data=st.binary(max_size=64),
    ),
    max_size=8,
).map(tuple)


@st.composite
def conf_states(draw: st.DrawFn) -> ConfState:
    members = draw(st.lists(IDS, unique=True, max_size=7))
    split = draw(st.integers(min_value=0, max_value=len(members)))
    return ConfState(frozenset(members[:split]), frozenset(members[split:]))


snapshots_st = st.builds(
    Snapshot,
    meta=st.builds(SnapshotMeta, index=U64, term=U64, conf_state=conf_states()),
    data=st.binary(max_size=256),
)


@st.composite
def messages(draw: st.DrawFn, types: list[MessageType] = NETWORK_TYPES) -> Message:
    kind = draw(st.sampled_from(types))
    return Message(
        type=kind,
        to=draw(IDS),
        frm=draw(IDS),
        term=draw(st.one_of(SMALL, U64)),
        log_term=draw(st.one_of(SMALL, U64)),
        index=draw(st.one_of(SMALL, U64)),
        entries=draw(entries_st),
        commit=draw(st.one_of(SMALL, U64)),
        reject=draw(st.booleans()),
        reject_hint=draw(st.one_of(SMALL, U64)),
        snapshot=draw(snapshots_st) if kind is MessageType.SNAP else None,
        context=draw(st.binary(max_size=32)),
    )


def _roundtrip(m: Message) -> Message:
    """message_to_pb, through bytes, message_from_pb (a SNAP's data travels beside it)."""
    wire = message_to_pb(m).SerializeToString()
    data = m.snapshot.data if m.snapshot is not None else None
    return message_from_pb(raft_pb2.Message.FromString(wire), snapshot_data=data)


# --------------------------------------------------------------------------------------
# messages


@given(messages())
def test_message_roundtrip(m: Message) -> None:
    assert _roundtrip(m) == m


@given(st.lists(messages([t for t in NETWORK_TYPES if t is not MessageType.SNAP]), max_size=5))
def test_batch_roundtrip(ms: list[Message]) -> None:
    wire = batch_to_pb(ms).SerializeToString()
    assert batch_from_pb(raft_pb2.MessageBatch.FromString(wire)) == ms


@given(entries_st)
def test_entries_roundtrip(entries: tuple[Entry, ...]) -> None:
    assert entries_from_pb(entries_to_pb(entries)) == entries
    assert tuple(entry_from_pb(entry_to_pb(e)) for e in entries) == entries


@pytest.mark.parametrize("kind", NETWORK_TYPES)
def test_every_network_type_has_its_own_wire_name(kind: MessageType) -> None:
    snapshot = Snapshot() if kind is MessageType.SNAP else None
    p = message_to_pb(Message(kind, to=2, frm=1, snapshot=snapshot))
    assert raft_pb2.MessageType.Name(p.type) == f"MESSAGE_TYPE_{kind.name}"


def test_entry_types_have_their_own_wire_names() -> None:
    for kind in EntryType:
        p = entry_to_pb(Entry(1, 1, kind))
        assert raft_pb2.EntryType.Name(p.type) == f"ENTRY_TYPE_{kind.name}"


def test_wire_encoding_is_pinned() -> None:
    # Message{type=1 APP(2), to=2 2, frm=3 1, term=4 5, entries=7 {term=1 [5], index=2 [6],
    # type=3 [CONF_CHANGE(1)], data=4 ["x"]}}: packed columns, tag 0x0a/0x12/0x1a, len 1.
    m = Message(
        MessageType.APP, to=2, frm=1, term=5, entries=(Entry(5, 6, EntryType.CONF_CHANGE, b"x"),)
    )
    entries = b"\x0a\x01\x05\x12\x01\x06\x1a\x01\x01\x22\x01x"
    expected = b"\x08\x02\x10\x02\x18\x01\x20\x05\x3a" + bytes([len(entries)]) + entries
    assert message_to_pb(m).SerializeToString(deterministic=True) == expected
    assert message_from_pb(raft_pb2.Message.FromString(expected)) == m


@pytest.mark.parametrize("kind", sorted(LOCAL_MESSAGES))
def test_local_messages_never_cross_the_network(kind: MessageType) -> None:
    with pytest.raises(ValueError, match="local-only"):
        message_to_pb(Message(kind, to=2, frm=1))
    # The wire has no value for them, so a peer cannot send one either.
    wire_names = set(raft_pb2.MessageType.keys())
    assert f"MESSAGE_TYPE_{kind.name}" not in wire_names


@pytest.mark.parametrize("wire_type", [raft_pb2.MESSAGE_TYPE_UNSPECIFIED, 99])
def test_missing_or_unknown_type_is_refused(wire_type: int) -> None:
    with pytest.raises(WireFormatError, match="missing or unknown"):
        message_from_pb(raft_pb2.Message(type=wire_type, to=1))  # type: ignore[arg-type]


def test_malformed_entries_are_refused() -> None:
    ragged = raft_pb2.Message(
        type=raft_pb2.MESSAGE_TYPE_APP,
        entries=raft_pb2.Entries(
            term=[1, 1], index=[1, 2], type=[raft_pb2.ENTRY_TYPE_NORMAL] * 2, data=[b"a"]
        ),
    )
    with pytest.raises(WireFormatError, match="differ in length"):
        message_from_pb(ragged)
    unknown = raft_pb2.Message(
        type=raft_pb2.MESSAGE_TYPE_APP,
        entries=raft_pb2.Entries(term=[1], index=[1], type=[7], data=[b"a"]),  # type: ignore[list-item]
    )
    with pytest.raises(WireFormatError, match="unknown entry type 7"):
        message_from_pb(unknown)
    with pytest.raises(WireFormatError, match="unknown entry type 7"):
        entry_from_pb(raft_pb2.Entry(type=7))  # type: ignore[arg-type]


def test_overlapping_conf_state_is_refused() -> None:
    p = message_to_pb(Message(MessageType.SNAP, snapshot=Snapshot()))
    p.snapshot.conf_state.voters.append(3)
    p.snapshot.conf_state.learners.append(3)
    with pytest.raises(WireFormatError, match="both voter and learner"):
        message_from_pb(p, snapshot_data=b"")


def test_snapshot_rules() -> None:
    snap = Message(MessageType.SNAP, to=2, frm=1, term=3, snapshot=Snapshot(SnapshotMeta(9, 3)))
    p = message_to_pb(snap)
    assert p.snapshot.index == 9
    # Decoded without its data, a SNAP message would install an empty state machine.
    with pytest.raises(WireFormatError, match="without its data"):
        message_from_pb(p)
    p.ClearField("snapshot")
    with pytest.raises(WireFormatError, match="without snapshot metadata"):
        message_from_pb(p, snapshot_data=b"")
    with pytest.raises(ValueError, match="SendSnapshot"):
        batch_to_pb([snap])
    with pytest.raises(WireFormatError, match="without its data"):
        batch_from_pb(raft_pb2.MessageBatch(messages=[message_to_pb(snap)]))
    with pytest.raises(ValueError, match="must carry a snapshot"):
        message_to_pb(Message(MessageType.SNAP))
    with pytest.raises(ValueError, match="only SNAP"):
        message_to_pb(Message(MessageType.APP, snapshot=Snapshot()))
    with pytest.raises(ValueError, match="snapshot_data given"):
        message_from_pb(message_to_pb(Message(MessageType.APP)), snapshot_data=b"x")


# --------------------------------------------------------------------------------------
# snapshot chunking


def _check_chunks(snapshot: Snapshot, chunk_size: int) -> list[raft_pb2.SnapshotChunk]:
    chunks = list(snapshot_to_chunks(snapshot, chunk_size, frm=1, to=2, term=3, cluster_token="c"))
    size = len(snapshot.data)
    assert len(chunks) == max(1, -(-size // chunk_size))
    assert [c.HasField("meta") for c in chunks] == [True] + [False] * (len(chunks) - 1)
    assert [c.last for c in chunks] == [False] * (len(chunks) - 1) + [True]
    assert all(len(c.data) <= chunk_size for c in chunks)
    assert all((c.frm, c.to, c.term, c.cluster_token) == (1, 2, 3, "c") for c in chunks)
    wire = [raft_pb2.SnapshotChunk.FromString(c.SerializeToString()) for c in chunks]
    assert snapshot_from_chunks(wire) == snapshot
    return chunks


@settings(max_examples=200)
@given(snapshots_st, st.integers(min_value=1, max_value=300))
def test_chunking_roundtrip(snapshot: Snapshot, chunk_size: int) -> None:
    _check_chunks(snapshot, chunk_size)


@pytest.mark.parametrize(
    ("size", "chunk_size", "count"),
    [
        (0, 1, 1),
        (0, 4096, 1),
        (1, 1, 1),
        (4096, 1024, 4),
        (4097, 1024, 5),
        (4095, 1024, 4),
        (1024, 4096, 1),
        (3 * 2**20 + 7, 64 * 2**10, 49),
    ],
)
def test_chunking_sizes(size: int, chunk_size: int, count: int) -> None:
    data = bytes(range(256)) * (size // 256) + bytes(size % 256)
    meta = SnapshotMeta(10, 2, ConfState(frozenset({1, 2}), frozenset({3})))
    assert len(_check_chunks(Snapshot(meta, data), chunk_size)) == count


def test_chunk_size_must_be_positive() -> None:
    with pytest.raises(ValueError, match="chunk_size"):
        snapshot_to_chunks(Snapshot(), 0)  # at the call, not at the first chunk


def test_snapshot_message_roundtrip() -> None:
    meta = SnapshotMeta(7, 2, ConfState(frozenset({1, 2, 3})))
    m = Message(MessageType.SNAP, to=2, frm=1, term=4, snapshot=Snapshot(meta, b"abcdefg"))
    chunks = list(snapshot_message_to_chunks(m, 3, cluster_token="tok"))
    assert len(chunks) == 3
    assert snapshot_message_from_chunks(chunks) == m
    assembler = SnapshotAssembler()
    assert not assembler.add(chunks[0])
    # The header is known after the first chunk, before the data is buffered.
    assert (assembler.frm, assembler.to, assembler.term, assembler.cluster_token) == (
        1,
        2,
        4,
        "tok",
    )
    with pytest.raises(ValueError, match="SNAP"):
        snapshot_message_to_chunks(Message(MessageType.APP), 3)


def _chunks(size: int = 10, chunk_size: int = 3) -> list[raft_pb2.SnapshotChunk]:
    snapshot = Snapshot(SnapshotMeta(5, 1), bytes(range(size)))
    return list(snapshot_to_chunks(snapshot, chunk_size, frm=1, to=2, term=1, cluster_token="t"))


def _with(chunk: raft_pb2.SnapshotChunk, **changes: Any) -> raft_pb2.SnapshotChunk:
    out = raft_pb2.SnapshotChunk()
    out.CopyFrom(chunk)
    for name, value in changes.items():
        if name == "meta":
            out.meta.CopyFrom(value)
        else:
            setattr(out, name, value)
    return out


MALFORMED: dict[str, tuple[Callable[[list[raft_pb2.SnapshotChunk]], list[Any]], str]] = {
    "empty stream": (lambda c: [], "no chunk received"),
    "starts mid-stream": (lambda c: c[1:], "first chunk carries no snapshot metadata"),
    "meta later": (lambda c: [c[0], _with(c[1], meta=c[0].meta), *c[2:]], "only the first"),
    "missing chunk": (lambda c: [c[0], *c[2:]], "offset 6, expected 3"),
    "repeated chunk": (lambda c: [c[0], c[1], c[1], *c[2:]], "offset 3, expected 6"),
    "reordered": (lambda c: [c[0], c[2], c[1], c[3]], "out of order"),
    "truncated": (lambda c: c[:-1], r"ended before the last chunk \(3 chunks, 9 bytes"),
    "after last": (lambda c: [*c, c[-1]], "after the last chunk"),
    "early last": (lambda c: [c[0], _with(c[1], last=True), *c[2:]], "after the last chunk"),
    "other sender": (lambda c: [c[0], _with(c[1], frm=9), *c[2:]], "frm/to/term"),
    "other cluster": (lambda c: [c[0], _with(c[1], cluster_token="x"), *c[2:]], "cluster_token"),
    "nonzero first offset": (lambda c: [_with(c[0], offset=3), *c[1:]], "offset 3, expected 0"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_chunk_streams_are_refused(case: str) -> None:
    mutate, message = MALFORMED[case]
    chunks = _chunks()
    assert len(chunks) == 4
    with pytest.raises(SnapshotStreamError, match=message):
        snapshot_from_chunks(mutate(chunks))


def test_no_meta_first_chunk_is_refused() -> None:
    first = _chunks()[0]
    first.ClearField("meta")
    with pytest.raises(SnapshotStreamError, match="first chunk carries no snapshot metadata"):
        snapshot_from_chunks([first])


def test_snapshot_size_limit() -> None:
    with pytest.raises(SnapshotStreamError, match="exceeds 8 bytes"):
        snapshot_from_chunks(_chunks(size=10), max_bytes=8)
    assert len(snapshot_from_chunks(_chunks(size=10), max_bytes=10).data) == 10


# --------------------------------------------------------------------------------------
# Hello and stream metadata


def _hello(**changes: Any) -> raft_pb2.HelloRequest:
    fields: dict[str, Any] = {
        "cluster_token": "prod",
        "frm": 1,
        "to": 2,
        "protocol_version": PROTOCOL_VERSION,
    }
    fields.update(changes)
    return raft_pb2.HelloRequest(**fields)


@pytest.mark.parametrize(
    ("request_changes", "reason"),
    [
        ({}, ""),
        ({"cluster_token": "staging"}, "cluster token mismatch"),
        ({"to": 3}, "dialled member 3, this is member 2"),
        ({"frm": 2}, "own id"),
        ({"protocol_version": PROTOCOL_VERSION + 1}, "not supported"),
    ],
)
def test_check_hello(request_changes: dict[str, Any], reason: str) -> None:
    response = check_hello(_hello(**request_changes), cluster_token="prod", member_id=2)
    assert response.accepted == (not reason)
    assert reason in response.reason
    assert response.member_id == 2
    assert response.protocol_version == PROTOCOL_VERSION


def test_peer_metadata_roundtrip() -> None:
    header = peer_header_from_metadata(peer_metadata("prod", 1, 2))
    assert (header.cluster_token, header.frm, header.to) == ("prod", 1, 2)
    with pytest.raises(WireFormatError, match="lacks raftkv-to"):
        peer_header_from_metadata(peer_metadata("prod", 1, 2)[:2])
    bad = (*peer_metadata("prod", 1, 2)[:2], ("raftkv-to", "²"))
    with pytest.raises(WireFormatError, match="not a member id"):
        peer_header_from_metadata(bad)


# --------------------------------------------------------------------------------------
# the generated service

SU, UU = "stream_unary", "unary_unary"
EXPECTED_METHODS = {
    "/raftkv.raft.v1.Raft/Stream": (SU, "MessageBatch", "StreamAck"),
    "/raftkv.raft.v1.Raft/SendSnapshot": (SU, "SnapshotChunk", "SnapshotAck"),
    "/raftkv.raft.v1.Raft/Hello": (UU, "HelloRequest", "HelloResponse"),
}


def test_service_descriptor() -> None:
    assert raft_pb2.DESCRIPTOR.package == "raftkv.raft.v1"
    service = raft_pb2.DESCRIPTOR.services_by_name["Raft"]
    actual = {}
    for m in service.methods:
        kind = ("stream" if m.client_streaming else "unary") + (
            "_stream" if m.server_streaming else "_unary"
        )
        actual[f"/{service.full_name}/{m.name}"] = (
            kind,
            m.input_type.name,
            m.output_type.name,
        )
    assert actual == EXPECTED_METHODS


def test_message_mirrors_every_core_field() -> None:
    wire = {f.name for f in raft_pb2.Message.DESCRIPTOR.fields}
    assert wire == set(Message.__dataclass_fields__)


class _RecordingChannel:
    """Stands in for a grpc.Channel; records the path and kind of each stub method."""

    def __init__(self) -> None:
        self.paths: dict[str, str] = {}

    def __getattr__(self, kind: str) -> Callable[..., None]:
        if kind not in (SU, UU, "unary_stream", "stream_stream"):
            raise AttributeError(kind)

        def record(path: str, *args: object, **kwargs: object) -> None:
            self.paths[path] = kind

        return record


def test_stub_paths() -> None:
    channel = _RecordingChannel()
    make_stub: Any = raft_pb2_grpc.RaftStub  # generated without annotations
    make_stub(channel)
    assert channel.paths == {path: kind for path, (kind, _, _) in EXPECTED_METHODS.items()}


@pytest.fixture
def raft_server() -> Iterator[tuple[str, list[Message]]]:
    """A real grpc server on loopback whose Raft service decodes what it receives."""
    received: list[Message] = []

    class Servicer(raft_pb2_grpc.RaftServicer):
        def Stream(self, request_iterator: Any, context: Any) -> Any:
            batches = 0
            for batch in request_iterator:
                received.extend(batch_from_pb(batch))
                batches += 1
            return raft_pb2.StreamAck(batches=batches, messages=len(received))

        def SendSnapshot(self, request_iterator: Any, context: Any) -> Any:
            assembler = SnapshotAssembler()
            for chunk in request_iterator:
                assembler.add(chunk)
            received.append(assembler.message())
            return raft_pb2.SnapshotAck(received_bytes=assembler.received_bytes)

        def Hello(self, request: Any, context: Any) -> Any:
            return check_hello(request, cluster_token="prod", member_id=2)

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    add_servicer: Any = raft_pb2_grpc.add_RaftServicer_to_server  # generated without annotations
    add_servicer(Servicer(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield f"127.0.0.1:{port}", received
    finally:
        server.stop(grace=None)


def test_service_over_loopback(raft_server: tuple[str, list[Message]]) -> None:
    address, received = raft_server
    app = Message(MessageType.APP, to=2, frm=1, term=2, entries=(Entry(2, 1, data=b"x"),))
    beat = Message(MessageType.HEARTBEAT, to=2, frm=1, term=2, commit=1)
    snap = Message(
        MessageType.SNAP, to=2, frm=1, term=2, snapshot=Snapshot(SnapshotMeta(5, 2), b"s" * 100)
    )
    with grpc.insecure_channel(address) as channel:
        make_stub: Any = raft_pb2_grpc.RaftStub  # generated without annotations
        stub = make_stub(channel)
        hello = stub.Hello(_hello(), timeout=10)
        assert hello.accepted
        ack = stub.Stream(iter([batch_to_pb([app, beat]), batch_to_pb([beat])]), timeout=10)
        assert (ack.batches, ack.messages) == (2, 3)
        snap_ack = stub.SendSnapshot(snapshot_message_to_chunks(snap, 30), timeout=10)
        assert snap_ack.received_bytes == 100
    assert received == [app, beat, beat, snap]
