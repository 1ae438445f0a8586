"""``SyncClient``: the synchronous facade. It holds no client logic of its own: it runs an
async :class:`~raftkv.client.Client` on a private event loop in a daemon thread and
forwards every call to it generically::

    with SyncClient("127.0.0.1:2379") as client:
        client.put("k", "v")
        with client.lock("job", ttl=5) as lock:
            lock.put("owner", "me")
        for event in client.watch("k"):   # or: with client.watch("k") as w: for ... in w
            ...

Every call runs on the private loop (the client's objects are not thread-safe); coroutines
are run to completion there; async context managers become context managers, async
iterators become iterators (a bare ``for`` over one that was not entered with ``with``
closes it when the loop ends, as a generator would), and the client's objects (Lock,
Lease, Txn, Watch, ...) come back wrapped the same way. Results (KeyValue, TxnResponse,
...) are the same frozen dataclasses. :meth:`SyncClient.stm` takes a plain function and
runs it in a worker thread. An exception in the calling thread while it waits -- Ctrl-C's
``KeyboardInterrupt`` above all -- cancels the call on the loop (a lock being acquired is
given up) and waits up to :data:`CANCEL_GRACE_S` for it to unwind before re-raising.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
import threading
from collections.abc import Callable, Coroutine, Iterator, Sequence
from typing import Any, TypeVar

from raftkv.client.client import Client
from raftkv.client.stm import STM, Isolation
from raftkv.client.types import KeyLike

T = TypeVar("T")

CANCEL_GRACE_S = 5.0
"""How long an interrupted call waits for its cancelled coroutine to finish unwinding."""


class _Loop:
    """An event loop running in a daemon thread."""

    def __init__(self, borrowed: asyncio.AbstractEventLoop | None = None) -> None:
        self.owned = borrowed is None
        self.loop = asyncio.new_event_loop() if borrowed is None else borrowed
        self.thread: threading.Thread | None = None
        if self.owned:
            self.thread = threading.Thread(target=self.loop.run_forever, name="raftkv-sync",
                                           daemon=True)
            self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self.loop:
            coro.close()
            raise RuntimeError("a SyncClient call cannot be made from its own event loop")
        result: concurrent.futures.Future[T] = concurrent.futures.Future()
        finished = threading.Event()
        tasks: list[asyncio.Task[T]] = []

        def start() -> None:  # on the loop
            task = self.loop.create_task(coro)
            tasks.append(task)
            task.add_done_callback(lambda t: _settle(t, result, finished))

        self.loop.call_soon_threadsafe(start)
        try:
            return result.result()
        except BaseException:  # KeyboardInterrupt included: give the call up
            if not finished.is_set():
                # runs after start() (the loop runs callbacks in order)
                self.loop.call_soon_threadsafe(lambda: [t.cancel() for t in tasks])
                finished.wait(CANCEL_GRACE_S)
            raise

    def call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """``fn(*args, **kwargs)`` on the loop; a coroutine it returns is awaited there."""
        async def on_loop() -> Any:
            value = fn(*args, **kwargs)
            return await value if inspect.iscoroutine(value) else value
        return self.run(on_loop())

    def stop(self) -> None:
        if not self.owned:  # a borrowed loop (raftkv.embed's) belongs to its owner
            return
        self.loop.call_soon_threadsafe(self.loop.stop)
        if self.thread is not None:
            self.thread.join(timeout=10)
        self.loop.close()


def _settle(task: asyncio.Task[T], result: concurrent.futures.Future[T],
            finished: threading.Event) -> None:
    if task.cancelled():
        result.cancel()
    elif (exc := task.exception()) is not None:
        result.set_exception(exc)
    else:
        result.set_result(task.result())
    finished.set()


def _wrap(value: Any, loop: _Loop) -> Any:
    if inspect.iscoroutine(value):
        return _wrap(loop.run(value), loop)
    if inspect.isasyncgen(value) or getattr(type(value), "_sync_proxy", False):
        return _Proxy(value, loop)
    if callable(value) and (inspect.ismethod(value) or inspect.isfunction(value)):
        def call(*args: Any, **kwargs: Any) -> Any:
            return _wrap(loop.call(value, *args, **kwargs), loop)
        call.__doc__ = value.__doc__
        return call
    return value


class _Proxy:
    """A client object seen synchronously."""

    def __init__(self, target: Any, loop: _Loop) -> None:
        self._target = target
        self._loop = loop
        self._entered = False

    def __getattr__(self, name: str) -> Any:
        return _wrap(getattr(self._target, name), self._loop)

    def __setattr__(self, name: str, value: Any) -> None:
        if name in ("_target", "_loop", "_entered"):
            object.__setattr__(self, name, value)
        else:
            setattr(self._target, name, value)

    def __enter__(self) -> Any:
        self._loop.run(self._target.__aenter__())
        self._entered = True
        return self

    def __exit__(self, *exc: Any) -> None:
        self._entered = False
        self._loop.run(self._target.__aexit__(*exc))

    def __iter__(self) -> Iterator[Any]:
        it = self._loop.call(self._target.__aiter__)

        async def step() -> tuple[bool, Any]:
            try:
                return True, await it.__anext__()
            except StopAsyncIteration:
                return False, None

        try:
            while True:
                ok, item = self._loop.run(step())
                if not ok:
                    return
                yield item
        finally:  # a bare for loop ended (break, error): close what only it used
            aclose = getattr(it, "aclose", None)
            if not self._entered and aclose is not None:
                self._loop.run(aclose())

    def __repr__(self) -> str:
        return f"Sync({self._target!r})"


class SyncClient:
    """The synchronous :class:`~raftkv.client.Client` (same methods, same arguments)."""

    def __init__(self, endpoints: str | Sequence[str] = "127.0.0.1:2379",
                 **options: Any) -> None:
        self._loop = _Loop()

        async def make() -> Client:
            return Client(endpoints, **options)

        self._client = self._loop.run(make())

    @classmethod
    def from_client_factory(cls, factory: Callable[[], Client], *,
                            loop: asyncio.AbstractEventLoop | None = None) -> SyncClient:
        """A facade over the client ``factory()`` builds on the private loop (for example
        ``lambda: Client.from_transport(transport)``), or on ``loop``, an event loop that
        already runs in another thread (:func:`raftkv.embed.start_node_sync` uses the
        member's); closing the facade then leaves that loop running."""
        self = cls.__new__(cls)
        self._loop = _Loop(loop)

        async def make() -> Client:
            return factory()

        self._client = self._loop.run(make())
        return self

    def __getattr__(self, name: str) -> Any:
        return _wrap(getattr(self._client, name), self._loop)

    def stm(self, fn: Callable[[Any], T], *, isolation: Isolation = "serializable",
            retries: int = 50, prefetch: Sequence[KeyLike] = ()) -> T:
        """:meth:`Client.stm` with a plain function ``fn(stm)``; ``stm.get`` returns
        values directly."""
        loop = self._loop

        async def afn(stm: STM) -> T:
            return await asyncio.to_thread(fn, _Proxy(stm, loop))

        return loop.run(self._client.stm(afn, isolation=isolation, retries=retries,
                                         prefetch=prefetch))

    def close(self) -> None:
        try:
            self._loop.run(self._client.close())
        finally:
            self._loop.stop()

    def __enter__(self) -> SyncClient:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
