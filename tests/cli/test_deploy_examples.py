"""The deployment examples in cluster/deploy/ are valid member configurations: each
member's flags parse and validate as `raftkv serve` would, TLS included, with no warning."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from raftkv.cli.serve import add_serve, serve_config
from raftkv.server.config import load_toml

DEPLOY = Path(__file__).resolve().parents[2] / "cluster" / "deploy"


def _serve_namespace(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="raftkv")
    add_serve(parser.add_subparsers())
    return parser.parse_args(argv)


def test_the_tls_toml_example_validates() -> None:
    cfg = load_toml(DEPLOY / "tls.toml")
    cfg.validate()
    assert cfg.tls_plan() == []
    assert cfg.client_cert_auth
    assert cfg.peer_client_cert_auth
    assert all(u.startswith("https://") for u in cfg.initial_cluster.values())


def test_every_compose_member_validates_with_mutual_tls() -> None:
    text = (DEPLOY / "docker-compose.yml").read_text()
    commands = re.findall(r"command: \[(.*?)\]\n", text, flags=re.S)
    assert len(commands) == 3
    for command in commands:
        words = re.findall(r'"([^"]*)"|([^,\s"][^,\n]*)', command)
        argv = [quoted or bare.strip() for quoted, bare in words]
        cfg = serve_config(_serve_namespace(argv))
        assert cfg.tls_plan() == []
        assert cfg.listen_client_urls[0].startswith("https://")
        assert cfg.client_cert_auth
        assert cfg.peer_client_cert_auth
        assert cfg.peer_cert_allowed_cn == ("n1", "n2", "n3")
