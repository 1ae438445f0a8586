"""Fixtures for the client tests: one real 3-member raftkv cluster per test module."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from tests.integration.procs import ProcCluster

T = TypeVar("T")
_names = itertools.count()


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run one test body on a fresh event loop."""
    return asyncio.run(coro)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProcCluster]:
    c = ProcCluster(Path(tmp_path_factory.mktemp("client-cluster")), 3)
    c.start_all()
    try:
        c.leader()
        yield c
    finally:
        c.stop_all()


@pytest.fixture
def prefix(request: pytest.FixtureRequest) -> str:
    """A key prefix of this test alone (tests share the module's cluster)."""
    return f"/{request.node.name}-{next(_names)}/"
