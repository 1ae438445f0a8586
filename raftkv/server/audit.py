"""The audit log (``--audit-log FILE``): one JSON line per refused request and per auth
change, written by the member that served the request. Never a secret: a line carries the
user, what was refused or changed, the etcd error and the caller's address — no password,
no token, no key value.

    {"ts": "2026-12-08T00:56:00.123Z", "event": "denied", "user": "alice",
     "error": "etcdserver: permission denied", "peer": "ipv4:127.0.0.1:50212"}
    {"ts": "...", "event": "auth", "user": "root", "op": "RoleGrantPermission",
     "target": "app", "auth_revision": 7}
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

__all__ = ["audit", "configure"]

_log = logging.getLogger("raftkv.audit")
_log.propagate = False  # only to the audit file, never to the member's log


class _JSON(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        fields = dict(record.args) if isinstance(record.args, dict) else {}
        ms = int(record.created * 1000) % 1000
        ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        return json.dumps({"ts": f"{ts}.{ms:03d}Z", "event": record.getMessage(), **fields},
                          sort_keys=False, default=str)


def configure(path: str) -> None:
    """Append the audit lines to ``path`` (created 0600)."""
    import os

    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.close(fd)
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(_JSON())
    _log.addHandler(handler)
    _log.setLevel(logging.INFO)


def audit(event: str, **fields: Any) -> None:
    """One audit line (a no-op without ``--audit-log``)."""
    if _log.handlers:
        _log.info(event, fields)
