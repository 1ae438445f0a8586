"""The seeded simulator: many `RawNode`s, a hostile network, crashes, membership changes and
clients, all driven by one ``random.Random(seed)``, with Raft's safety properties checked
after every step.

A run is a pure function of its :class:`SimConfig`: the same seed replays the same steps,
so a failing seed is a reproducible bug report. Run it as::

    python -m chaos.sim --seeds 1000 --nodes 5 --ticks 2000

Checked after every step (a violation raises :class:`Violation` with a trace):

- election safety: at most one leader per term (§5.2);
- log matching: two logs holding an entry with the same index and term hold the same
  entry there and agree on the term of the entry before it (so, by induction, on the
  whole prefix) (§5.3);
- leader completeness: a new leader holds every entry committed before its election (§5.4);
- state machine safety: every node applies the same entry at each index, and an entry
  once committed is never replaced, across crashes and restarts (§5.4.3);
- at most one pending membership change, and none before the leader's no-op commits;
- linearizable reads: a ReadIndex read reflects every write acknowledged before it began;
- liveness: once faults heal, a leader emerges within a bounded number of ticks and every
  proposal made to it commits.
"""

from __future__ import annotations

import heapq
import random
from collections import deque
from dataclasses import dataclass, field, replace
from typing import Any

from chaos.simnode import ZERO_HASH, NodeKnobs, SimNode, encode_state
from raftkv.raft.errors import ProposalDropped
from raftkv.raft.rawnode import Ready
from raftkv.raft.types import (
    ConfChange,
    ConfChangeType,
    ConfState,
    Entry,
    EntryType,
    HardState,
    Message,
    MessageType,
    Snapshot,
    SnapshotMeta,
    StateRole,
)

MT = MessageType


class Violation(AssertionError):
    """A safety or liveness property failed. ``trace`` holds the last steps."""

    def __init__(self, seed: int, tick: int, what: str, trace: list[str]) -> None:
        super().__init__(f"seed {seed}, tick {tick}: {what}")
        self.seed = seed
        self.tick = tick
        self.what = what
        self.trace = trace


@dataclass(frozen=True, slots=True)
class Faults:
    """Which faults a run injects, and how often (probabilities are per tick or message)."""

    drop: float = 0.03
    duplicate: float = 0.02
    max_delay: int = 3
    partition: float = 0.015
    heal: float = 0.03
    crash: float = 0.006
    crash_mid_ready: float = 0.01
    bounce: float = 0.5
    restart: float = 0.05
    pause: float = 0.004
    membership: float = 0.008
    transfer: float = 0.004
    chase: float = 0.1
    """Probability of isolating a leader right after it is elected (divergent logs)."""

    def swarm(self, rng: random.Random) -> Faults:
        """A per-seed mix ("swarm testing"): each fault kind scaled by 0 to 4, so that
        some seeds stress one fault hard while others combine several gently."""
        scale = [0.0, 0.5, 1.0, 2.0, 4.0]
        kw = {name: min(1.0, getattr(self, name) * rng.choice(scale))
              for name in ("drop", "duplicate", "partition", "crash", "crash_mid_ready",
                           "pause", "membership", "transfer", "chase")}
        return replace(self, max_delay=rng.choice([1, 3, 6]), **kw)

    @classmethod
    def none(cls) -> Faults:
        return cls(drop=0, duplicate=0, max_delay=1, partition=0, heal=0, crash=0,
                   crash_mid_ready=0, bounce=0, restart=0, pause=0, membership=0,
                   transfer=0, chase=0)


@dataclass(frozen=True, slots=True)
class SimConfig:
    seed: int
    nodes: int = 5
    ticks: int = 2000
    heal_ticks: int = 300
    """The last ``heal_ticks`` ticks run without faults, to check liveness."""
    faults: Faults = field(default_factory=Faults)
    swarm: bool = True
    """Scale each fault kind per seed (see :meth:`Faults.swarm`)."""
    election_ticks: int = 10
    heartbeat_ticks: int = 2
    snapshot_every: int = 30
    keep_entries: int = 8
    write_rate: float = 0.6
    read_rate: float = 0.3
    max_voters: int = 5
    min_voters: int = 3
    leader_bound_ticks: int = 200
    commit_bound_ticks: int = 100
    drain_ticks: int = 2000
    trace_len: int = 300
    max_size_per_msg: int | None = None
    """Bytes per append; None picks one per seed (tiny values split appends per entry)."""
    max_inflight_msgs: int | None = None


@dataclass(slots=True)
class SimStats:
    ticks: int = 0
    messages: int = 0
    leaders: int = 0
    commits: int = 0
    reads: int = 0
    crashes: int = 0
    partitions: int = 0
    conf_changes: int = 0
    snapshots_sent: int = 0
    heal_commits: int = 0


class Simulator:
    """One seeded run. Call :meth:`run`; it raises :class:`Violation` or returns stats."""

    def __init__(self, cfg: SimConfig) -> None:
        self.cfg = cfg
        self.rng = random.Random(cfg.seed)
        self.now = 0
        self.stats = SimStats()
        self.trace: deque[tuple[Any, ...]] = deque(maxlen=cfg.trace_len)
        self.net: list[tuple[int, int, Message]] = []  # heap of (due tick, seq, message)
        self.seq = 0
        self.blocked: set[tuple[int, int]] = set()
        self.faults = cfg.faults.swarm(self.rng) if cfg.swarm else cfg.faults
        self.healed = False
        # global knowledge for the checks
        self.leader_of_term: dict[int, int] = {}
        self.votes: dict[tuple[int, int], int] = {}
        self.entry_meta: dict[tuple[int, int], tuple[bytes, int]] = {}
        self.committed: dict[int, tuple[int, bytes]] = {}
        self.apply_hash: dict[int, bytes] = {}
        self.max_committed = 0
        self.acked: dict[bytes, int] = {}
        self.max_acked = 0
        self.read_starts: dict[bytes, int] = {}
        self.heal_proposals: dict[bytes, tuple[int, int, int]] = {}
        self.progress_mark = (0, 0)
        self.chase_at = -1
        self.last_matches: dict[int, int] = {}
        self.next_node_id = cfg.nodes + 1
        self.max_size_per_msg = cfg.max_size_per_msg or self.rng.choice([1, 64, 512, 4096])
        self.max_inflight_msgs = cfg.max_inflight_msgs or self.rng.choice([1, 2, 8, 64])
        self.nodes: dict[int, SimNode] = {}
        self._bootstrap()

    # -- set-up ------------------------------------------------------------------------------
    def _bootstrap(self) -> None:
        voters = frozenset(range(1, self.cfg.nodes + 1))
        meta = SnapshotMeta(index=1, term=1, conf_state=ConfState(voters=voters))
        snap = Snapshot(meta=meta, data=encode_state(1, ZERO_HASH))
        self.committed[1] = (1, b"bootstrap")
        self.max_committed = 1
        self.commit_by_term: dict[int, int] = {}
        for nid in sorted(voters):
            node = SimNode(nid, self._node_rng(), self._knobs())
            node.storage.apply_snapshot(snap)
            node.storage.set_hard_state(HardState(term=1, commit=1))  # as etcd bootstraps
            node.start()
            self.nodes[nid] = node

    def _knobs(self) -> NodeKnobs:
        c = self.cfg
        return NodeKnobs(c.election_ticks, c.heartbeat_ticks, self.max_size_per_msg,
                         self.max_inflight_msgs, c.snapshot_every, c.keep_entries)

    def _node_rng(self) -> random.Random:
        return random.Random(self.rng.getrandbits(64))

    def fail(self, what: str) -> None:
        raise Violation(self.cfg.seed, self.now, what, self.format_trace())

    def format_trace(self) -> list[str]:
        out = []
        for item in self.trace:
            tick, fmt, *args = item
            out.append(f"t={tick:<5} " + (fmt % tuple(args) if args else fmt))
        return out

    def note(self, fmt: str, *args: Any) -> None:
        self.trace.append((self.now, fmt, *args))

    # -- main loop ---------------------------------------------------------------------------
    def run(self) -> SimStats:
        """Run every tick; an exception inside the core is reported as a violation too."""
        try:
            return self._run()
        except Violation:
            raise
        except Exception as exc:
            import traceback

            tb = traceback.format_exc().splitlines()
            raise Violation(self.cfg.seed, self.now, f"exception {exc!r}",
                            self.format_trace() + tb) from exc

    def _run(self) -> SimStats:
        fault_until = self.cfg.ticks - self.cfg.heal_ticks
        for tick in range(1, self.cfg.ticks + 1):
            self.now = tick
            if self.now <= fault_until:
                self._inject_faults()
            elif not self.healed:
                self._heal_all()
            self._client_ops()
            for node in list(self.nodes.values()):
                if node.raw is not None and not node.paused_until > self.now:
                    node.raw.tick()
            self._deliver_and_process()
            if self.healed:
                self._check_liveness()
        self._drain()
        if self.cfg.heal_ticks > self.cfg.commit_bound_ticks and self.stats.heal_commits == 0:
            self.fail("liveness: no proposal committed after the faults healed")
        self.stats.ticks = self.cfg.ticks
        return self.stats

    def _drain(self) -> None:
        """Keep ticking, without new proposals, until every proposal made to the leader
        after the heal has committed (bounded by ``drain_ticks``)."""
        end = self.now + self.cfg.drain_ticks
        while self.heal_proposals and self.now < end:
            self.now += 1
            for node in list(self.nodes.values()):
                if node.raw is not None:
                    node.raw.tick()
            self._deliver_and_process()
            self._check_liveness()
        if self.heal_proposals:
            data = next(iter(self.heal_proposals))
            self.fail(f"liveness: {len(self.heal_proposals)} proposal(s) made to the leader "
                      f"after the heal never committed, e.g. {data!r}")

    def _deliver_and_process(self) -> None:
        for _ in range(16):
            self._process_all_readies()
            if not self.net or self.net[0][0] > self.now:
                return
            while self.net and self.net[0][0] <= self.now:
                _, _, m = heapq.heappop(self.net)
                self._deliver(m)
        self._process_all_readies()

    # -- the network ---------------------------------------------------------------------------
    def send(self, m: Message) -> None:
        self.stats.messages += 1
        if m.type is MT.VOTE_RESP and not m.reject:
            granted = self.votes.setdefault((m.frm, m.term), m.to)
            if granted != m.to:
                self.fail(f"double vote: {m.frm:x} voted for {granted:x} and {m.to:x} "
                          f"in term {m.term}")
        if (m.frm, m.to) in self.blocked or self.rng.random() < self.faults.drop:
            self._on_undelivered(m)
            return
        copies = 2 if self.rng.random() < self.faults.duplicate else 1
        for _ in range(copies):
            delay = self.rng.randint(0, self.faults.max_delay)
            self.seq += 1
            heapq.heappush(self.net, (self.now + delay, self.seq, m))

    def _on_undelivered(self, m: Message) -> None:
        if m.type is MT.SNAP:
            sender = self.nodes.get(m.frm)
            if sender is not None and sender.raw is not None:
                sender.raw.report_snapshot(m.to, ok=False)

    def _deliver(self, m: Message) -> None:
        node = self.nodes.get(m.to)
        if node is None or node.raw is None or (m.frm, m.to) in self.blocked:
            self._on_undelivered(m)
            return
        if node.paused_until > self.now:
            self.seq += 1
            heapq.heappush(self.net, (node.paused_until, self.seq, m))
            return
        self.trace.append((self.now, "%x->%x %s t%d i%d lt%d c%d n%d%s", m.frm, m.to,
                           m.type.name, m.term, m.index, m.log_term, m.commit,
                           len(m.entries), " reject" if m.reject else ""))
        node.raw.step(m)
        if m.type is MT.SNAP:
            self.stats.snapshots_sent += 1
            sender = self.nodes.get(m.frm)
            if sender is not None and sender.raw is not None:
                sender.raw.report_snapshot(m.to, ok=True)

    # -- readies -------------------------------------------------------------------------------
    def _process_all_readies(self) -> None:
        for _ in range(8):
            busy = False
            for node in list(self.nodes.values()):
                raw = node.raw
                if raw is not None and node.paused_until <= self.now and raw.has_ready():
                    busy = True
                    self._handle_ready(node, raw.ready())
            if not busy:
                return

    def _handle_ready(self, node: SimNode, rd: Ready) -> None:
        if rd.soft_state is not None:
            self._on_soft_state(node, rd)
        for m in rd.messages_now:
            self.send(m)
        if rd.must_sync and self.rng.random() < self.faults.crash_mid_ready:
            # A crash at the durability boundary: what was sent is out, nothing persisted.
            self.note("%x crashes before persisting a ready (%d entries, %s)", node.id,
                      len(rd.entries), rd.hard_state)
            self._crash(node)
            if self.rng.random() < self.faults.bounce:
                self._restart(node)  # the process manager restarts it at once
            return
        if rd.snapshot is not None:
            self._install_snapshot(node, rd.snapshot)
        if rd.entries:
            node.storage.append(rd.entries)
            self._check_log_matching(node, rd.entries)
        if rd.hard_state is not None:
            node.storage.set_hard_state(rd.hard_state)
        for m in rd.messages_after_persist:
            self.send(m)
        for e in rd.committed_entries:
            self._apply(node, e)
        for rs in rd.read_states:
            self._check_read(node, rs.index, rs.context)
        assert node.raw is not None
        node.raw.advance(rd)
        raft = node.raw.raft
        # What this term's leader has committed (and applied, so recorded above).
        if raft.role is StateRole.LEADER and raft.log.applied > self.commit_by_term.get(
                raft.term, 0):
            self.commit_by_term[raft.term] = raft.log.applied
        if node.raw.raft.role is StateRole.LEADER and rd.entries:
            self._check_conf_change_rule(node, rd.entries)
        node.maybe_snapshot()

    def _on_soft_state(self, node: SimNode, rd: Ready) -> None:
        assert node.raw is not None
        assert rd.soft_state is not None
        raft = node.raw.raft
        if rd.soft_state.role is not StateRole.LEADER:
            return
        self.stats.leaders += 1
        term = raft.term
        self.note("%x becomes leader at term %d (last index %d)", node.id, term,
                  raft.log.last_index())
        other = self.leader_of_term.setdefault(term, node.id)
        if other != node.id:
            self.fail(f"election safety: {other:x} and {node.id:x} both lead term {term}")
        self._check_leader_completeness(node)
        if not self.healed and self.rng.random() < self.faults.chase:
            self.chase_at = self.now + self.rng.randint(0, 2 * self.cfg.heartbeat_ticks)

    # -- checks ---------------------------------------------------------------------------------
    def _check_log_matching(self, node: SimNode, entries: tuple[Entry, ...]) -> None:
        prev_term = node.term_at(entries[0].index - 1)
        for e in entries:
            key = (e.index, e.term)
            seen = self.entry_meta.get(key)
            if seen is None or (seen[1] < 0 <= prev_term and seen[0] == e.data):
                self.entry_meta[key] = (e.data, prev_term)
            elif seen[0] != e.data or (prev_term >= 0 and seen[1] >= 0 and seen[1] != prev_term):
                self.fail(f"log matching: {node.id:x} holds a different entry at index "
                          f"{e.index} term {e.term} (or a different predecessor)")
            prev_term = e.term

    def _check_leader_completeness(self, node: SimNode) -> None:
        """§5.4: an entry committed in term t is in the log of every leader of a term > t.
        (A leader of an older term may still be elected late and lack newer commits.)"""
        assert node.raw is not None
        term = node.raw.raft.term
        idx = max((c for t, c in self.commit_by_term.items() if t < term), default=1)
        committed_term, _ = self.committed[idx]
        t = node.term_at(idx)
        if t == -1:  # covered by the node's snapshot
            if node.storage.snapshot().meta.index < idx:
                self.fail(f"leader completeness: {node.id:x} lacks committed index {idx}")
            return
        if t != committed_term:
            self.fail(f"leader completeness: new leader {node.id:x} of term {term} has term "
                      f"{t} at index {idx}, committed with term {committed_term} before "
                      f"term {term}")

    def _record_commit(self, node: SimNode, index: int, term: int, data: bytes) -> None:
        seen = self.committed.setdefault(index, (term, data))
        if seen != (term, data):
            self.fail(f"state machine safety: {node.id:x} applies term {term} at index "
                      f"{index}, but term {seen[0]} was committed there")
        if index > self.max_committed:
            self.max_committed = index
            self.stats.commits += 1

    def _apply(self, node: SimNode, e: Entry) -> None:
        self._record_commit(node, e.index, e.term, e.data)
        node.apply_entry(e)
        chain = self.apply_hash.setdefault(e.index, node.hash)
        if chain != node.hash:
            self.fail(f"state machine safety: {node.id:x} applied a different history up to "
                      f"index {e.index}")
        if e.type is EntryType.CONF_CHANGE:
            self._on_conf_change_applied(node, ConfChange.decode(e.data))
        elif e.data and e.data not in self.acked:
            self.acked[e.data] = e.index
            self.max_acked = max(self.max_acked, e.index)
            if self.heal_proposals.pop(e.data, None) is not None:
                self.stats.heal_commits += 1

    def _install_snapshot(self, node: SimNode, snap: Snapshot) -> None:
        meta = snap.meta
        seen = self.committed.get(meta.index)
        if seen is not None and seen[0] != meta.term:
            self.fail(f"snapshot at {meta.index} has term {meta.term}, committed {seen[0]}")
        node.storage.apply_snapshot(snap)
        node.restore(snap)
        chain = self.apply_hash.get(meta.index)
        if chain is not None and chain != node.hash:
            self.fail(f"snapshot at {meta.index} sent to {node.id:x} holds a different state")
        self.note("%x installs snapshot at %d", node.id, meta.index)

    def _check_read(self, node: SimNode, index: int, ctx: bytes) -> None:
        start = self.read_starts.pop(ctx, None)
        if start is None:
            return
        self.stats.reads += 1
        if index < start:
            self.fail(f"stale read: {node.id:x} served read {ctx!r} at index {index}, but "
                      f"a write acknowledged before the read began is at index {start}")

    def _check_conf_change_rule(self, node: SimNode, entries: tuple[Entry, ...]) -> None:
        assert node.raw is not None
        raft = node.raw.raft
        for e in entries:
            if e.type is not EntryType.CONF_CHANGE or e.term != raft.term:
                continue
            if node.term_at(raft.log.committed) != raft.term and e.index > 0:
                ok = any(self.committed.get(i, (0, b""))[0] == raft.term
                         for i in range(raft.log.committed, e.index))
                if not ok:
                    self.fail(f"{node.id:x} proposed a membership change at {e.index} "
                              f"before committing an entry of its term {raft.term}")
            lo = max(raft.log.committed + 1, raft.log.first_index())
            for other in raft.log.slice(lo, e.index):
                if other.type is EntryType.CONF_CHANGE:
                    self.fail(f"two pending membership changes at {other.index} and "
                              f"{e.index} on leader {node.id:x}")

    def _check_liveness(self) -> None:
        """After the heal: a leader within ``leader_bound_ticks``; while it has proposals
        outstanding, the commit index advances at least every ``commit_bound_ticks``; and
        at the end every proposal made to a still-reigning leader has committed."""
        heal_at = self.cfg.ticks - self.cfg.heal_ticks
        leader = self._leader()
        if leader is None or leader.raw is None:
            if self.now - heal_at > self.cfg.leader_bound_ticks:
                self.fail(f"liveness: no leader {self.cfg.leader_bound_ticks} ticks after heal")
            return
        term = leader.raw.raft.term
        for data, (_, nid, t) in list(self.heal_proposals.items()):
            if nid != leader.id or t != term:
                # Its leader was deposed: the outcome is indeterminate, not a failure.
                del self.heal_proposals[data]
        # Progress = the commit index or some follower's match index advancing (a long
        # catch-up with one entry per message under reordering is slow but not stuck).
        matches = {nid: pr.match for nid, pr in leader.raw.raft.prs.items()}
        moved = any(m > self.last_matches.get(nid, -1) for nid, m in matches.items())
        self.last_matches = matches
        if moved or self.max_committed > self.progress_mark[0] or not self.heal_proposals:
            self.progress_mark = (self.max_committed, self.now)
        elif self.now - self.progress_mark[1] > self.cfg.commit_bound_ticks:
            self.fail(f"liveness: no replication progress for {self.cfg.commit_bound_ticks} "
                      f"ticks with proposals outstanding (commit {self.max_committed})")

    def _leader(self) -> SimNode | None:
        best: SimNode | None = None
        for node in self.nodes.values():
            if node.raw is not None and node.raw.raft.role is StateRole.LEADER and (
                    best is None or best.raw is None
                    or node.raw.raft.term > best.raw.raft.term):
                best = node
        return best

    # -- clients ------------------------------------------------------------------------------
    def _client_ops(self) -> None:
        live = [n for n in self.nodes.values() if n.raw is not None and not n.removed]
        if not live:
            return
        if self.rng.random() < self.cfg.write_rate:
            self._client_write(self.rng.choice(live))
        if self.rng.random() < self.cfg.read_rate:
            node = self.rng.choice(live)
            assert node.raw is not None
            self.seq += 1
            ctx = b"r%d" % self.seq
            self.read_starts[ctx] = self.max_acked
            try:
                node.raw.read_index(ctx)
            except ProposalDropped:
                self.read_starts.pop(ctx, None)

    def _client_write(self, node: SimNode) -> None:
        assert node.raw is not None
        self.seq += 1
        data = b"w%d" % self.seq
        if self.healed:
            leader = self._leader()
            if leader is None or leader.raw is None:
                return
            node = leader
        try:
            node.raw.propose(data)  # type: ignore[union-attr]
        except ProposalDropped:
            return
        if self.healed:
            assert node.raw is not None
            self.heal_proposals[data] = (self.now, node.id, node.raw.raft.term)
            self.note("client proposes %r to leader %x", data, node.id)

    # -- faults ---------------------------------------------------------------------------------
    def _inject_faults(self) -> None:
        f, r = self.faults, self.rng
        if self.chase_at == self.now:
            self._partition("chase")  # isolate the newly elected leader
        elif self.blocked and r.random() < f.heal:
            self.blocked = set()
            self.note("partition healed")
        elif r.random() < f.partition:
            self._partition()
        if r.random() < f.crash:
            victims = [n for n in self.nodes.values() if n.raw is not None]
            if victims:
                self._crash(self._pick_victim(victims))
        for node in self.nodes.values():
            if node.raw is None and not node.removed and r.random() < f.restart:
                self._restart(node)
        if r.random() < f.pause:
            self._pause()
        if r.random() < f.membership:
            self._membership_change()
        if r.random() < f.transfer:
            self._transfer()
        for node in self.nodes.values():
            if node.removed and node.raw is not None and (
                    self.now - node.removed_at > 3 * self.cfg.election_ticks):
                node.crash()  # a removed member shuts itself down, as etcd's do
                self.note("%x (removed) shuts down", node.id)

    def _pick_victim(self, candidates: list[SimNode]) -> SimNode:
        leader = self._leader()
        if leader is not None and leader in candidates and self.rng.random() < 0.4:
            return leader
        return self.rng.choice(candidates)

    def _partition(self, kind: str | None = None) -> None:
        ids = sorted(n.id for n in self.nodes.values() if not n.removed)
        r = self.rng
        kind = kind or r.choice(["random", "leader", "majority", "bridge"])
        leader = self._leader()
        if kind in ("leader", "chase") and leader is not None:
            side = {leader.id}
        elif kind == "majority":
            side = set(r.sample(ids, len(ids) // 2))
        else:
            side = {i for i in ids if r.random() < 0.5}
        other = set(ids) - side
        bridge = r.choice(ids) if kind == "bridge" else None
        self.blocked = {(a, b) for a in side for b in other if bridge not in (a, b)}
        self.blocked |= {(b, a) for a, b in self.blocked}
        self.stats.partitions += 1
        self.note("partition %s: %s | %s%s", kind, sorted(side), sorted(other),
                  f" bridge {bridge}" if bridge else "")

    def _crash(self, node: SimNode) -> None:
        self.stats.crashes += 1
        self.note("%x crashes", node.id)
        node.crash()

    def _restart(self, node: SimNode) -> None:
        node.start()
        self.note("%x restarts (commit %d, last %d)", node.id,
                  node.storage.hard_state.commit, node.storage.last_index())

    def _pause(self) -> None:
        live = [n for n in self.nodes.values() if n.raw is not None]
        if live:
            node = self._pick_victim(live)
            node.paused_until = self.now + self.rng.randint(5, 4 * self.cfg.election_ticks)
            self.note("%x paused until %d", node.id, node.paused_until)

    def _transfer(self) -> None:
        leader = self._leader()
        if leader is None or leader.raw is None:
            return
        voters = sorted(leader.raw.raft.voters - {leader.id})
        if voters:
            to = self.rng.choice(voters)
            self.note("transfer leadership %x -> %x", leader.id, to)
            leader.raw.transfer_leader(to)

    def _membership_change(self) -> None:
        leader = self._leader()
        if leader is None or leader.raw is None:
            return
        for _ in range(2 if self.rng.random() < 0.3 else 1):
            cc = self._choose_conf_change(leader)
            if cc is None:
                return
            try:
                leader.raw.propose_conf_change(cc)
            except ProposalDropped:
                self.note("conf change %s %x refused", cc.type.name, cc.node_id)
                return
            self.note("propose %s %x to %x", cc.type.name, cc.node_id, leader.id)

    def _choose_conf_change(self, leader: SimNode) -> ConfChange | None:
        assert leader.raw is not None
        raft = leader.raw.raft
        voters, learners = raft.voters, raft.learners
        if learners:
            # Promote only a learner that has caught up (etcd refuses MemberPromote
            # otherwise): a voter that cannot be caught up can cost the quorum.
            nid = min(learners)
            pr = raft.prs.get(nid)
            if pr is not None and pr.match >= raft.log.committed:
                return ConfChange(ConfChangeType.ADD_NODE, nid)
            return None
        if len(voters) < self.cfg.max_voters:
            nid = self.next_node_id
            self.next_node_id += 1
            node = SimNode(nid, self._node_rng(), self._knobs())
            node.start()
            self.nodes[nid] = node
            return ConfChange(ConfChangeType.ADD_LEARNER, nid)
        if len(voters) > self.cfg.min_voters:
            return ConfChange(ConfChangeType.REMOVE_NODE, self.rng.choice(sorted(voters)))
        return None

    def _on_conf_change_applied(self, node: SimNode, cc: ConfChange) -> None:
        assert node.raw is not None
        node.conf_state = node.raw.apply_conf_change(cc)
        self.stats.conf_changes += 1
        if cc.type is ConfChangeType.REMOVE_NODE:
            removed = self.nodes.get(cc.node_id)
            if removed is not None and not removed.removed:
                removed.removed = True
                removed.removed_at = self.now
                self.note("%x removed from the cluster", cc.node_id)

    def _heal_all(self) -> None:
        self.healed = True
        self.blocked = set()
        self.faults = replace(Faults.none(), max_delay=self.faults.max_delay)
        for node in self.nodes.values():
            node.paused_until = 0
            if node.raw is None and not node.removed:
                self._restart(node)
        self.note("all faults healed")



def run_seed(seed: int, nodes: int = 5, ticks: int = 2000) -> SimStats:
    """Run one seed with every fault enabled; raises :class:`Violation` on failure."""
    return Simulator(SimConfig(seed=seed, nodes=nodes, ticks=ticks)).run()


if __name__ == "__main__":
    from chaos.sim_cli import main

    raise SystemExit(main())
