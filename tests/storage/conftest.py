"""Fixtures: a storage factory parametrized over MemoryStorage and DurableLogStorage."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from raftkv.raft.storage import MemoryStorage
from raftkv.storage import DurableLogStorage, Engine
from tests.storage.helpers import WritableStorage

Factory = Callable[[], WritableStorage]


@pytest.fixture(params=["memory", "durable", "durable-nocache"])
def make_storage(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Factory]:
    """Build empty storages of one kind (the durable ones in ``tmp_path``)."""
    engines: list[Engine] = []

    def make() -> WritableStorage:
        if request.param == "memory":
            return MemoryStorage()
        engine = Engine.open(tmp_path / f"db{len(engines)}")
        engines.append(engine)
        cache = 1 if request.param == "durable-nocache" else 4096
        return DurableLogStorage(engine, cache_entries=cache)

    yield make
    for engine in engines:
        engine.close()


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    eng = Engine.open(tmp_path / "db")
    yield eng
    eng.close()
