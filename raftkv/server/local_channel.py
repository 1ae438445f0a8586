"""An in-process channel: the generated gRPC stubs, served without sockets or serialization.

The embedding API (:mod:`raftkv.embed`) gives callers in the member's own process a client
whose stubs are built on a :class:`LocalChannel` instead of a ``grpc.aio.Channel``. A call
goes through the *same* method handlers the network server runs (the same servicers, the
same interceptors, so the same validation and the same etcd error messages) but skips
HTTP/2, protobuf encoding and the gRPC thread hop: the request object is handed to the
handler as it is, and the handler's response object is returned as it is.

What the stubs see is the part of ``grpc.aio`` they use: ``unary_unary``, ``unary_stream``,
``stream_unary`` and ``stream_stream`` multicallables whose calls can be awaited or iterated,
take ``timeout`` and ``metadata``, and fail with :class:`grpc.aio.AioRpcError` carrying the
status code and details the network path would carry. A bidirectional call supports both
styles of grpc.aio: a request iterator, or ``write()`` / ``done_writing()``.

Both ends must run on the member's event loop (the servicers await the node driver there).
Messages are shared, not copied: neither side may mutate a message after handing it over.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Iterable, Sequence
from typing import Any

import grpc
import grpc.aio
from grpc.aio import Metadata

__all__ = ["LocalChannel", "LocalServer"]

_EOF = object()


class _HandlerCallDetails(grpc.HandlerCallDetails):
    def __init__(self, method: str, metadata: Sequence[tuple[str, str]]) -> None:
        self.method = method
        self.invocation_metadata = tuple(metadata)


class LocalServer:
    """Collects method handlers the way ``grpc.aio.Server`` does, for a :class:`LocalChannel`.

    The generated ``add_XServicer_to_server(servicer, server)`` functions accept it, so the
    same registration code serves both the network server and in-process callers.
    """

    def __init__(self, interceptors: Sequence[grpc.aio.ServerInterceptor] = ()) -> None:
        self._interceptors = tuple(interceptors)
        self._generic: list[grpc.GenericRpcHandler] = []
        self._registered: dict[str, grpc.RpcMethodHandler[Any, Any]] = {}
        self._resolved: dict[str, grpc.RpcMethodHandler[Any, Any] | None] = {}

    def add_generic_rpc_handlers(self, handlers: Iterable[grpc.GenericRpcHandler]) -> None:
        self._generic.extend(handlers)

    def add_registered_method_handlers(
            self, service: str, handlers: dict[str, grpc.RpcMethodHandler[Any, Any]]) -> None:
        for name, handler in handlers.items():
            self._registered[f"/{service}/{name}"] = handler

    async def handler(self, method: str) -> grpc.RpcMethodHandler[Any, Any] | None:
        """The handler for ``method`` after every interceptor (resolved once per method)."""
        if method in self._resolved:
            return self._resolved[method]
        details = _HandlerCallDetails(method, ())
        resolved = await self._intercept(0, details)
        self._resolved[method] = resolved
        return resolved

    async def _intercept(self, i: int, details: grpc.HandlerCallDetails
                         ) -> grpc.RpcMethodHandler[Any, Any] | None:
        if i == len(self._interceptors):
            return self._lookup(details)

        async def continuation(d: grpc.HandlerCallDetails
                               ) -> grpc.RpcMethodHandler[Any, Any] | None:
            return await self._intercept(i + 1, d)

        return await self._interceptors[i].intercept_service(continuation, details)

    def _lookup(self, details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler[Any, Any] | None:
        found = self._registered.get(details.method)
        if found is not None:
            return found
        for generic in self._generic:
            handler = generic.service(details)
            if handler is not None:
                return handler
        return None


class _Abort(Exception):
    """Raised by :meth:`_Context.abort`; turned into an AioRpcError for the caller."""


class _Context:
    """The part of ``grpc.aio.ServicerContext`` the servicers use."""

    def __init__(self, metadata: Sequence[tuple[str, str]] | None) -> None:
        self._metadata = tuple(metadata or ())
        self.code: grpc.StatusCode = grpc.StatusCode.OK
        self.details = ""
        self.trailing: tuple[tuple[str, str], ...] = ()
        self._cancelled = False

    def invocation_metadata(self) -> tuple[tuple[str, str], ...]:
        return self._metadata

    async def abort(self, code: grpc.StatusCode, details: str = "",
                    trailing_metadata: Sequence[tuple[str, str]] = ()) -> None:
        self.code, self.details = code, details
        raise _Abort(details)

    def set_trailing_metadata(self, metadata: Sequence[tuple[str, str]]) -> None:
        self.trailing = tuple(metadata)

    def set_code(self, code: grpc.StatusCode) -> None:
        self.code = code

    def set_details(self, details: str) -> None:
        self.details = details

    def cancelled(self) -> bool:
        return self._cancelled

    def done(self) -> bool:
        return self._cancelled

    def peer(self) -> str:
        return "local"

    def time_remaining(self) -> float | None:
        return None


def _error(code: grpc.StatusCode, details: str) -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(code, Metadata(), Metadata(), details=details)


def _check_status(ctx: _Context) -> None:
    if ctx.code is not grpc.StatusCode.OK:
        raise _error(ctx.code, ctx.details)


async def _with_deadline(awaitable: Awaitable[Any], timeout: float | None) -> Any:
    if timeout is None:
        return await awaitable
    try:  # a timer on the running task; asyncio.wait_for would add a task per call
        async with asyncio.timeout(timeout):
            return await awaitable
    except TimeoutError:
        raise _error(grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded") from None


class _UnaryCall:
    """``await stub.Method(request)``: the handler's response, or an AioRpcError.

    Like grpc.aio, a call made on the event loop runs whether or not it is awaited. The
    common case, a call awaited as soon as it is made, runs inline in the awaiting task
    (no task of its own: a task per call costs a scheduling round and a callback); a call
    not awaited within the current loop iteration gets a task of its own (the channel
    checks all calls made in one loop iteration with one callback).
    """

    __slots__ = ("_args", "_ctx", "_followers", "_inline", "_outcome", "_task")

    def __init__(self, channel: LocalChannel, method: str, request: object,
                 timeout: float | None, metadata: Sequence[tuple[str, str]] | None) -> None:
        self._args = (channel, method, request, timeout, metadata)
        self._task: asyncio.Future[Any] | None = None
        self._ctx: _Context | None = None
        self._inline: asyncio.Task[Any] | None = None
        """The task running the call inline, while it runs."""
        self._outcome: tuple[bool, Any] | None = None
        """(succeeded, response or exception) of an inline run, once it ended."""
        self._followers: asyncio.Future[Any] | None = None
        channel.start_unless_awaited(self)

    def start_unless_awaited(self) -> None:
        if self._inline is None and self._outcome is None:
            self._start()

    def _start(self) -> asyncio.Future[Any]:
        if self._task is None:
            self._task = asyncio.ensure_future(self._run(*self._args))
        return self._task

    def __await__(self) -> Any:
        if self._task is None and self._inline is None and self._outcome is None:
            self._inline = asyncio.current_task()
            try:
                response = yield from self._run(*self._args).__await__()
            except BaseException as exc:
                self._finish(False, exc)
                raise
            self._finish(True, response)
            return response
        return (yield from self._completion().__await__())

    def _finish(self, ok: bool, value: Any) -> None:
        self._inline, self._outcome = None, (ok, value)
        waiting = self._followers
        if waiting is not None and not waiting.done():
            if ok:
                waiting.set_result(value)
            else:
                waiting.set_exception(value)

    async def _completion(self) -> Any:
        """The outcome, for a second awaiter (or one after the call ran as a task)."""
        if self._task is not None:
            return await self._task
        if self._outcome is None:
            if self._followers is None:
                self._followers = asyncio.get_running_loop().create_future()
            return await asyncio.shield(self._followers)
        ok, value = self._outcome
        if not ok:
            raise value
        return value

    async def _run(self, channel: LocalChannel, method: str, request: Any,
                   timeout: float | None, metadata: Sequence[tuple[str, str]] | None) -> Any:
        handler: Any = await channel.resolve(method)  # grpc.aio handlers are async
        ctx = self._ctx = _Context(metadata)
        if handler.unary_unary is not None:
            pending = handler.unary_unary(request, ctx)
        elif handler.stream_unary is not None:
            pending = handler.stream_unary(_aiter(request), ctx)
        else:
            raise _error(grpc.StatusCode.UNIMPLEMENTED, f"{method} is not unary")
        try:
            response = await _with_deadline(pending, timeout)
        except _Abort:
            raise _error(ctx.code, ctx.details) from None
        except grpc.aio.AioRpcError:
            raise
        except Exception as exc:  # a servicer bug: what grpc.aio would report
            raise _error(grpc.StatusCode.UNKNOWN, f"Unexpected {exc!r}") from exc
        _check_status(ctx)
        return response

    async def trailing_metadata(self) -> Metadata:
        """The trailing metadata the handler set (after the call ends)."""
        if self._task is None and self._inline is None and self._outcome is None:
            self._start()
        if self._task is not None:
            await asyncio.wait([self._task])
        elif self._outcome is None:  # running inline in another task
            if self._followers is None:
                self._followers = asyncio.get_running_loop().create_future()
            await asyncio.wait([self._followers])
        return Metadata(*(self._ctx.trailing if self._ctx is not None else ()))

    def cancel(self) -> bool:
        if self._inline is not None:
            return self._inline.cancel()
        return self._task.cancel() if self._task is not None else False

    def done(self) -> bool:
        if self._outcome is not None:
            return True
        return self._task is not None and self._task.done()


async def _aiter(items: Any) -> AsyncIterator[Any]:
    if hasattr(items, "__aiter__"):
        async for item in items:
            yield item
    else:
        for item in items:
            yield item


class _StreamCall:
    """A server-streaming or bidirectional call: iterate it, or ``read()`` from it."""

    def __init__(self, channel: LocalChannel, method: str, request: Any, *, bidi: bool,
                 timeout: float | None, metadata: Sequence[tuple[str, str]] | None) -> None:
        self._ctx = _Context(metadata)
        self._requests: asyncio.Queue[Any] = asyncio.Queue()
        self._out: asyncio.Queue[Any] = asyncio.Queue()
        self._writer = bidi and request is None
        source = self._queued() if self._writer else request
        self._task = asyncio.ensure_future(
            self._pump(channel, method, source, bidi, timeout))

    async def _queued(self) -> AsyncIterator[Any]:
        while (item := await self._requests.get()) is not _EOF:
            yield item

    async def _pump(self, channel: LocalChannel, method: str, source: Any, bidi: bool,
                    timeout: float | None) -> None:
        try:
            handler: Any = await channel.resolve(method)  # grpc.aio handlers are async
            if bidi:
                if handler.stream_stream is None:
                    raise _error(grpc.StatusCode.UNIMPLEMENTED, f"{method} is not bidi")
                responses = handler.stream_stream(_aiter(source), self._ctx)
            else:
                if handler.unary_stream is None:
                    raise _error(grpc.StatusCode.UNIMPLEMENTED, f"{method} not streaming")
                responses = handler.unary_stream(source, self._ctx)
            await _with_deadline(self._forward(responses), timeout)
            _check_status(self._ctx)
            self._out.put_nowait(_EOF)
        except _Abort:
            self._out.put_nowait(_error(self._ctx.code, self._ctx.details))
        except asyncio.CancelledError:
            self._out.put_nowait(_error(grpc.StatusCode.CANCELLED, "Locally cancelled"))
            raise
        except grpc.aio.AioRpcError as exc:
            self._out.put_nowait(exc)

    async def _forward(self, responses: AsyncIterator[Any]) -> None:
        async for response in responses:
            self._out.put_nowait(response)

    async def write(self, request: Any) -> None:
        if not self._writer:
            raise RuntimeError("write() needs a call started without a request iterator")
        self._requests.put_nowait(request)

    async def done_writing(self) -> None:
        if self._writer:
            self._requests.put_nowait(_EOF)

    async def read(self) -> Any:
        """The next response, or ``grpc.aio.EOF`` when the stream ended."""
        item = await self._out.get()
        if item is _EOF:
            self._out.put_nowait(_EOF)
            return grpc.aio.EOF
        if isinstance(item, grpc.aio.AioRpcError):
            self._out.put_nowait(item)
            raise item
        return item

    def __aiter__(self) -> AsyncIterator[Any]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Any]:
        while (item := await self.read()) is not grpc.aio.EOF:
            yield item

    def cancel(self) -> bool:
        self._ctx._cancelled = True
        return self._task.cancel()

    def done(self) -> bool:
        return self._task.done()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            if not self._task.done():
                self._task.cancel()


class _MultiCallable:
    def __init__(self, channel: LocalChannel, method: str, kind: str) -> None:
        self._channel, self._method, self._kind = channel, method, kind

    def __call__(self, request: Any = None, timeout: float | None = None,
                 metadata: Sequence[tuple[str, str]] | None = None,
                 **_ignored: Any) -> Any:
        if self._kind in ("unary_unary", "stream_unary"):
            return _UnaryCall(self._channel, self._method, request, timeout, metadata)
        return _StreamCall(self._channel, self._method, request,
                           bidi=self._kind == "stream_stream", timeout=timeout,
                           metadata=metadata)


class LocalChannel:
    """A ``grpc.aio.Channel`` look-alike that calls a :class:`LocalServer`'s handlers."""

    def __init__(self, server: LocalServer) -> None:
        self._server = server
        self._closed = False
        self._made: list[_UnaryCall] = []
        """Unary calls made since the last check that they were awaited."""

    def start_unless_awaited(self, call: _UnaryCall) -> None:
        """Start ``call`` as a task of its own at the end of this loop iteration if it has
        not been awaited by then (one callback per iteration for all calls made in it)."""
        made = self._made
        if not made:
            try:
                asyncio.get_running_loop().call_soon(self._start_unawaited)
            except RuntimeError:
                return  # made outside a loop: it starts when awaited
        made.append(call)

    def _start_unawaited(self) -> None:
        made, self._made = self._made, []
        for call in made:
            call.start_unless_awaited()

    async def resolve(self, method: str) -> grpc.RpcMethodHandler[Any, Any]:
        if self._closed:
            raise _error(grpc.StatusCode.UNAVAILABLE, "the embedded member has stopped")
        handler = await self._server.handler(method)
        if handler is None:
            raise _error(grpc.StatusCode.UNIMPLEMENTED, f"unknown method {method}")
        return handler

    def unary_unary(self, method: str, *_a: Any, **_k: Any) -> _MultiCallable:
        return _MultiCallable(self, method, "unary_unary")

    def unary_stream(self, method: str, *_a: Any, **_k: Any) -> _MultiCallable:
        return _MultiCallable(self, method, "unary_stream")

    def stream_unary(self, method: str, *_a: Any, **_k: Any) -> _MultiCallable:
        return _MultiCallable(self, method, "stream_unary")

    def stream_stream(self, method: str, *_a: Any, **_k: Any) -> _MultiCallable:
        return _MultiCallable(self, method, "stream_stream")

    async def close(self, grace: float | None = None) -> None:
        self._closed = True

    async def channel_ready(self) -> None:
        return None

    def get_state(self, try_to_connect: bool = False) -> grpc.ChannelConnectivity:
        return grpc.ChannelConnectivity.READY

    async def __aenter__(self) -> LocalChannel:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
