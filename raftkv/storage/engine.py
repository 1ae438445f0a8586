"""The only module of raftkv that imports plyvel: a small typed face of one LevelDB.

One member keeps everything in one LevelDB directory: the raft log, the hard state, the
snapshot, the replicated state and a little metadata, each under its own key prefix (a
:class:`Namespace`, see :mod:`raftkv.storage.keys`). Because it is one database with one
write-ahead log, a :class:`Batch` may touch several namespaces and still be atomic, and
writes reach the disk in the order they were made.

Ranges are half-open, ``[start, end)``; ``end=None`` means "to the end of the namespace".

Durability: :meth:`Batch.commit` with ``sync=True`` returns only after LevelDB fsynced its
write-ahead log, so the batch survives a crash of the process *and* of the machine. A write
with ``sync=False`` survives a crash of the process (it is in the kernel's page cache) and
is made durable by the next synced write, which flushes the same log file.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import plyvel  # type: ignore[import-untyped]

from raftkv.errors import ConfigError
from raftkv.storage.errors import CorruptionError, StorageError


def next_prefix(prefix: bytes) -> bytes | None:
    """The smallest key greater than every key starting with ``prefix`` (``None``: none)."""
    stripped = prefix.rstrip(b"\xff")
    if not stripped:
        return None
    return stripped[:-1] + bytes([stripped[-1] + 1])


@dataclass(frozen=True, slots=True)
class Namespace:
    """Keys that share ``prefix``. Suffixes are the keys as the namespace's owner sees them.

    Invariant: no namespace's prefix is a prefix of another's (checked in ``keys``).
    """

    prefix: bytes

    def key(self, suffix: bytes) -> bytes:
        """The full engine key of ``suffix``."""
        return self.prefix + suffix

    def strip(self, key: bytes) -> bytes:
        """The suffix of a full engine key of this namespace."""
        return key[len(self.prefix):]

    def bounds(self, start: bytes = b"", end: bytes | None = None) -> tuple[bytes, bytes | None]:
        """Engine keys ``[lo, hi)`` for suffixes ``[start, end)`` (``end=None``: no bound)."""
        hi = next_prefix(self.prefix) if end is None else self.prefix + end
        return self.prefix + start, hi


def _message(exc: BaseException) -> str:
    """plyvel's messages are bytes; make them a readable one-liner."""
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    arg = exc.args[0] if exc.args else exc
    text = arg.decode("utf-8", "replace") if isinstance(arg, bytes) else str(arg)
    return " ".join(text.split())


def _open_error(path: Path, exc: BaseException) -> ConfigError:
    """A one-line :class:`ConfigError` naming the directory, the cause and the fix."""
    msg = _message(exc)
    if "lock" in msg.lower() and ("held" in msg or "unavailable" in msg.lower()):
        return ConfigError(f"data dir {path} is locked by another process (is another raftkv "
                           f"member running on it?): {msg}")
    if isinstance(exc, plyvel.CorruptionError):
        return ConfigError(f"data dir {path} is corrupt (restore it from a snapshot or remove "
                           f"this member and add it back empty): {msg}")
    if isinstance(exc, (FileExistsError, NotADirectoryError)) or (
            path.exists() and not path.is_dir()):
        return ConfigError(f"data dir {path} exists but is not a directory; choose a "
                           f"directory for --data-dir")
    if isinstance(exc, PermissionError) or "permission denied" in msg.lower():
        return ConfigError(f"data dir {path} is not writable by this user: {msg}")
    return ConfigError(f"cannot open data dir {path}: {msg}")


class Batch:
    """An atomic group of puts and deletes, written by :meth:`commit` (all or nothing).

    Nothing is visible before :meth:`commit`; a batch that is never committed changes nothing.
    """

    __slots__ = ("_engine", "_sync", "_wb", "count")

    def __init__(self, engine: Engine, wb: Any, sync: bool) -> None:
        self._engine = engine
        self._wb = wb
        self._sync = sync
        self.count = 0

    def put(self, key: bytes, value: bytes) -> None:
        """Record a put of the full engine key ``key``."""
        self._wb.put(key, value)
        self.count += 1

    def delete(self, key: bytes) -> None:
        """Record a delete of the full engine key ``key`` (a no-op if absent)."""
        self._wb.delete(key)
        self.count += 1

    def commit(self) -> None:
        """Write the batch atomically; with ``sync=True`` return only once it is on disk.

        Raises:
            StorageError: the write failed; the batch may or may not be on disk, and the
                caller must stop (the engine's state is unknown).
        """
        self._engine.check_open()
        try:
            self._wb.write()
        except plyvel.Error as exc:
            raise StorageError(f"write to {self._engine.path} failed: {_message(exc)}") from exc
        finally:
            self._wb.clear()


class View:
    """A consistent read-only view of the engine at one moment (a LevelDB snapshot)."""

    def __init__(self, engine: Engine, snap: Any) -> None:
        self._engine = engine
        self._snap = snap

    def get(self, key: bytes) -> bytes | None:
        """The value of ``key`` as of the view."""
        value: bytes | None = self._snap.get(key)
        return value

    def items(self, start: bytes, end: bytes | None) -> Iterator[tuple[bytes, bytes]]:
        """``(key, value)`` in ``[start, end)``, ascending, as of the view."""
        it = self._snap.iterator(start=start, stop=end)
        return self._engine.wrap(it)

    def close(self) -> None:
        """Release the view (LevelDB keeps old versions alive while it is open)."""
        self._snap.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


class Engine:
    """An open LevelDB. Thread-safe for concurrent reads and writes (LevelDB is).

    Use :meth:`open`; close it with :meth:`close` or as a context manager.
    """

    def __init__(self, path: Path, db: Any) -> None:
        self.path = path
        self._db = db

    @classmethod
    def open(cls, path: str | os.PathLike[str], *, create: bool = True,
             write_buffer_bytes: int = 8 << 20, cache_bytes: int = 16 << 20) -> Engine:
        """Open (and with ``create`` create) the LevelDB at directory ``path``.

        Raises:
            ConfigError: the directory is missing (and ``create`` is false), not writable,
                locked by another process, or corrupt. The message is one line.
        """
        p = Path(path)
        try:
            if create:
                p.mkdir(parents=True, exist_ok=True)
            db = plyvel.DB(str(p), create_if_missing=create, paranoid_checks=True,
                           write_buffer_size=write_buffer_bytes, lru_cache_size=cache_bytes,
                           bloom_filter_bits=10)
        except (plyvel.Error, OSError) as exc:
            raise _open_error(p, exc) from exc
        return cls(p, db)

    # -- reads -----------------------------------------------------------------------
    def get(self, key: bytes) -> bytes | None:
        """The value of ``key``, or ``None``."""
        self.check_open()
        try:
            value: bytes | None = self._db.get(key)
        except plyvel.Error as exc:
            raise _read_error(self.path, exc) from exc
        return value

    def items(self, start: bytes, end: bytes | None) -> Iterator[tuple[bytes, bytes]]:
        """``(key, value)`` with ``start <= key < end``, in key order.

        The LevelDB iterator is created now, so the iteration reflects the database as of
        this call, whatever is written while iterating.
        """
        self.check_open()
        return self.wrap(self._db.iterator(start=start, stop=end))

    def keys(self, start: bytes, end: bytes | None) -> Iterator[bytes]:
        """Keys in ``[start, end)`` in order, without reading values."""
        self.check_open()
        return self.wrap(self._db.iterator(start=start, stop=end, include_value=False))

    def first_key(self, start: bytes, end: bytes | None) -> bytes | None:
        """The smallest key in ``[start, end)``, or ``None`` if the range is empty."""
        self.check_open()
        it = self._db.raw_iterator()
        try:
            it.seek(start)
            if not it.valid():
                return None
            key: bytes = it.key()
            return key if end is None or key < end else None
        except plyvel.Error as exc:
            raise _read_error(self.path, exc) from exc
        finally:
            it.close()

    def last_key(self, start: bytes, end: bytes | None) -> bytes | None:
        """The greatest key in ``[start, end)``, or ``None`` if the range is empty.

        Uses a raw LevelDB iterator (seek, then one step back): plyvel 1.5's reverse
        iterator with a ``start`` bound misses the database's last key.
        """
        self.check_open()
        it = self._db.raw_iterator()
        try:
            if end is None:
                it.seek_to_last()
            else:
                it.seek(end)
                if it.valid():
                    it.prev()
                else:
                    it.seek_to_last()
            if not it.valid():
                return None
            key: bytes = it.key()
            return key if start <= key and (end is None or key < end) else None
        except plyvel.Error as exc:
            raise _read_error(self.path, exc) from exc
        finally:
            it.close()

    def view(self) -> View:
        """A consistent view of the whole database as of now."""
        self.check_open()
        return View(self, self._db.snapshot())

    def wrap(self, it: Any) -> Iterator[Any]:
        """Iterate a plyvel iterator, closing it at the end and mapping its errors."""
        try:
            with contextlib.closing(it):
                yield from it
        except plyvel.Error as exc:
            raise _read_error(self.path, exc) from exc

    # -- writes ----------------------------------------------------------------------
    def batch(self, *, sync: bool = True) -> Batch:
        """A new empty :class:`Batch`; ``sync=True`` makes its commit an fsync'ed write."""
        self.check_open()
        return Batch(self, self._db.write_batch(sync=sync), sync)

    def sync(self) -> None:
        """Make every earlier ``sync=False`` write durable (one synced empty write)."""
        self.batch(sync=True).commit()

    def approximate_size(self, start: bytes, end: bytes) -> int:
        """LevelDB's estimate of the bytes on disk for ``[start, end)``."""
        self.check_open()
        size: int = self._db.approximate_size(start, end)
        return size

    def compact_range(self) -> None:
        """Compact the whole key space (etcd's Defragment: reclaim deleted space)."""
        self.check_open()
        self._db.compact_range()

    # -- lifecycle -------------------------------------------------------------------
    @property
    def closed(self) -> bool:
        """True once :meth:`close` was called."""
        closed: bool = self._db.closed
        return closed

    def check_open(self) -> None:
        """Raise :class:`StorageError` if the engine is closed."""
        if self._db.closed:
            raise StorageError(f"storage at {self.path} is closed")

    def close(self) -> None:
        """Close the database (idempotent); open iterators and views become unusable."""
        self._db.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


def _read_error(path: Path, exc: BaseException) -> StorageError:
    if isinstance(exc, plyvel.CorruptionError):
        return CorruptionError(f"storage at {path} is corrupt: {_message(exc)}")
    return StorageError(f"read from {path} failed: {_message(exc)}")
