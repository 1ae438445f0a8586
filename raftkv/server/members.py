"""The member registry: names, peer and client URLs of the cluster's members, and alarms.

Membership itself (who votes, who learns) is Raft's :class:`ConfState`; this registry keeps
what etcd keeps beside it. It is replicated state: every change travels in the context of
a conf change entry and is applied, in log order, by every member (:meth:`apply`).

Context of a conf change (after the driver's 8-byte nonce), JSON with an ``op``:

* ``add`` — with ``ADD_NODE`` / ``ADD_LEARNER`` of a new member: ``peerURLs``.
* ``attrs`` — a member publishes its ``name`` and ``clientURLs`` (etcd's "publish").
* ``peers`` — MemberUpdate: new ``peerURLs`` of ``node_id``.
* ``alarm`` — ``action`` (1 activate, 2 deactivate), ``member`` (0: all), ``alarm``.
* ``registry`` — ``members``: every member's attributes, proposed by the leader after an
  add, so that a member that joins from a snapshot (which does not carry the registry)
  learns the others' names and client URLs from the log.

``attrs``, ``peers`` and ``alarm`` ride on an ``ADD_LEARNER`` entry but are *not* membership
changes: the driver must not hand them to the Raft core (:func:`is_attribute_change`).

The registry is a JSON file in the data directory, replaced atomically (write, fsync,
rename) after each applied change, with the index of the last entry it covers, so replaying
the log after a restart applies nothing twice.
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from raftkv.raft.types import ConfChange, ConfChangeType, ConfState

FILE_NAME = "members.json"
NONCE_BYTES = 8
ATTRIBUTE_OPS = frozenset({"attrs", "peers", "alarm", "registry"})
ALARM_ACTIVATE = 1
ALARM_DEACTIVATE = 2


@dataclass(frozen=True, slots=True)
class MemberInfo:
    """What the registry knows of one member (an empty name: not started yet)."""

    id: int
    name: str = ""
    peer_urls: tuple[str, ...] = ()
    client_urls: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "peerURLs": list(self.peer_urls),
                "clientURLs": list(self.client_urls)}

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> MemberInfo:
        return cls(int(obj["id"]), str(obj.get("name", "")),
                   tuple(obj.get("peerURLs", ())), tuple(obj.get("clientURLs", ())))


def encode_context(op: str, **fields: object) -> bytes:
    """The context of a conf change carrying registry operation ``op``."""
    return json.dumps({"op": op, **fields}, sort_keys=True).encode()


def decode_context(cc: ConfChange) -> dict[str, Any]:
    """The registry operation of ``cc`` (``{}`` if its context carries none)."""
    raw = cc.context[NONCE_BYTES:]
    if not raw:
        return {}
    try:
        obj = json.loads(raw)
    except ValueError:
        return {}
    return obj if isinstance(obj, dict) else {}


def is_attribute_change(cc: ConfChange) -> bool:
    """True if ``cc`` only changes registry attributes (Raft must not apply it)."""
    return decode_context(cc).get("op") in ATTRIBUTE_OPS


class MemberRegistry:
    """See the module docstring. Thread-safe (applied by the driver, read by handlers)."""

    def __init__(self, path: Path, members: dict[int, MemberInfo],
                 alarms: set[tuple[int, int]], index: int) -> None:
        self.path = path
        self._members = members
        self._alarms = alarms
        self.index = index
        self._lock = threading.Lock()

    @classmethod
    def open(cls, data_dir: str | os.PathLike[str],
             initial: tuple[MemberInfo, ...]) -> MemberRegistry:
        """Load the registry of ``data_dir``; a new one starts from ``initial``."""
        path = Path(data_dir) / FILE_NAME
        if not path.exists():
            reg = cls(path, {m.id: m for m in initial}, set(), 0)
            reg._save()
            return reg
        obj = json.loads(path.read_text())
        members = {int(m["id"]): MemberInfo.from_json(m) for m in obj["members"]}
        alarms = {(int(a[0]), int(a[1])) for a in obj.get("alarms", ())}
        return cls(path, members, alarms, int(obj.get("index", 0)))

    def _save(self) -> None:
        obj = {"index": self.index, "members": [m.to_json() for m in self._members.values()],
               "alarms": sorted(self._alarms)}
        tmp = self.path.with_suffix(".tmp")
        with open(tmp, "w") as f:
            json.dump(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)

    # -- reads -------------------------------------------------------------------------------
    def get(self, member_id: int) -> MemberInfo | None:
        with self._lock:
            return self._members.get(member_id)

    def all(self) -> list[MemberInfo]:
        """Every member the registry knows, ordered by id."""
        with self._lock:
            return sorted(self._members.values(), key=lambda m: m.id)

    def members(self, cs: ConfState) -> list[tuple[MemberInfo, bool]]:
        """Every member of ``cs`` (Raft's word on who is a member) with its attributes and
        whether it is a learner, ordered by id."""
        with self._lock:
            ids = sorted(cs.voters | cs.learners)
            return [(self._members.get(i, MemberInfo(i)), i in cs.learners) for i in ids]

    def owner_of_peer_url(self, url: str, cs: ConfState) -> int | None:
        """The member of ``cs`` that has peer URL ``url``, if any."""
        for info, _ in self.members(cs):
            if url in info.peer_urls:
                return info.id
        return None

    def alarms(self) -> list[tuple[int, int]]:
        """Active alarms as ``(member id, alarm type)``, sorted."""
        with self._lock:
            return sorted(self._alarms)

    def has_alarm(self, alarm: int) -> bool:
        """Whether any member has ``alarm`` active (checked on every write: cheap when no
        alarm is set, which is almost always)."""
        if not self._alarms:
            return False
        with self._lock:
            return any(a == alarm for _, a in self._alarms)

    # -- the apply path ------------------------------------------------------------------------
    def dump(self) -> bytes:
        """The whole registry, for a Raft snapshot (taken at ``self.index`` or later)."""
        with self._lock:
            obj = {"index": self.index,
                   "members": [m.to_json() for m in self._members.values()],
                   "alarms": sorted(self._alarms)}
        return json.dumps(obj, sort_keys=True).encode()

    def load(self, data: bytes, index: int) -> None:
        """Replace the registry by one from a Raft snapshot installed at ``index``."""
        obj = json.loads(data)
        with self._lock:
            self._members = {int(m["id"]): MemberInfo.from_json(m) for m in obj["members"]}
            self._alarms = {(int(a[0]), int(a[1])) for a in obj.get("alarms", ())}
            self.index = max(index, int(obj.get("index", 0)))
            self._save()

    def apply(self, index: int, cc: ConfChange) -> bool:
        """Apply the conf change entry at ``index``; False if it was applied before."""
        if index <= self.index:
            return False
        ctx = decode_context(cc)
        op = ctx.get("op")
        with self._lock:
            nid = cc.node_id
            old = self._members.get(nid, MemberInfo(nid))
            if cc.type is ConfChangeType.REMOVE_NODE:
                self._members.pop(nid, None)
                self._alarms = {a for a in self._alarms if a[0] != nid}
            elif op == "add":
                self._members[nid] = replace(old, peer_urls=tuple(ctx.get("peerURLs", ())))
            elif op == "attrs" and nid in self._members:
                self._members[nid] = replace(old, name=str(ctx.get("name", "")),
                                             client_urls=tuple(ctx.get("clientURLs", ())))
            elif op == "peers" and nid in self._members:
                self._members[nid] = replace(old, peer_urls=tuple(ctx.get("peerURLs", ())))
            elif op == "alarm":
                self._apply_alarm(ctx)
            elif op == "registry":
                for obj in ctx.get("members", ()):
                    info = MemberInfo.from_json(obj)
                    if info.id in self._members and info.peer_urls:
                        self._members[info.id] = info
            self.index = index
            self._save()
        return True

    def _apply_alarm(self, ctx: dict[str, Any]) -> None:
        action, member, alarm = (int(ctx.get(k, 0)) for k in ("action", "member", "alarm"))
        if action == ALARM_ACTIVATE and member != 0 and alarm != 0:
            self._alarms.add((member, alarm))
        elif action == ALARM_DEACTIVATE:
            self._alarms = {(m, a) for m, a in self._alarms
                            if not ((member in (0, m)) and alarm in (0, a))}
