"""A member's garbage-collector settings: raised for its load, never lowered."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from raftkv.server import collector


@pytest.fixture(autouse=True)
def _restore_thresholds() -> Iterator[None]:
    saved = gc.get_threshold()
    yield
    gc.set_threshold(*saved)


def test_relax_raises_the_default_thresholds() -> None:
    gc.set_threshold(700, 10, 10)
    collector.relax()
    assert gc.get_threshold() == (collector.YOUNG_THRESHOLD, collector.MIDDLE_THRESHOLD, 10)


def test_relax_never_lowers_a_higher_setting() -> None:
    gc.set_threshold(200_000, 50, 30)
    collector.relax()
    assert gc.get_threshold() == (200_000, 50, 30)
    gc.set_threshold(1_000, 40, 5)
    collector.relax()
    assert gc.get_threshold() == (collector.YOUNG_THRESHOLD, 40, 5)


def test_relax_leaves_a_disabled_threshold_alone() -> None:
    gc.set_threshold(0, 10, 10)
    collector.relax()
    assert gc.get_threshold() == (0, 10, 10)
