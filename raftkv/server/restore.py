"""``raftkv snapshot restore``: turn a snapshot file (``etcdctl snapshot save`` or the
Maintenance.Snapshot stream) into the data directory of a member of a NEW cluster.

Every member of the new cluster is restored from the same file with its own flags; they then
start with ``raftkv serve`` and the same flags. Like etcd's restore, the new cluster keeps
the keys, revisions and leases of the old one, and gets a fresh membership and new ids.
"""

from __future__ import annotations

from pathlib import Path

from raftkv.errors import ConfigError
from raftkv.raft.types import ConfState, HardState, Snapshot, SnapshotMeta
from raftkv.server.config import ServerConfig
from raftkv.server.services.maintenance import unpack_snapshot
from raftkv.state.errors import ApplyError
from raftkv.state.machine import StateMachine
from raftkv.storage.store import Identity, Store


def restore_snapshot(path: Path, cfg: ServerConfig) -> int:
    """Restore ``path`` into ``cfg.data_dir``; returns the log index the member starts at.

    Raises:
        ConfigError: the file is unreadable or not a valid snapshot, or the data
            directory is not empty (one line, naming the problem).
    """
    cfg.validate()
    try:
        blob = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read snapshot file {path}: {exc.strerror}") from None
    try:
        data = unpack_snapshot(blob)
    except ValueError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    target = cfg.data_path
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise ConfigError(f"--data-dir {target} already exists and is not empty; restore into "
                          f"a new directory")
    store = Store.open(target)
    try:
        store.claim(Identity(cfg.cluster_id, cfg.member_id))
        sm = StateMachine(store.backend)
        try:
            sm.restore(data)
        except ApplyError as exc:
            raise ConfigError(f"{path} does not hold a valid raftkv state: {exc}") from None
        index = max(sm.applied_index, 1)
        voters = frozenset(m.id for m in cfg.members)
        meta = SnapshotMeta(index=index, term=1, conf_state=ConfState(voters=voters))
        store.log.save(HardState(term=1, commit=index), (), Snapshot(meta=meta,
                                                                    data=sm.snapshot()))
    finally:
        store.close()
    return index
