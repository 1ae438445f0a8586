"""One simulated member: durable `MemoryStorage`, a `RawNode` while it is up, and a tiny
state machine (a hash chain of applied entries) that snapshots and restores."""

from __future__ import annotations

import hashlib
import random
import struct
from dataclasses import dataclass

from raftkv.raft.config import Config
from raftkv.raft.errors import Compacted
from raftkv.raft.rawnode import RawNode
from raftkv.raft.storage import MemoryStorage
from raftkv.raft.types import ConfState, Entry, Snapshot

ZERO_HASH = b"\0" * 16


@dataclass(frozen=True, slots=True)
class NodeKnobs:
    """The per-run settings every simulated member shares."""

    election_ticks: int
    heartbeat_ticks: int
    max_size_per_msg: int
    max_inflight_msgs: int
    snapshot_every: int
    keep_entries: int
_STATE = struct.Struct(">Q16s")


def encode_state(applied: int, chain: bytes) -> bytes:
    return _STATE.pack(applied, chain)


def decode_state(data: bytes) -> tuple[int, bytes]:
    applied, chain = _STATE.unpack(data)
    return applied, chain


def digest(prev: bytes, e: Entry) -> bytes:
    """The apply hash chain: equal chains mean equal applied prefixes."""
    head = struct.pack(">QQB", e.index, e.term, e.type)
    return hashlib.blake2b(prev + head + e.data, digest_size=16).digest()


class SimNode:
    """A member of the simulated cluster. ``storage`` survives crashes; ``raw`` does not."""

    def __init__(self, node_id: int, rng: random.Random, cfg: NodeKnobs) -> None:
        self.id = node_id
        self.rng = rng
        self.cfg = cfg
        self.storage = MemoryStorage()
        self.raw: RawNode | None = None
        self.applied = 0
        self.hash = ZERO_HASH
        self.conf_state = ConfState()
        self.paused_until = 0
        self.removed = False
        self.removed_at = 0

    def start(self) -> None:
        """Boot (or reboot) from what is durable."""
        snap = self.storage.snapshot()
        if snap.is_empty():
            self.applied, self.hash = 0, ZERO_HASH
        else:
            self.restore(snap)
        cfg = Config(id=self.id, rng=self.rng, election_ticks=self.cfg.election_ticks,
                     heartbeat_ticks=self.cfg.heartbeat_ticks, applied=self.applied,
                     max_size_per_msg=self.cfg.max_size_per_msg,
                     max_inflight_msgs=self.cfg.max_inflight_msgs)
        self.raw = RawNode(cfg, self.storage)

    def crash(self) -> None:
        """Lose everything not in storage."""
        self.raw = None
        self.paused_until = 0

    def restore(self, snap: Snapshot) -> None:
        self.applied, self.hash = decode_state(snap.data)
        self.conf_state = snap.meta.conf_state

    def apply_entry(self, e: Entry) -> None:
        self.hash = digest(self.hash, e)
        self.applied = e.index

    def term_at(self, index: int) -> int:
        """Term of ``index`` in this node's log; -1 if compacted away."""
        if self.raw is None:
            return -1
        try:
            return self.raw.raft.log.term(index)
        except Compacted:
            return -1

    def maybe_snapshot(self) -> None:
        """Snapshot every ``snapshot_every`` applied entries, keeping a short tail."""
        snap_index = self.storage.snapshot().meta.index
        if self.applied - snap_index < self.cfg.snapshot_every:
            return
        data = encode_state(self.applied, self.hash)
        self.storage.create_snapshot(self.applied, self.conf_state, data)
        keep_from = self.applied - self.cfg.keep_entries
        if keep_from > self.storage.first_index():
            self.storage.compact(keep_from)
