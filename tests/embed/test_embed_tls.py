"""raftkv.embed with etcd's TLS flags: a member whose client listener serves mutual TLS to
other processes while the in-process client needs no certificate."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from raftkv import certs, embed
from raftkv.client import TLS, Client
from raftkv.client.retry import RetryPolicy
from raftkv.errors import RaftKVError


def test_a_member_with_tls_flags(tmp_path: Path) -> None:
    d = tmp_path / "certs"
    certs.init_cluster(d, ["n1"])
    flags: dict[str, Any] = {"cert_file": str(d / "n1.pem"), "key_file": str(d / "n1-key.pem"),
             "trusted_ca_file": str(d / "ca.pem"), "client_cert_auth": True}

    async def scenario() -> None:
        async with embed.start_node(tmp_path / "n1", name="n1", **flags) as node:
            (url,) = node.client_urls
            assert url.startswith("https://127.0.0.1:")
            await node.client().put("k", "in-process")
            tls = TLS(ca_file=str(d / "ca.pem"), cert_file=str(d / "client.pem"),
                      key_file=str(d / "client-key.pem"))
            async with Client([url], tls=tls, timeout=10) as remote:
                got = await remote.get("k")
                assert got is not None
                assert got.value == b"in-process"
            no_cert = Client([url], tls=TLS(ca_file=str(d / "ca.pem")), timeout=3,
                             retry=RetryPolicy.never())
            with pytest.raises(RaftKVError):
                await no_cert.get("k")
            await no_cert.close()

    asyncio.run(asyncio.wait_for(scenario(), 90))
    saved = json.loads((tmp_path / "n1" / "embed.json").read_text())
    assert saved["listen_client_urls"].startswith("https://")
