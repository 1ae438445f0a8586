"""Per-follower replication progress kept by the leader, and the in-flight window."""

from __future__ import annotations

import enum
from collections import deque


class ProgressState(enum.Enum):
    """How the leader is replicating to a follower.

    PROBE: one append at a time until the follower's match index is found.
    REPLICATE: appends are pipelined up to the in-flight bound.
    SNAPSHOT: a snapshot is being sent; appends wait for it.
    """

    PROBE = "probe"
    REPLICATE = "replicate"
    SNAPSHOT = "snapshot"


class Inflights:
    """A bounded window of appends in flight to one follower (count and bytes).

    Each in-flight append is identified by the last index it carried; indices are added
    in increasing order and freed by prefix when acknowledged.
    """

    __slots__ = ("_items", "bytes", "max_bytes", "size")

    def __init__(self, size: int, max_bytes: int = 0) -> None:
        self.size = size
        self.max_bytes = max_bytes
        self.bytes = 0
        self._items: deque[tuple[int, int]] = deque()

    def __len__(self) -> int:
        return len(self._items)

    def add(self, index: int, nbytes: int) -> None:
        self._items.append((index, nbytes))
        self.bytes += nbytes

    def free_le(self, index: int) -> None:
        """Free every in-flight append whose last index is ``<= index``."""
        items = self._items
        while items and items[0][0] <= index:
            self.bytes -= items.popleft()[1]

    def free_first_one(self) -> None:
        """Free the oldest in-flight append (its ack was probably lost)."""
        if self._items:
            self.bytes -= self._items.popleft()[1]

    def full(self) -> bool:
        return len(self._items) >= self.size or (0 < self.max_bytes <= self.bytes)

    def reset(self) -> None:
        self._items.clear()
        self.bytes = 0


class Progress:
    """The leader's view of one follower.

    Invariants: ``0 <= match < next``; entries ``(match, next)`` are in flight or unsent.
    """

    __slots__ = ("inflights", "is_learner", "match", "msg_app_flow_paused", "next",
                 "pending_snapshot", "recent_active", "state")

    def __init__(self, next_index: int, inflights: Inflights, is_learner: bool = False,
                 match: int = 0) -> None:
        self.match = match
        self.next = next_index
        self.state = ProgressState.PROBE
        self.pending_snapshot = 0
        self.recent_active = True
        self.msg_app_flow_paused = False
        self.inflights = inflights
        self.is_learner = is_learner

    def __repr__(self) -> str:
        return (f"Progress(match={self.match}, next={self.next}, state={self.state.value}, "
                f"inflight={len(self.inflights)})")

    def _reset_state(self, state: ProgressState) -> None:
        self.msg_app_flow_paused = False
        self.pending_snapshot = 0
        self.state = state
        self.inflights.reset()

    def become_probe(self) -> None:
        if self.state is ProgressState.SNAPSHOT:
            pending = self.pending_snapshot
            self._reset_state(ProgressState.PROBE)
            self.next = max(self.match + 1, pending + 1)
        else:
            self._reset_state(ProgressState.PROBE)
            self.next = self.match + 1

    def become_replicate(self) -> None:
        self._reset_state(ProgressState.REPLICATE)
        self.next = self.match + 1

    def become_snapshot(self, snapshot_index: int) -> None:
        self._reset_state(ProgressState.SNAPSHOT)
        self.pending_snapshot = snapshot_index

    def sent_entries(self, count: int, nbytes: int, last_index: int) -> None:
        """Record that an append carrying ``count`` entries up to ``last_index`` went out."""
        if self.state is ProgressState.REPLICATE:
            if count > 0:
                self.next = last_index + 1
                self.inflights.add(last_index, nbytes)
        elif self.state is ProgressState.PROBE:
            self.msg_app_flow_paused = True

    def maybe_update(self, index: int) -> bool:
        """The follower acknowledged ``index``; returns True if ``match`` advanced."""
        updated = False
        if self.match < index:
            self.match = index
            updated = True
            self.msg_app_flow_paused = False
        self.next = max(self.next, index + 1)
        return updated

    def maybe_decr_to(self, rejected: int, match_hint: int) -> bool:
        """The follower rejected an append at ``rejected``; move ``next`` back.

        Returns False for a stale rejection (one that does not match what we last sent).
        """
        if self.state is ProgressState.REPLICATE:
            if rejected <= self.match:
                return False
            self.next = self.match + 1
            return True
        if self.next - 1 != rejected:
            return False
        self.next = max(min(rejected, match_hint + 1), self.match + 1)
        self.msg_app_flow_paused = False
        return True

    def is_paused(self) -> bool:
        """Whether appends to this follower must wait."""
        if self.state is ProgressState.PROBE:
            return self.msg_app_flow_paused
        if self.state is ProgressState.REPLICATE:
            return self.inflights.full()
        return True
