"""Leader-side lease expiry (etcd ``lessor.runLoop`` / ``revokeExpiredLeases``).

Only the leader decides that a lease has expired, and it does so by *proposing* a
:class:`~raftkv.state.commands.LeaseRevoke`; every member then deletes the lease and its keys
when the entry applies. Followers never expire anything.

Deadlines in the replicated lease table are in the proposing member's :func:`clock_ms`.
A new leader therefore first re-bases every lease on its own clock with a full TTL (plus an
election timeout of slack), by proposing one :class:`~raftkv.state.commands.LeaseCheckpoint`
per batch of leases, as etcd's ``Promote`` does. Until that has applied, it revokes nothing:
a leader change never expires a live lease early; at worst it extends a lease by one TTL.

The keeper waits, before re-basing, for a read barrier: a ReadIndex round proves this member
is the leader of the current term and has applied everything committed before it, so the
checkpoint covers every lease granted under the previous leader.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from raftkv.errors import RaftKVError
from raftkv.server.node import NodeDriver
from raftkv.state.commands import LeaseCheckpoint, LeaseCheckpointItem, LeaseRevoke

log = logging.getLogger("raftkv.server.lease_keeper")

_ANCHOR_S = time.time() - time.monotonic()


def clock_ms() -> int:
    """This process's lease clock in milliseconds: monotonic, anchored to the wall clock
    once at start, so it never jumps inside a process and agrees (up to clock sync)
    between the members of a cluster. Deadlines proposed by one member are read by
    another only for display (``LeaseTimeToLive``); expiry itself is always decided on the
    leader's clock after it has re-based every lease."""
    return int((time.monotonic() + _ANCHOR_S) * 1000)


CHECK_INTERVAL_S = 0.5
"""How often the leader looks for expired leases (etcd: 500 ms)."""
MAX_REVOKES_PER_S = 1000
"""etcd's ``leaseRevokeRate``."""
CHECKPOINT_BATCH = 1000
"""Leases per :class:`LeaseCheckpoint` entry when re-basing (etcd:
``maxLeaseCheckpointBatchSize``)."""


class LeaseKeeper:
    """Runs on every member; acts only while this member is the leader.

    Invariants:
        * ``_rebased_term`` is the term in which this member, as leader, has applied a
          re-base of every lease; no revoke is proposed in a term that is not re-based.
    """

    def __init__(self, driver: NodeDriver, *, clock: Callable[[], int] = clock_ms,
                 interval_s: float = CHECK_INTERVAL_S,
                 max_revokes_per_s: int = MAX_REVOKES_PER_S) -> None:
        self.driver = driver
        self.clock = clock
        self.interval_s = interval_s
        self.budget = max(1, int(max_revokes_per_s * interval_s))
        self._rebased_term = 0
        self._wake = asyncio.Event()

    @property
    def slack_ms(self) -> int:
        """One election timeout: the time a new leader may take to be elected."""
        d = self.driver
        return int(d.raw.raft.cfg.election_ticks * d.cfg.tick_interval_s * 1000)

    def on_leadership(self, leader: bool) -> None:
        """The driver's leadership hook (called on every soft-state change)."""
        if not leader:
            self._rebased_term = 0
        self._wake.set()

    async def run(self) -> None:
        """Loop until cancelled."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.interval_s)
            self._wake.clear()
            try:
                await self.step()
            except RaftKVError as exc:  # no leader, timeout, stopping: try again later
                log.debug("lease keeper: %s", exc)

    async def step(self) -> None:
        """One round: re-base after an election, otherwise revoke what is due."""
        d = self.driver
        if not d.is_leader:
            return
        term = d.raw.raft.term
        if self._rebased_term != term:
            await self._rebase(term)
        else:
            await self._revoke_expired(term)

    async def _rebase(self, term: int) -> None:
        d = self.driver
        await d.read_barrier()
        now = self.clock()
        ids = d.sm.lease_ids()
        items = []
        for lease_id in ids:
            st = d.sm.lease_status(lease_id, now)
            if st is not None:
                items.append(LeaseCheckpointItem(lease_id, st.ttl_s * 1000 + self.slack_ms))
        for i in range(0, len(items), CHECKPOINT_BATCH):
            if not self._still_leader(term):
                return
            batch = tuple(items[i:i + CHECKPOINT_BATCH])
            await d.propose(LeaseCheckpoint(batch, now), internal=True)
        if self._still_leader(term):
            self._rebased_term = term
            log.info("leader in term %d: re-based %d leases on this member's clock",
                     term, len(items))

    async def _revoke_expired(self, term: int) -> None:
        d = self.driver
        due = d.sm.expired_leases(self.clock())[: self.budget]
        if not due or not self._still_leader(term):
            return
        log.info("revoking %d expired leases", len(due))
        results = await asyncio.gather(*(d.propose(LeaseRevoke(i), internal=True) for i in due),
                                       return_exceptions=True)
        for r in results:
            if isinstance(r, BaseException) and not isinstance(r, RaftKVError):
                raise r

    def _still_leader(self, term: int) -> bool:
        d = self.driver
        return d.is_leader and d.raw.raft.term == term
