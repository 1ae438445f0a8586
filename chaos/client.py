"""A logical client: one member, raw etcd-v3 gRPC stubs, deadlines, and honest outcomes.

As in Jepsen, each client talks to exactly one member and has at most one operation in
flight. With ``--client raftkv`` the client also holds a :class:`raftkv.client.Client`
(:attr:`Client.rk`) whose endpoints start with that member and go on with the others, so
the library's retries (de-duplicated by request id), failover and deadlines are what is
tested; the ``set`` and ``register`` workloads then issue their operations through it.
Every operation is recorded as ``invoke`` and then:

* ``ok`` — the member answered, with the operation's result;
* ``fail`` — the operation definitely did not take effect: a read that errored (reads
  change nothing), a write that never left the client (connection refused: the member is
  down), or a write the member answered with a definite refusal (a failed txn comparison
  is raised as :class:`Refused` by the workload);
* ``info`` — a write whose outcome is unknown: deadline exceeded, connection lost, the
  member stopped or timed out the proposal. The client then takes a fresh process id
  (``process += concurrency``), because the old operation may still be in flight.

A :mod:`raftkv.errors` exception from the library is ``info`` for a write when the write
may have been applied (:class:`~raftkv.errors.UnavailableError` and its subclasses
``OutcomeUnknownError`` and ``DeadlineExceededError``, or an unclassified error), ``fail``
otherwise (a refusal such as ``InvalidRequestError``), and ``fail`` for any read.

With ``--tls`` (``tls=`` a :class:`chaos.tls.ClusterTLS`) the raw channel and the library
client both dial with the run's CA and client certificate (mutual TLS).

With ``--auth`` (``auth=`` the workload user's :class:`chaos.auth.Credentials`) the raw
channel carries that user's token (:func:`chaos.auth.open_channel`: a call refused for a
stale token is sent again with a new one; a request for which no token could be had raises
:class:`chaos.auth.NotSent` and is a ``fail``), and the library client gets ``username=``
and ``password=`` (it re-authenticates by itself; a write whose re-authentication failed
with an unavailable member is ``info``, as any unavailable write).
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

import grpc

import raftkv.client
from chaos.auth import Credentials, NotSent, Tokens, open_channel
from chaos.history import Event, EventType, Key, Recorder, Value
from chaos.tls import ClusterTLS
from raftkv.errors import RaftKVError, UnavailableError
from raftkv.wire.pb.etcdserverpb import rpc_pb2_grpc
from raftkv.wire.pb.v3lockpb import v3lock_pb2_grpc

__all__ = ["CLIENTS", "Client", "Refused", "describe_error", "may_have_applied"]

CLIENTS = ("raw", "raftkv")
"""``--client``: raw gRPC stubs, or :class:`raftkv.client.Client`."""

T = TypeVar("T")

# gRPC codes that mean the request was rejected before it could take effect.
_DEFINITE = {grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.FAILED_PRECONDITION,
             grpc.StatusCode.OUT_OF_RANGE, grpc.StatusCode.PERMISSION_DENIED,
             grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.UNIMPLEMENTED,
             grpc.StatusCode.NOT_FOUND}


def _never_sent(exc: BaseException) -> bool:
    """gRPC could not connect at all, so the request never left the client (Jepsen also
    treats a refused connection as a definite failure), or it had no auth token."""
    if isinstance(exc, NotSent):
        return True
    if not isinstance(exc, grpc.aio.AioRpcError) or exc.code() != grpc.StatusCode.UNAVAILABLE:
        return False
    details = (exc.details() or "").lower()
    return "failed to connect" in details or "connection refused" in details


def may_have_applied(exc: RaftKVError) -> bool:
    """A write that raised ``exc`` through raftkv.client may have been applied."""
    return isinstance(exc, UnavailableError) or type(exc) is RaftKVError


class Refused(Exception):
    """The operation definitely did not take effect (recorded as ``fail``)."""


def describe_error(exc: BaseException) -> str:
    """One line for the history's ``error`` field."""
    if isinstance(exc, grpc.aio.AioRpcError):
        return f"{exc.code().name}: {exc.details()}"
    if isinstance(exc, RaftKVError):
        return f"{type(exc).__name__}: {exc}"
    if isinstance(exc, TimeoutError):
        return "timeout"
    return f"{type(exc).__name__}: {exc}"


class Client:
    """One logical client (see the module docstring).

    Args:
        target: the member this client is bound to.
        others: the other members' endpoints, for :attr:`rk` to fail over to.
        library: ``raw`` (stubs only) or ``raftkv`` (also :attr:`rk`).
        tls: the run's certificates, or None for plaintext.
        auth: the user to act as (auth on), or None.
    """

    def __init__(self, number: int, member_index: int, target: str, recorder: Recorder,
                 *, concurrency: int, timeout_s: float, rng: random.Random,
                 library: str = "raw", others: Sequence[str] = (),
                 tls: ClusterTLS | None = None, auth: Credentials | None = None) -> None:
        self.number = number
        self.member_index = member_index
        self.process = number
        self.recorder = recorder
        self.concurrency = concurrency
        self.timeout_s = timeout_s
        self.rng = rng
        self.tokens = Tokens(auth) if auth is not None else None
        self.channel = open_channel(target, tls.credentials() if tls is not None else None,
                                    self.tokens)
        self.kv = rpc_pb2_grpc.KVStub(self.channel)  # type: ignore[no-untyped-call]
        self.lease = rpc_pb2_grpc.LeaseStub(self.channel)  # type: ignore[no-untyped-call]
        self.lock = v3lock_pb2_grpc.LockStub(self.channel)  # type: ignore[no-untyped-call]
        self.infos = 0
        self.rk: raftkv.client.Client | None = None
        if library == "raftkv":
            # per-op deadline = the call's timeout; attempts short enough to fail over and
            # retry (de-duplicated) at least once inside it
            policy = raftkv.client.RetryPolicy(deadline_s=timeout_s,
                                               attempt_timeout_s=max(timeout_s / 2, 0.1))
            self.rk = raftkv.client.Client([target, *others], timeout=timeout_s,
                                           retry=policy,
                                           tls=tls.client() if tls is not None else None,
                                           username=auth.user if auth is not None else None,
                                           password=auth.password if auth is not None else None)
        elif library != "raw":
            raise ValueError(f"client library {library!r}: use one of {', '.join(CLIENTS)}")

    async def authenticate(self, timeout_s: float) -> None:
        """Get this client's tokens now (raw channel and library), not at its first call.

        Raises:
            NotSent, RaftKVError: a member could not authenticate it.
        """
        if self.tokens is not None and self.tokens.token is None:
            stub = rpc_pb2_grpc.AuthStub(self.channel)  # type: ignore[no-untyped-call]
            await self.tokens.renew(self.tokens.generation, stub, timeout_s)
        if self.rk is not None and self.tokens is not None:
            await self.rk.authenticate(timeout=timeout_s)

    async def close(self) -> None:
        if self.rk is not None:
            await self.rk.close()
        await self.channel.close()

    async def op(self, f: str, key: Key, value: Value, call: Callable[[], Awaitable[Value]],
                 *, read_only: bool = False) -> tuple[EventType, Value]:
        """Invoke ``call`` as operation ``f`` and record its outcome.

        Returns:
            The outcome and the value recorded with it (the result for ``ok``).
        """
        inv = self.recorder.invoke(self.process, f, key, value)
        try:
            out = await call()
        except Refused as exc:
            self.recorder.complete(inv, EventType.FAIL, error=str(exc) or "refused")
            return EventType.FAIL, None
        except RaftKVError as exc:
            if read_only or not may_have_applied(exc):
                self.recorder.complete(inv, EventType.FAIL, error=describe_error(exc))
                return EventType.FAIL, None
            return self._indeterminate(inv, exc)
        except (grpc.RpcError, TimeoutError, OSError) as exc:
            definite = _never_sent(exc) or (isinstance(exc, grpc.aio.AioRpcError)
                                            and exc.code() in _DEFINITE)
            if read_only or definite:
                self.recorder.complete(inv, EventType.FAIL, error=describe_error(exc))
                return EventType.FAIL, None
            return self._indeterminate(inv, exc)
        self.recorder.complete(inv, EventType.OK, out)
        return EventType.OK, out

    def _indeterminate(self, inv: Event, exc: BaseException) -> tuple[EventType, Value]:
        self.recorder.complete(inv, EventType.INFO, error=describe_error(exc))
        self.process += self.concurrency
        self.infos += 1
        return EventType.INFO, None
