"""Fixtures for the differential test: a real 3-member etcd and a 3-member raftkv cluster,
started side by side once per test session (per xdist worker) and stopped by PID."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import pytest

from tests.compat.clusters import (
    EtcdCluster,
    RaftkvCluster,
    Target,
    etcd_available,
    etcdctl_available,
)
from tests.compat.runner import table_header


@dataclass
class Pair:
    etcd: Target
    raftkv: Target
    rows: list[str] = field(default_factory=list)


@pytest.fixture(scope="session")
def pair(tmp_path_factory: pytest.TempPathFactory,
         request: pytest.FixtureRequest) -> Iterator[Pair]:
    if not etcdctl_available() or not etcd_available():
        pytest.skip("etcd/etcdctl not installed (apt-get install etcd-server etcd-client; "
                    "./dev test installs them when run as root)")
    root = tmp_path_factory.mktemp("compat")
    (root / "etcd").mkdir()
    (root / "raftkv").mkdir()
    etcd = EtcdCluster(root / "etcd")
    raftkv = RaftkvCluster(root / "raftkv")
    rows: list[str] = []
    try:
        targets = etcd.start(), raftkv.start()
        with ThreadPoolExecutor(2) as pool:
            list(pool.map(lambda t: t.wait_ready(), targets))
        p = Pair(*targets, rows=rows)
        yield p
    finally:
        raftkv.stop()
        etcd.stop()
    if rows:
        capman = request.config.pluginmanager.getplugin("capturemanager")
        with capman.global_and_fixture_disabled():
            print("\n\netcdctl against etcd and raftkv (normalised)")
            print(table_header())
            print("\n".join(rows))
