"""Configuration of one Raft node. Durations are in ticks; sizes in bytes."""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass, field

from raftkv.errors import ConfigError
from raftkv.raft.types import NONE


@dataclass(frozen=True, slots=True)
class Config:
    """Frozen configuration; :meth:`validate` checks it and changes nothing.

    Attributes:
        id: this node's id (non-zero, never reused after removal).
        rng: the only source of randomness (election timeout jitter).
        election_ticks: a follower that hears nothing for a randomized timeout in
            ``[election_ticks, 2*election_ticks)`` starts an election (Raft §5.2).
        heartbeat_ticks: the leader sends heartbeats every this many ticks.
        applied: the last index already applied by the state machine (on restart).
        max_size_per_msg: byte bound on the entries of one append message.
        max_inflight_msgs: appends in flight to one follower in the replicate state.
        max_inflight_bytes: bytes in flight to one follower (0 = unbounded).
        max_uncommitted_entries_size: the leader drops proposals once this many bytes
            are uncommitted (0 = unbounded); protects memory when quorum is lost.
        max_committed_size_per_ready: byte bound on committed entries per Ready (0 = all).
        check_quorum: a leader steps down if it has not heard from a quorum within an
            election timeout; followers that heard from a leader recently ignore votes.
        pre_vote: run a pre-election before bumping the term (dissertation §9.6).
        disable_proposal_forwarding: followers drop proposals instead of forwarding.
        logger: where the core logs role changes (never the global logger).
    """

    id: int
    rng: random.Random
    election_ticks: int = 10
    heartbeat_ticks: int = 1
    applied: int = 0
    max_size_per_msg: int = 1 << 20
    max_inflight_msgs: int = 256
    max_inflight_bytes: int = 0
    max_uncommitted_entries_size: int = 0
    max_committed_size_per_ready: int = 0
    check_quorum: bool = True
    pre_vote: bool = True
    disable_proposal_forwarding: bool = False
    logger: logging.Logger = field(default_factory=lambda: logging.getLogger("raftkv.raft"))

    def validate(self) -> None:
        """Raise :class:`ConfigError` naming the first invalid value; never mutates."""
        if self.id == NONE:
            raise ConfigError("raft config: id must be non-zero (0 means 'no node')")
        if self.heartbeat_ticks <= 0:
            raise ConfigError(f"raft config: heartbeat_ticks={self.heartbeat_ticks} "
                              "must be positive")
        if self.election_ticks <= self.heartbeat_ticks:
            raise ConfigError(f"raft config: election_ticks={self.election_ticks} must be "
                              f"greater than heartbeat_ticks={self.heartbeat_ticks}")
        if self.max_inflight_msgs <= 0:
            raise ConfigError(f"raft config: max_inflight_msgs={self.max_inflight_msgs} "
                              "must be positive")
        for name in ("applied", "max_size_per_msg", "max_inflight_bytes",
                     "max_uncommitted_entries_size", "max_committed_size_per_ready"):
            value = getattr(self, name)
            if value < 0:
                raise ConfigError(f"raft config: {name}={value} must not be negative")
