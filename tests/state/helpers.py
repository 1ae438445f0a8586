"""Shared helpers for the state machine tests."""

from __future__ import annotations

from raftkv.state import MemoryBackend, StateMachine, encode_request
from raftkv.state.backend import Backend
from raftkv.state.commands import Command, ErrorResult, Request, Response


class Node:
    """A :class:`StateMachine` fed with consecutive log indexes."""

    def __init__(self, backend: Backend | None = None) -> None:
        self.backend = backend if backend is not None else MemoryBackend()
        self.sm = StateMachine(self.backend)
        self.index = self.sm.applied_index

    def apply(self, op: Command, client_id: int = 0, seq: int = 0, ack: int = 0) -> Response:
        """Propose and apply ``op``; returns its result (an ErrorResult on failure)."""
        self.index += 1
        applied = self.sm.apply(self.index, encode_request(Request(client_id, seq, op, ack)))
        assert applied.result is not None
        return applied.result

    def ok(self, op: Command) -> Response:
        """Like :meth:`apply`, but the result must not be an error."""
        result = self.apply(op)
        assert not isinstance(result, ErrorResult), result
        return result

    def error(self, op: Command) -> ErrorResult:
        """Like :meth:`apply`, but the result must be an error."""
        result = self.apply(op)
        assert isinstance(result, ErrorResult), result
        return result
