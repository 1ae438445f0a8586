"""Throughput of the peer-protocol conversions (not collected by pytest).

Run: ``.venv/bin/python -m tests.wire.bench_raft_convert``. Measures an APP message with 64
entries of 256 bytes: encode (``message_to_pb``), decode (``message_from_pb``), and the whole
wire trip of a batch of 10 such messages (encode, serialize, parse, decode).
"""

from __future__ import annotations

import timeit
from collections.abc import Callable

from raftkv.raft.types import Entry, Message, MessageType
from raftkv.wire.pb.raftpb import raft_pb2
from raftkv.wire.raft_convert import batch_from_pb, batch_to_pb, message_from_pb, message_to_pb


def app_message(entries: int = 64, size: int = 256) -> Message:
    ents = tuple(Entry(term=5, index=100 + i, data=bytes(size)) for i in range(entries))
    return Message(
        MessageType.APP, to=2, frm=1, term=5, log_term=5, index=99, entries=ents, commit=90
    )


def _rate(fn: Callable[[], object], per_call: int = 1, seconds: float = 1.0) -> float:
    """Calls of ``fn`` per second (times ``per_call``), best of 3 runs of about ``seconds``."""
    number = max(1, int(seconds / max(timeit.timeit(fn, number=20) / 20, 1e-9)))
    best = min(timeit.repeat(fn, number=number, repeat=3))
    return number * per_call / best


def main() -> None:
    m = app_message()
    p = message_to_pb(m)
    wire = p.SerializeToString()
    batch = [m] * 10
    print(f"APP, 64 entries x 256 B ({len(wire)} bytes on the wire)")
    print(f"  message_to_pb        {_rate(lambda: message_to_pb(m)):>9,.0f} msgs/s")
    print(f"  message_from_pb      {_rate(lambda: message_from_pb(p)):>9,.0f} msgs/s")

    def trip() -> object:
        data = batch_to_pb(batch).SerializeToString()
        return batch_from_pb(raft_pb2.MessageBatch.FromString(data))

    print(f"  batch of 10, full trip {_rate(trip, per_call=10):>7,.0f} msgs/s")
    hb = Message(MessageType.HEARTBEAT, to=2, frm=1, term=5, commit=90)
    hp = message_to_pb(hb)
    print(f"HEARTBEAT to_pb        {_rate(lambda: message_to_pb(hb)):>9,.0f} msgs/s")
    print(f"HEARTBEAT from_pb      {_rate(lambda: message_from_pb(hp)):>9,.0f} msgs/s")


if __name__ == "__main__":
    main()
