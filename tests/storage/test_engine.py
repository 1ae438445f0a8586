"""Engine: opening errors, namespaces, half-open ranges, atomic batches, views; Store."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from raftkv.errors import ConfigError
from raftkv.storage import Engine, Identity, StorageError, Store, keys
from raftkv.storage.engine import Namespace, next_prefix


def put(engine: Engine, *pairs: tuple[bytes, bytes]) -> None:
    b = engine.batch()
    for k, v in pairs:
        b.put(k, v)
    b.commit()


def test_creates_nested_directory(tmp_path: Path) -> None:
    with Engine.open(tmp_path / "a" / "b") as e:
        put(e, (b"k", b"v"))
    with Engine.open(tmp_path / "a" / "b", create=False) as e:
        assert e.get(b"k") == b"v"


def test_missing_directory_without_create(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot open data dir"):
        Engine.open(tmp_path / "nope", create=False)


def test_locked_in_this_process(tmp_path: Path) -> None:
    with Engine.open(tmp_path), pytest.raises(ConfigError, match="locked by another process"):
        Engine.open(tmp_path)


def test_locked_by_another_process(tmp_path: Path) -> None:
    code = ("import sys, plyvel; db = plyvel.DB(sys.argv[1], create_if_missing=True); "
            "print('ready', flush=True); sys.stdin.read()")
    child = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        assert child.stdout.readline() == "ready\n"
        with pytest.raises(ConfigError, match="locked by another process") as info:
            Engine.open(tmp_path)
        assert "\n" not in str(info.value)
    finally:
        child.kill()
        child.wait()


def test_path_is_a_file(tmp_path: Path) -> None:
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(ConfigError, match="file"):
        Engine.open(f)


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere")
def test_not_writable(tmp_path: Path) -> None:
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        with pytest.raises(ConfigError, match="not writable"):
            Engine.open(ro / "db")
    finally:
        ro.chmod(0o700)


def test_corrupt(tmp_path: Path) -> None:
    with Engine.open(tmp_path) as e:
        put(e, (b"k", b"v"))
    (tmp_path / "CURRENT").write_text("MANIFEST-999999\n")
    with pytest.raises(ConfigError, match="is corrupt") as info:
        Engine.open(tmp_path)
    assert "\n" not in str(info.value)


def test_closed_engine(tmp_path: Path) -> None:
    e = Engine.open(tmp_path)
    e.close()
    e.close()
    assert e.closed
    with pytest.raises(StorageError, match="closed"):
        e.get(b"k")
    with pytest.raises(StorageError, match="closed"):
        e.batch()


def test_half_open_ranges_and_last_key(engine: Engine) -> None:
    put(engine, *[(k, k) for k in (b"a", b"b", b"b\x00", b"c", b"\xff")])
    assert list(engine.keys(b"a", b"c")) == [b"a", b"b", b"b\x00"]
    assert list(engine.keys(b"b", None)) == [b"b", b"b\x00", b"c", b"\xff"]
    assert dict(engine.items(b"", b"b")) == {b"a": b"a"}
    assert engine.last_key(b"a", b"c") == b"b\x00"
    assert engine.last_key(b"a", None) == b"\xff"
    assert engine.last_key(b"\xff", None) == b"\xff"  # the database's last key
    assert engine.last_key(b"c", b"c\x00") == b"c"
    assert engine.last_key(b"d", b"e") is None
    assert engine.last_key(b"", b"a") is None


def test_uncommitted_batch_writes_nothing(engine: Engine) -> None:
    b = engine.batch()
    b.put(b"k", b"v")
    del b
    assert engine.get(b"k") is None


def test_view_is_consistent(engine: Engine) -> None:
    put(engine, (b"k", b"1"))
    with engine.view() as v:
        put(engine, (b"k", b"2"), (b"j", b"3"))
        assert v.get(b"k") == b"1"
        assert list(v.items(b"", None)) == [(b"k", b"1")]
    assert engine.get(b"k") == b"2"


def test_namespaces() -> None:
    ns = Namespace(b"s")
    assert ns.bounds() == (b"s", b"t")
    assert ns.bounds(b"a", b"b") == (b"sa", b"sb")
    assert ns.strip(ns.key(b"x")) == b"x"
    assert next_prefix(b"a\xff") == b"b"
    assert next_prefix(b"\xff\xff") is None
    prefixes = [n.prefix for n in keys.NAMESPACES]
    assert len(set(prefixes)) == len(prefixes)


def test_log_keys_sort_by_index() -> None:
    indexes = [0, 1, 2, 255, 256, 1 << 32, (1 << 64) - 1]
    ks = [keys.log_key(i) for i in indexes]
    assert sorted(ks) == ks
    assert [keys.log_index(k) for k in ks] == indexes
    assert all(keys.LOG_START <= k < keys.LOG_END for k in ks)


def test_store_format_and_identity(tmp_path: Path) -> None:
    with Store.open(tmp_path) as store:
        assert store.identity() is None
        store.claim(Identity(cluster_id=0xC1, member_id=0x1))
        store.claim(Identity(cluster_id=0xC1, member_id=0x1))
    with Store.open(tmp_path) as store:
        assert store.identity() == Identity(0xC1, 0x1)
        with pytest.raises(ConfigError, match="belongs to member 1 of cluster c1"):
            store.claim(Identity(0xC1, 0x2))
        b = store.engine.batch()
        b.put(keys.META_FORMAT, keys.encode_u32(99))
        b.commit()
    with pytest.raises(ConfigError, match="storage format 99"):
        Store.open(tmp_path)
    with pytest.raises(ConfigError, match="locked"), Store.open(tmp_path / "x"):
        Store.open(tmp_path / "x")


def test_store_refuses_foreign_leveldb(tmp_path: Path) -> None:
    with Engine.open(tmp_path) as e:
        put(e, (b"foreign", b"1"))
    with pytest.raises(ConfigError, match="did not write"):
        Store.open(tmp_path)


def test_first_key(engine: Engine) -> None:
    assert engine.first_key(b"", None) is None
    put(engine, (b"b", b""), (b"d", b""))
    assert engine.first_key(b"", None) == b"b"
    assert engine.first_key(b"b", b"c") == b"b"
    assert engine.first_key(b"c", b"d") is None
    assert engine.first_key(b"c", None) == b"d"
    assert engine.first_key(b"e", None) is None
