"""Sentinels raised by the pure Raft core.

The server maps them onto :mod:`raftkv.errors`. :class:`RaftInvariantError` is for
fail-stop: something that must never happen did (we never use ``assert`` for this).
"""

from __future__ import annotations


class RaftError(Exception):
    """Base of the core's sentinels."""


class ProposalDropped(RaftError):
    """A proposal was dropped: no leader known, a transfer in progress, or not a member."""


class Compacted(RaftError):
    """The requested index is older than the log's first index (covered by a snapshot)."""


class Unavailable(RaftError):
    """The requested index is beyond the last index of storage."""


class SnapshotTemporarilyUnavailable(RaftError):
    """The storage cannot produce a snapshot right now; try again later."""


class RaftInvariantError(RaftError):
    """An internal invariant broke. The node must stop (fail-stop), never continue."""
