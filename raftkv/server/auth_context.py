"""Who the RPC being served is for (set by :mod:`raftkv.server.auth` while auth is on; the
driver stamps every proposal with it)."""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass

__all__ = ["PRINCIPAL", "Principal"]


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller: ``user`` ("" for no one) and the auth revision the member saw when it
    resolved them (the stamp of etcd's ``RequestHeader``)."""

    user: str
    revision: int
    error: str = ""
    """Why no user could be resolved (a watch stream is opened anyway and each create is
    then canceled with this, as etcd does)."""


PRINCIPAL: ContextVar[Principal | None] = ContextVar("raftkv_principal", default=None)
"""Set for the duration of each RPC while auth is on."""
