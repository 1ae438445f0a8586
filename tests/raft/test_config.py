"""``Config.validate`` (STYLE.md: a pure validate that raises ``ConfigError`` naming the
value, as raft-rs does, and never mutates, unlike etcd-io/raft's ``Config.validate``).
The timing rule it protects is dissertation §3.4 / Raft §5.6 (broadcast time << election
timeout: the election timeout must exceed the heartbeat interval)."""

from __future__ import annotations

import dataclasses
import random
from typing import Any

import pytest

from raftkv.errors import ConfigError
from raftkv.raft.config import Config
from raftkv.raft.rawnode import RawNode
from tests.raft.harness import boot_storage

INVALID: list[tuple[dict[str, Any], str]] = [
    ({"id": 0}, "id"),
    ({"heartbeat_ticks": 0}, "heartbeat_ticks=0"),
    ({"heartbeat_ticks": -2}, "heartbeat_ticks=-2"),
    ({"election_ticks": 3, "heartbeat_ticks": 3}, "election_ticks=3"),
    ({"election_ticks": 2, "heartbeat_ticks": 5}, "heartbeat_ticks=5"),
    ({"max_inflight_msgs": 0}, "max_inflight_msgs=0"),
    ({"applied": -1}, "applied=-1"),
    ({"max_size_per_msg": -1}, "max_size_per_msg=-1"),
    ({"max_inflight_bytes": -7}, "max_inflight_bytes=-7"),
    ({"max_uncommitted_entries_size": -1}, "max_uncommitted_entries_size=-1"),
    ({"max_committed_size_per_ready": -3}, "max_committed_size_per_ready=-3"),
]


def _config(**kw: Any) -> Config:
    base: dict[str, Any] = {"id": 1, "rng": random.Random(5)}
    base.update(kw)
    return Config(**base)


def _fields(cfg: Config) -> dict[str, Any]:
    values = {f.name: getattr(cfg, f.name) for f in dataclasses.fields(cfg)}
    values["rng"] = cfg.rng.getstate()
    return values


@pytest.mark.parametrize(("kw", "named"), INVALID)
def test_validate_raises_config_error_naming_the_value(kw, named):
    """STYLE.md / §5.6: each invalid value is reported by name (and value), and the
    config is left exactly as it was."""
    cfg = _config(**kw)
    before = _fields(cfg)
    with pytest.raises(ConfigError, match=named):
        cfg.validate()
    assert _fields(cfg) == before


@pytest.mark.parametrize(("kw", "named"), INVALID[:3])
def test_rawnode_refuses_an_invalid_config(kw, named):
    """STYLE.md: the core validates its config on construction."""
    with pytest.raises(ConfigError, match=named):
        RawNode(_config(**kw), boot_storage([1]))


def test_valid_config_passes_and_is_not_mutated():
    """STYLE.md: validate() changes nothing, not even the RNG state; the config is frozen."""
    cfg = _config(election_ticks=5, heartbeat_ticks=2, max_inflight_msgs=1,
                  max_size_per_msg=0)
    before = _fields(cfg)
    cfg.validate()
    cfg.validate()
    assert _fields(cfg) == before
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.election_ticks = 1  # type: ignore[misc]
