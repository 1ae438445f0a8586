"""LocalChannel unary calls behave like grpc.aio calls: a call made runs whether or not it
is awaited, runs once however often it is awaited, honours its deadline and cancellation,
and reports the handler's status and trailing metadata."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
import grpc.aio
import pytest

from raftkv.server.local_channel import LocalChannel, LocalServer

METHOD = "/test.Echo/Say"


class _Echo:
    """A servicer that counts calls; ``b"slow"`` sleeps, ``b"bad"`` aborts."""

    def __init__(self) -> None:
        self.calls = 0
        self.cancelled = 0

    async def say(self, request: bytes, context: Any) -> bytes:
        self.calls += 1
        context.set_trailing_metadata((("echo-count", str(self.calls)),))
        if request == b"bad":
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "bad request")
        if request == b"slow":
            try:
                await asyncio.sleep(30)
            except asyncio.CancelledError:
                self.cancelled += 1
                raise
        return b"echo:" + request


def _channel() -> tuple[LocalChannel, _Echo]:
    echo = _Echo()
    server = LocalServer()
    handler: grpc.RpcMethodHandler[bytes, bytes] = grpc.unary_unary_rpc_method_handler(
        echo.say)
    server.add_registered_method_handlers("test.Echo", {"Say": handler})
    return LocalChannel(server), echo


def _run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_a_call_awaited_at_once_answers_and_runs_once() -> None:
    async def main() -> None:
        ch, echo = _channel()
        call = ch.unary_unary(METHOD)(b"hi")
        assert await call == b"echo:hi"
        assert await call == b"echo:hi"  # a second await: the same answer, no new call
        assert call.done()
        md = await call.trailing_metadata()
        assert tuple(md) == (("echo-count", "1"),)
        assert echo.calls == 1
    _run(main())


def test_a_call_never_awaited_still_runs() -> None:
    async def main() -> None:
        ch, echo = _channel()
        say = ch.unary_unary(METHOD)
        first = say(b"fire")
        awaited = await say(b"awaited")  # made and awaited in the same loop iteration
        second = say(b"and forget")
        for _ in range(5):
            await asyncio.sleep(0)
        assert awaited == b"echo:awaited"
        assert echo.calls == 3
        assert first.done()
        assert second.done()
        assert await first == b"echo:fire"
        assert await second == b"echo:and forget"
        assert echo.calls == 3
    _run(main())


def test_two_tasks_awaiting_one_call_share_it() -> None:
    async def main() -> None:
        ch, echo = _channel()
        call = ch.unary_unary(METHOD)(b"slowish")

        async def second() -> Any:
            await asyncio.sleep(0)
            return await call

        first_answer, second_answer = await asyncio.gather(_await(call), second())
        assert first_answer == second_answer == b"echo:slowish"
        assert echo.calls == 1
    _run(main())


async def _await(call: Any) -> Any:
    return await call


def test_abort_reaches_the_caller_as_its_status() -> None:
    async def main() -> None:
        ch, _ = _channel()
        call = ch.unary_unary(METHOD)(b"bad")
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await call
        assert info.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        assert info.value.details() == "bad request"
        with pytest.raises(grpc.aio.AioRpcError):  # awaiting again re-raises
            await call
    _run(main())


def test_deadline_exceeded_cancels_the_handler() -> None:
    async def main() -> None:
        ch, echo = _channel()
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await ch.unary_unary(METHOD)(b"slow", timeout=0.05)
        assert info.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED
        assert echo.cancelled == 1
    _run(main())


def test_cancel_while_awaited_stops_the_handler() -> None:
    async def main() -> None:
        ch, echo = _channel()
        call = ch.unary_unary(METHOD)(b"slow")
        waiter = asyncio.ensure_future(_await(call))
        while echo.calls == 0:
            await asyncio.sleep(0)
        assert call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        assert echo.cancelled == 1
        assert call.done()
    _run(main())
