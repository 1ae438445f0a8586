"""`Store`: one member's data directory, opened once, with everything that lives in it.

The composition root (``server/app.py``) opens a :class:`Store`, hands :attr:`Store.log`
to the ``RawNode`` and :attr:`Store.backend` to the ``StateMachine``, and closes it last.
The directory also records its format version and, once set, which member of which
cluster it belongs to, so a member cannot start on another member's data by mistake.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from types import TracebackType
from typing import Self

from raftkv.errors import ConfigError
from raftkv.storage import keys
from raftkv.storage.engine import Engine
from raftkv.storage.raft_store import DurableLogStorage
from raftkv.storage.state_backend import LevelDBBackend


@dataclass(frozen=True, slots=True)
class Identity:
    """Which member of which cluster a data directory belongs to."""

    cluster_id: int
    member_id: int


def check_format(engine: Engine) -> None:
    """Stamp an empty database with :data:`keys.FORMAT_VERSION`, or check its stamp.

    Raises:
        ConfigError: the directory holds data of another format, or no raftkv data.
    """
    raw = engine.get(keys.META_FORMAT)
    if raw is None:
        if engine.first_key(b"", None) is not None:
            raise ConfigError(f"data dir {engine.path} holds a LevelDB that raftkv did not "
                              f"write (no format version); use an empty directory")
        batch = engine.batch(sync=True)
        batch.put(keys.META_FORMAT, keys.encode_u32(keys.FORMAT_VERSION))
        batch.commit()
        return
    version = keys.decode_u32(raw) if len(raw) == 4 else -1
    if version != keys.FORMAT_VERSION:
        raise ConfigError(f"data dir {engine.path} has storage format {version}; this raftkv "
                          f"reads format {keys.FORMAT_VERSION}")


class Store:
    """An open data directory: the :class:`Engine`, the raft log and the state backend."""

    def __init__(self, engine: Engine, *, sync_state: bool = True) -> None:
        check_format(engine)
        self.engine = engine
        self.log = DurableLogStorage(engine)
        self.backend = LevelDBBackend(engine, sync=sync_state)

    @classmethod
    def open(cls, path: str | os.PathLike[str], *, sync_state: bool = True) -> Store:
        """Open (creating if needed) the data directory ``path``.

        Raises:
            ConfigError: the directory cannot be used (one-line message with the fix).
            CorruptionError: a stored record is unreadable.
        """
        engine = Engine.open(path)
        try:
            return cls(engine, sync_state=sync_state)
        except BaseException:
            engine.close()
            raise

    def identity(self) -> Identity | None:
        """The recorded identity, or ``None`` for a directory that never had one."""
        cluster = self.engine.get(keys.META_CLUSTER_ID)
        member = self.engine.get(keys.META_MEMBER_ID)
        if cluster is None or member is None:
            return None
        return Identity(keys.decode_u64(cluster), keys.decode_u64(member))

    def claim(self, identity: Identity) -> None:
        """Record ``identity``, or check that it is the one already recorded.

        Raises:
            ConfigError: the directory belongs to another member or cluster.
        """
        current = self.identity()
        if current == identity:
            return
        if current is not None:
            raise ConfigError(
                f"data dir {self.engine.path} belongs to member {current.member_id:x} of "
                f"cluster {current.cluster_id:x}, not member {identity.member_id:x} of "
                f"cluster {identity.cluster_id:x}; use another --data-dir")
        batch = self.engine.batch(sync=True)
        batch.put(keys.META_CLUSTER_ID, keys.encode_u64(identity.cluster_id))
        batch.put(keys.META_MEMBER_ID, keys.encode_u64(identity.member_id))
        batch.commit()

    def close(self) -> None:
        """Close the directory (idempotent)."""
        self.engine.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
