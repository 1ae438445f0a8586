"""ReadIndex bookkeeping for linearizable reads (Raft dissertation §6.4)."""

from __future__ import annotations

from dataclasses import dataclass, field

from raftkv.raft.types import Message


@dataclass(slots=True)
class ReadIndexStatus:
    """A read request: the commit index when it arrived and who has confirmed leadership."""

    request: Message
    index: int
    acks: set[int] = field(default_factory=set)


class ReadOnly:
    """Pending read-index requests, in arrival order.

    A heartbeat round carries the context of the newest request; a quorum of acks for it
    confirms leadership for that request *and every earlier one* (they were all registered
    before that heartbeat was sent), so concurrent requests share one round.
    """

    __slots__ = ("pending", "queue")

    def __init__(self) -> None:
        self.pending: dict[bytes, ReadIndexStatus] = {}
        self.queue: list[bytes] = []

    def add_request(self, index: int, m: Message) -> None:
        ctx = m.context
        if ctx in self.pending:
            return
        self.pending[ctx] = ReadIndexStatus(request=m, index=index)
        self.queue.append(ctx)

    def recv_ack(self, node_id: int, ctx: bytes) -> set[int] | None:
        """Record that ``node_id`` acknowledged the heartbeat carrying ``ctx``."""
        status = self.pending.get(ctx)
        if status is None:
            return None
        status.acks.add(node_id)
        return status.acks

    def advance(self, ctx: bytes) -> list[ReadIndexStatus]:
        """Pop and return every request up to and including ``ctx``."""
        try:
            pos = self.queue.index(ctx)
        except ValueError:
            return []
        done = self.queue[:pos + 1]
        del self.queue[:pos + 1]
        return [self.pending.pop(c) for c in done]

    def last_pending_context(self) -> bytes | None:
        return self.queue[-1] if self.queue else None
