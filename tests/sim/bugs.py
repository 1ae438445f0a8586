"""Bugs planted in the Raft core, each the kind of mistake the simulator must catch.

Each is a context manager that monkeypatches one seam of the core and restores it on exit.
Used by ``tests/sim/test_planted_bugs.py`` only; nothing in ``raftkv`` knows about them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager

from raftkv.raft import _leader, core
from raftkv.raft.log import RaftLog
from raftkv.raft.types import Entry, Message, MessageType, StateRole


@contextmanager
def _patched(owner: object, name: str, value: object) -> Iterator[None]:
    old = getattr(owner, name)
    setattr(owner, name, value)
    try:
        yield
    finally:
        setattr(owner, name, old)


def commit_previous_term_by_counting() -> AbstractContextManager[None]:
    """(a) Commit any index a quorum holds, whatever its term (Figure 8 of the paper)."""

    def maybe_commit(self: RaftLog, max_index: int, term: int) -> bool:
        if max_index > self.committed:
            self.commit_to(max_index)
            return True
        return False

    return _patched(RaftLog, "maybe_commit", maybe_commit)


def vote_before_persist() -> AbstractContextManager[None]:
    """(b) Send a vote grant before the vote (and term) are durable."""
    original = core.needs_persist

    def needs_persist(m: Message, role: StateRole) -> bool:
        if m.type is MessageType.VOTE_RESP:
            return False
        return original(m, role)

    return _patched(core, "needs_persist", needs_persist)


def skip_append_consistency_check() -> AbstractContextManager[None]:
    """(c) Accept an append without checking the previous entry's index and term."""

    def maybe_append(self: RaftLog, index: int, log_term: int, committed: int,
                     ents: tuple[Entry, ...]) -> int | None:
        if index > self.last_index():
            return None  # cannot append past a gap even when buggy
        last_new = index + len(ents)
        conflict = self.find_conflict(ents)
        if conflict != 0 and conflict > self.committed:
            self.append(ents[conflict - index - 1:])
        self.commit_to(min(committed, last_new))
        return last_new

    return _patched(RaftLog, "maybe_append", maybe_append)


def two_pending_conf_changes() -> AbstractContextManager[None]:
    """(d) Allow a membership change while another is still pending."""

    def conf_change_allowed(r: object) -> bool:
        return True

    return _patched(_leader, "conf_change_allowed", conf_change_allowed)


def read_index_without_heartbeat() -> AbstractContextManager[None]:
    """(e) Answer a ReadIndex request at once, without confirming leadership."""

    def send_read_index(r: core.Raft, m: Message) -> None:
        _leader._respond_read(r, m, r.log.committed)

    return _patched(_leader, "send_read_index", send_read_index)


PLANTED: dict[str, Callable[[], AbstractContextManager[None]]] = {
    "a-commit-previous-term": commit_previous_term_by_counting,
    "b-vote-before-persist": vote_before_persist,
    "c-skip-append-check": skip_append_consistency_check,
    "d-two-pending-conf-changes": two_pending_conf_changes,
    "e-read-index-without-heartbeat": read_index_without_heartbeat,
}
