"""A small deterministic test network of :class:`RawNode`\\ s, in the spirit of etcd-io/raft's
``raft_test.go`` ``network``.

Every node has its own :class:`MemoryStorage` (its "disk"). Messages are delivered
synchronously, one at a time, in FIFO order; after each delivery the receiver's ``Ready`` is
handled the way a real driver must handle it:

1. send ``messages_now`` (the leader's appends and heartbeats may leave before the fsync);
2. persist the snapshot, the entries and the hard state;
3. send ``messages_after_persist`` (votes, acks: only once durable);
4. apply committed entries (conf changes go to ``RawNode.apply_conf_change``);
5. record read states, then ``advance()``.

Faults: ``cut(a, b)`` drops one link both ways, ``isolate(a)`` cuts every link of ``a``,
``drop(*types)`` drops message kinds, ``recover()`` heals all three. A node in ``frozen``
still receives messages but its ``Ready`` is never handled (a stuck disk): tests use it to
look at a ``Ready`` by hand. Every delivered message is recorded in ``delivered`` and every
dropped one in ``dropped`` so tests can count them.

A cluster is bootstrapped like the simulator does it: each storage starts from a snapshot at
index 1, term 1, whose conf state holds the initial voters and learners, and a hard state of
term 1 (commit 1). The first real log index is therefore 2, and the first election term 2.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from raftkv.raft.config import Config
from raftkv.raft.rawnode import RawNode, Ready
from raftkv.raft.storage import MemoryStorage
from raftkv.raft.types import (
    ConfChange,
    ConfState,
    Entry,
    EntryType,
    HardState,
    Message,
    MessageType,
    ReadState,
    Snapshot,
    SnapshotMeta,
    StateRole,
)

MT = MessageType
BOOT_INDEX = 1
"""The index (and term) of the bootstrap snapshot every storage starts from."""

_MAX_STEPS = 200_000


def boot_storage(voters: Iterable[int], learners: Iterable[int] = (), *,
                 terms: Sequence[int] = (), hard_state: HardState | None = None
                 ) -> MemoryStorage:
    """A storage holding the bootstrap snapshot, then one entry per ``terms`` (from index 2).

    Entries get ``data = b"i<index>t<term>"`` so that distinct entries are distinguishable.
    """
    st = MemoryStorage()
    cs = ConfState(voters=frozenset(voters), learners=frozenset(learners))
    st.apply_snapshot(Snapshot(meta=SnapshotMeta(index=BOOT_INDEX, term=BOOT_INDEX,
                                                 conf_state=cs)))
    ents = [Entry(term=t, index=BOOT_INDEX + 1 + i, data=f"i{BOOT_INDEX + 1 + i}t{t}".encode())
            for i, t in enumerate(terms)]
    st.append(ents)
    if hard_state is None:
        # As etcd does when bootstrapping: the hard state already holds the bootstrap
        # entry's term, so the first election is for term 2 and no leader ever shares a
        # term with an entry it did not write.
        hard_state = HardState(term=max([BOOT_INDEX, *terms]), commit=BOOT_INDEX)
    st.set_hard_state(hard_state)
    return st


def make_config(node_id: int, seed: int = 0, **overrides: Any) -> Config:
    """A config with a seeded RNG of its own; ``overrides`` replace any default."""
    kw: dict[str, Any] = {"election_ticks": 10, "heartbeat_ticks": 1}
    kw.update(overrides)
    return Config(id=node_id, rng=random.Random(seed * 7919 + node_id), **kw)


@dataclass
class NodeState:
    """What the harness tracks for one member besides its RawNode and storage."""

    applied_index: int = BOOT_INDEX
    applied: list[Entry] = field(default_factory=list)
    read_states: list[ReadState] = field(default_factory=list)
    conf_state: ConfState = field(default_factory=ConfState)
    readies: int = 0


class Network:
    """Deterministic in-memory cluster; see the module docstring."""

    def __init__(self, voters: Iterable[int] | int, learners: Iterable[int] = (), *,
                 storages: dict[int, MemoryStorage] | None = None, seed: int = 0,
                 **cfg: Any) -> None:
        vs = list(range(1, voters + 1)) if isinstance(voters, int) else list(voters)
        ls = list(learners)
        self.seed = seed
        self.cfg = cfg
        self.initial_conf = ConfState(voters=frozenset(vs), learners=frozenset(ls))
        self.storages: dict[int, MemoryStorage] = {}
        self.nodes: dict[int, RawNode] = {}
        self.state: dict[int, NodeState] = {}
        self.cut_links: set[tuple[int, int]] = set()
        self.dropped_types: set[MessageType] = set()
        self.frozen: set[int] = set()
        self.delivered: list[Message] = []
        self.dropped: list[Message] = []
        self.queue: deque[Message] = deque()
        self.filters: list[Callable[[Message], bool]] = []
        for nid in vs + ls:
            st = (storages or {}).get(nid) or boot_storage(vs, ls)
            self._start(nid, st)

    # -- membership of the harness -------------------------------------------------------
    def _start(self, nid: int, storage: MemoryStorage, applied: int = 0, **cfg: Any) -> None:
        self.storages[nid] = storage
        kw = {**self.cfg, **cfg}
        if applied:
            kw["applied"] = applied
        self.nodes[nid] = RawNode(make_config(nid, self.seed, **kw), storage)
        ns = NodeState(applied_index=max(applied, storage.first_index() - 1))
        ns.conf_state = storage.snapshot().meta.conf_state
        self.state[nid] = ns

    def add_node(self, nid: int, **cfg: Any) -> None:
        """Start a new, empty member from the bootstrap snapshot (it learns the rest)."""
        self._start(nid, boot_storage(self.initial_conf.voters, self.initial_conf.learners),
                    **cfg)

    def restart(self, nid: int, applied: int | None = None, **cfg: Any) -> None:
        """Crash ``nid`` (losing everything not in its storage) and start it again.

        ``applied`` is what the state machine had durably applied (default: what the
        harness saw applied before the crash).
        """
        prev = self.state[nid]
        keep = prev.applied_index if applied is None else applied
        self.queue = deque(m for m in self.queue if m.to != nid)
        self._start(nid, self.storages[nid], applied=keep, **cfg)

    def raft(self, nid: int) -> Any:
        """The node's inner :class:`Raft` (typed ``Any`` for terse white-box asserts)."""
        return self.nodes[nid].raft

    # -- faults -----------------------------------------------------------------------------
    def cut(self, a: int, b: int) -> None:
        self.cut_links |= {(a, b), (b, a)}

    def isolate(self, a: int) -> None:
        for b in self.nodes:
            if b != a:
                self.cut(a, b)

    def drop(self, *types: MessageType) -> None:
        self.dropped_types |= set(types)

    def drop_if(self, pred: Callable[[Message], bool]) -> None:
        """Drop every message for which ``pred`` is true (until :meth:`recover`)."""
        self.filters.append(pred)

    def recover(self) -> None:
        self.cut_links.clear()
        self.dropped_types.clear()
        self.filters.clear()

    def _blocked(self, m: Message) -> bool:
        return ((m.frm, m.to) in self.cut_links or m.type in self.dropped_types
                or m.to not in self.nodes or any(f(m) for f in self.filters))

    # -- driving ----------------------------------------------------------------------------
    def send(self, *msgs: Message) -> None:
        """Queue ``msgs`` and deliver until the network is quiet."""
        self.queue.extend(msgs)
        self.stabilize()

    def stabilize(self) -> None:
        """Handle every pending Ready and deliver every message until nothing is left."""
        for _ in range(_MAX_STEPS):
            self._handle_all_readies()
            if not self.queue:
                return
            m = self.queue.popleft()
            if self._blocked(m):
                self.dropped.append(m)
                continue
            self.delivered.append(m)
            self.nodes[m.to].step(m)
        raise RuntimeError("network did not stabilize")

    def _handle_all_readies(self) -> None:
        for nid in sorted(self.nodes):
            raw = self.nodes[nid]
            if nid not in self.frozen and raw.has_ready():
                self.handle_ready(nid, raw.ready())

    def step_only(self, m: Message) -> list[Message]:
        """Deliver ``m``, handle the receiver's Ready, and return (not send) what it says."""
        raw = self.nodes[m.to]
        raw.step(m)
        out: list[Message] = []
        while raw.has_ready():
            self.handle_ready(m.to, raw.ready(), out)
        return out

    def handle_ready(self, nid: int, rd: Ready, out: list[Message] | None = None) -> None:
        """Persist, send, apply and advance one Ready of ``nid`` (the driver loop).

        Messages go to the network queue, or to ``out`` when given.
        """
        raw, st, ns = self.nodes[nid], self.storages[nid], self.state[nid]
        outbox: deque[Message] | list[Message] = self.queue if out is None else out
        ns.readies += 1
        outbox.extend(rd.messages_now)
        if rd.snapshot is not None:
            st.apply_snapshot(rd.snapshot)
            ns.applied_index = rd.snapshot.meta.index
            ns.conf_state = rd.snapshot.meta.conf_state
        st.append(rd.entries)
        if rd.hard_state is not None:
            st.set_hard_state(rd.hard_state)
        outbox.extend(rd.messages_after_persist)
        for e in rd.committed_entries:
            ns.applied.append(e)
            ns.applied_index = e.index
            if e.type is EntryType.CONF_CHANGE:
                ns.conf_state = raw.apply_conf_change(ConfChange.decode(e.data))
        ns.read_states.extend(rd.read_states)
        raw.advance(rd)

    def tick(self, nid: int, n: int = 1) -> None:
        """Tick ``nid`` ``n`` times, delivering everything after each tick."""
        for _ in range(n):
            self.nodes[nid].tick()
            self.stabilize()

    def tick_all(self, n: int = 1) -> None:
        for _ in range(n):
            for nid in sorted(self.nodes):
                self.nodes[nid].tick()
            self.stabilize()

    def campaign(self, nid: int) -> None:
        self.nodes[nid].campaign()
        self.stabilize()

    def elect(self, nid: int) -> None:
        """Make ``nid`` leader (by an immediate campaign) and settle the cluster."""
        self.campaign(nid)
        if self.role(nid) is not StateRole.LEADER:
            raise AssertionError(f"{nid} did not win: {self.role(nid)}")

    def propose(self, nid: int, data: bytes) -> None:
        self.nodes[nid].propose(data)
        self.stabilize()

    # -- inspection ---------------------------------------------------------------------------
    def role(self, nid: int) -> StateRole:
        return self.nodes[nid].raft.role

    def term(self, nid: int) -> int:
        return int(self.nodes[nid].raft.term)

    def committed(self, nid: int) -> int:
        return int(self.nodes[nid].raft.log.committed)

    def last_index(self, nid: int) -> int:
        return int(self.nodes[nid].raft.log.last_index())

    def leaders(self) -> list[int]:
        return [n for n in sorted(self.nodes) if self.role(n) is StateRole.LEADER]

    def applied_data(self, nid: int) -> list[bytes]:
        """The payloads of the non-empty normal entries ``nid`` applied, in order."""
        return [e.data for e in self.state[nid].applied
                if e.type is EntryType.NORMAL and e.data]

    def log_terms(self, nid: int) -> list[int]:
        """Terms of ``nid``'s entries from the first index to the last."""
        log = self.nodes[nid].raft.log
        return [int(log.term(i)) for i in range(log.first_index(), log.last_index() + 1)]

    def count(self, mtype: MessageType, *, frm: int | None = None, to: int | None = None,
              since: int = 0) -> int:
        """How many delivered messages of ``mtype`` (from/to given nodes) since ``since``."""
        return sum(1 for m in self.delivered[since:]
                   if m.type is mtype and (frm is None or m.frm == frm)
                   and (to is None or m.to == to))
