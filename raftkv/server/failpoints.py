"""Named failpoints: test-only switches that make the server misbehave on purpose.

The chaos harness enables them to prove its checkers can fail (a broken server must be
caught). Every failpoint is a no-op unless named in the environment variable
``RAFTKV_FAILPOINTS`` (comma-separated) when the process starts; it is read once, at
import. Never enable one in production.

Known failpoints:

* ``kv-stale-read`` -- linearizable Range and read-only Txn skip the ReadIndex barrier and
  answer from this member's local state (a partitioned follower or deposed leader then
  serves stale reads).
"""

from __future__ import annotations

import os

__all__ = ["KNOWN", "active", "enabled"]

ENV = "RAFTKV_FAILPOINTS"
KNOWN = frozenset({"kv-stale-read"})


def _parse(text: str) -> frozenset[str]:
    return frozenset(name.strip() for name in text.split(",") if name.strip())


_ENABLED = _parse(os.environ.get(ENV, ""))


def enabled() -> frozenset[str]:
    """The failpoints enabled for this process."""
    return _ENABLED


def active(name: str) -> bool:
    """True if failpoint ``name`` is enabled (``RAFTKV_FAILPOINTS`` at startup)."""
    return name in _ENABLED
