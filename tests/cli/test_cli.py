"""The raftkv command line: help, one-line errors, serve's config, cluster bookkeeping.

Nothing here needs the server: ``serve`` runs against a stand-in ``raftkv.server.app``,
and the ``cluster`` tests use stand-in member processes (``python -c 'sleep' -m raftkv
serve --data-dir ...``, whose command line looks like a member's). Tests that start real
members are in ``tests/integration/test_cluster_cli.py``.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import types
from pathlib import Path

import pytest

from raftkv.cli import (
    LocalCluster,
    build_parser,
    is_member_process,
    main,
    serve_argv,
    serve_config,
)
from raftkv.server.config import ServerConfig

REPO = Path(__file__).resolve().parents[2]
THREE = "n1=http://127.0.0.1:2380,n2=http://127.0.0.1:2382,n3=http://127.0.0.1:2384"


def run_module(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "raftkv", *args], capture_output=True,
                          text=True, timeout=60, cwd=REPO)


def one_error_line(err: str, *needles: str) -> None:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("raftkv: error: "), err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in lines[0], err


# -- help and usage errors ----------------------------------------------------------------

@pytest.mark.parametrize("argv", [
    ["--help"], ["serve", "--help"], ["cluster", "--help"], ["cluster", "up", "--help"],
    ["cluster", "status", "--help"], ["cluster", "down", "--help"], ["version", "--help"],
])
def test_help_exits_0_with_an_example(argv: list[str], capsys: pytest.CaptureFixture[str],
                                      ) -> None:
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "usage: raftkv" in out
    assert "example" in out


def test_python_m_raftkv_help() -> None:
    proc = run_module("--help")
    assert proc.returncode == 0
    assert "serve" in proc.stdout
    assert "cluster" in proc.stdout
    proc = run_module("serve", "--help")
    assert proc.returncode == 0
    assert "--initial-cluster" in proc.stdout


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["version"]) == 0
    assert capsys.readouterr().out.startswith("raftkv 0.")


@pytest.mark.parametrize(("argv", "needles"), [
    ([], ["required"]),
    (["bogus"], ["invalid choice", "bogus"]),
    (["serve", "--no-such-flag"], ["--no-such-flag"]),
    (["serve", "--heartbeat-interval", "fast"], ["--heartbeat-interval", "'fast'"]),
    (["cluster"], ["required"]),
    (["cluster", "up"], ["--data-dir"]),
    (["cluster", "up", "--data-dir", "d", "--size", "x"], ["--size", "'x'"]),
])
def test_usage_errors_exit_2_with_one_line(argv: list[str], needles: list[str],
                                           capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    one_error_line(capsys.readouterr().err, *needles)


@pytest.mark.parametrize(("argv", "needles"), [
    (["serve", "--election-timeout", "x"], ["--election-timeout", "'x'"]),
    (["serve", "--name", "n1", "--initial-cluster", "n2=http://127.0.0.1:2380"],
     ["does not name this member 'n1'"]),
    (["serve", "--listen-client-urls", "https://127.0.0.1:2379"], ["--cert-file", "HTTPS scheme"]),
    (["serve", "--initial-cluster", "n1"], ["'n1' is not name=peer-url"]),
    (["serve", "--config-file", "/nonexistent/raftkv.toml"], ["/nonexistent/raftkv.toml"]),
])
def test_bad_serve_input_in_a_subprocess(argv: list[str], needles: list[str]) -> None:
    proc = run_module(*argv)
    assert proc.returncode == 2, proc.stderr
    one_error_line(proc.stderr, *needles)
    assert proc.stdout == ""


@pytest.mark.parametrize(("argv", "needles"), [
    (["--heartbeat-interval", "100", "--election-timeout", "300"], ["5 times"]),
    (["--listen-client-urls", "http://127.0.0.1:99999"], ["99999", "out of range"]),
    (["--listen-peer-urls", "http://127.0.0.1"], ["--listen-peer-urls", "no port"]),
    (["--initial-cluster-state", "maybe"], ["--initial-cluster-state='maybe'"]),
    (["--snapshot-count", "0"], ["--snapshot-count=0"]),
    (["--initial-cluster", THREE, "--name", "n1",
      "--initial-advertise-peer-urls", "http://127.0.0.1:2399"], ["does not match"]),
])
def test_bad_serve_flags_exit_2(argv: list[str], needles: list[str],
                                capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", *argv]) == 2
    one_error_line(capsys.readouterr().err, *needles)


# -- serve --------------------------------------------------------------------------------

@pytest.fixture
def fake_app(monkeypatch: pytest.MonkeyPatch) -> list[ServerConfig]:
    """Replace raftkv.server.app with a stand-in whose run_server records its config."""
    calls: list[ServerConfig] = []

    def run_server(cfg: ServerConfig) -> int:
        calls.append(cfg)
        return 7

    module = types.ModuleType("raftkv.server.app")
    module.run_server = run_server  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "raftkv.server.app", module)
    return calls


def test_serve_passes_the_config_to_run_server(fake_app: list[ServerConfig]) -> None:
    assert main(["serve", "--name", "n2", "--initial-cluster", THREE,
                 "--listen-client-urls", "http://127.0.0.1:2381",
                 "--listen-peer-urls", "http://127.0.0.1:2382",
                 "--heartbeat-interval", "50", "--election-timeout", "600"]) == 7
    [cfg] = fake_app
    assert cfg.name == "n2"
    assert cfg.data_dir == "n2.raftkv"
    assert cfg.initial_advertise_peer_urls == ("http://127.0.0.1:2382",)
    assert (cfg.heartbeat_interval_ms, cfg.election_timeout_ms) == (50, 600)


def test_serve_flags_override_the_config_file(tmp_path: Path,
                                              fake_app: list[ServerConfig]) -> None:
    path = tmp_path / "n1.toml"
    path.write_text(f'name = "n1"\ninitial-cluster = "{THREE}"\ndata-dir = "from-file"\n'
                    'heartbeat-interval = 50\nelection-timeout = 500\n')
    assert main(["serve", "--config-file", str(path), "--data-dir", "from-flag",
                 "--election-timeout", "900"]) == 7
    [cfg] = fake_app
    assert (cfg.name, cfg.data_dir) == ("n1", "from-flag")
    assert (cfg.heartbeat_interval_ms, cfg.election_timeout_ms) == (50, 900)
    assert list(cfg.initial_cluster) == ["n1", "n2", "n3"]


def test_serve_config_file_errors_name_key_and_file(tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str],
                                                    fake_app: list[ServerConfig]) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('name = "n1"\nsnapshot-interval = 5\n')
    assert main(["serve", "--config-file", str(path)]) == 2
    one_error_line(capsys.readouterr().err, str(path), "'snapshot-interval'")
    assert fake_app == []


def test_serve_shipped_config(fake_app: list[ServerConfig]) -> None:
    assert main(["serve", "--config-file", str(REPO / "cluster/3/n2.toml")]) == 7
    assert fake_app[0].listen_client_urls == ("http://127.0.0.1:23792",)


# -- cluster bookkeeping (no real members) -------------------------------------------------

def test_layout_and_member_command_line(tmp_path: Path) -> None:
    cluster = LocalCluster(tmp_path, 3, 23790, "tok")
    assert [(m.name, m.client_port, m.peer_port) for m in cluster.members] == [
        ("n1", 23790, 23791), ("n2", 23792, 23793), ("n3", 23794, 23795)]
    assert cluster.endpoints == (
        "http://127.0.0.1:23790,http://127.0.0.1:23792,http://127.0.0.1:23794")
    argv = serve_argv(cluster, cluster.members[1])
    assert argv[1:4] == ["-m", "raftkv", "serve"]
    ns = build_parser().parse_args(argv[3:])
    cfg = serve_config(ns)
    assert (cfg.name, cfg.data_dir, cfg.initial_cluster_token) == (
        "n2", str(tmp_path / "n2"), "tok")
    assert json.loads(cluster.to_json())["endpoints"] == cluster.endpoints


def test_status_and_down_without_a_cluster(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    for command in ("status", "down"):
        assert main(["cluster", command, "--data-dir", str(tmp_path)]) == 1
        one_error_line(capsys.readouterr().err, "no cluster", str(tmp_path))


def fake_member(member_dir: Path, *, ignore_term: bool = False) -> subprocess.Popen[bytes]:
    """A process whose command line looks like ``python -m raftkv serve --data-dir DIR``."""
    code = "import signal, time\n"
    if ignore_term:
        code += "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    code += "print('ready', flush=True)\ntime.sleep(60)\n"
    proc = subprocess.Popen([sys.executable, "-c", code, "-m", "raftkv", "serve",
                             "--data-dir", str(member_dir)], stdout=subprocess.PIPE)
    assert proc.stdout is not None
    assert proc.stdout.readline() == b"ready\n"
    return proc


@pytest.fixture
def cluster(tmp_path: Path) -> LocalCluster:
    cl = LocalCluster(tmp_path, 2, free_base_port(2), "tok")
    (tmp_path / "cluster.json").write_text(cl.to_json())
    return cl


def free_base_port(size: int) -> int:
    for base in range(41000, 60000, 97):
        if all(bindable(p) for p in range(base, base + 2 * size)):
            return base
    raise RuntimeError("no free ports")


def bindable(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def test_is_member_process(cluster: LocalCluster) -> None:
    n1, n2 = cluster.members
    proc = fake_member(n1.data_dir)
    try:
        assert is_member_process(proc.pid, n1)
        assert not is_member_process(proc.pid, n2)  # another member's data dir
        assert not is_member_process(os.getpid(), n1)  # not a raftkv serve process
    finally:
        proc.kill()
        proc.wait()
    assert not is_member_process(proc.pid, n1)


def test_down_signals_exactly_the_recorded_members(cluster: LocalCluster,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    n1, n2 = cluster.members
    member = fake_member(n1.data_dir)
    stranger = fake_member(n2.data_dir.with_name("elsewhere"))  # reused pid, other process
    n1.pid_file.write_text(f"{member.pid}\n")
    n2.pid_file.write_text(f"{stranger.pid}\n")
    try:
        assert main(["cluster", "status", "--data-dir", str(cluster.directory)]) == 1
        out = capsys.readouterr().out.splitlines()
        assert out[0].startswith("n1")
        assert "alive" in out[0]
        assert out[1].startswith("n2")
        assert "dead" in out[1]
        assert main(["cluster", "down", "--data-dir", str(cluster.directory)]) == 0
        text = capsys.readouterr().out
        assert f"n1: stopped (pid {member.pid})" in text
        assert "stale PID file" in text
        assert member.wait(timeout=10) == -signal.SIGTERM
        assert stranger.poll() is None  # never signalled
        assert not n1.pid_file.exists()
        assert not n2.pid_file.exists()
    finally:
        for proc in (member, stranger):
            proc.kill()
            proc.wait()


def test_down_kills_a_member_that_ignores_sigterm(cluster: LocalCluster,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    n1 = cluster.members[0]
    member = fake_member(n1.data_dir, ignore_term=True)
    n1.pid_file.write_text(f"{member.pid}\n")
    try:
        started = time.monotonic()
        assert main(["cluster", "down", "--data-dir", str(cluster.directory),
                     "--timeout", "0.5"]) == 0
        assert time.monotonic() - started < 5
        assert "killed with SIGKILL" in capsys.readouterr().out
        assert member.wait(timeout=10) == -signal.SIGKILL
    finally:
        member.kill()
        member.wait()


def test_up_refuses_a_running_cluster(cluster: LocalCluster,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    n1 = cluster.members[0]
    member = fake_member(n1.data_dir)
    n1.pid_file.write_text(f"{member.pid}\n")
    try:
        assert main(["cluster", "up", "--data-dir", str(cluster.directory)]) == 1
        one_error_line(capsys.readouterr().err, "already has a running cluster",
                       f"pid {member.pid}", "cluster down")
        assert member.poll() is None
    finally:
        member.kill()
        member.wait()


def test_up_refuses_a_different_size_or_port(cluster: LocalCluster,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["cluster", "up", "--data-dir", str(cluster.directory), "--size", "5"]) == 1
    one_error_line(capsys.readouterr().err, "2-member cluster", str(cluster.base_port))


def test_up_refuses_a_busy_port(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = free_base_port(3)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", base + 3))
        busy.listen()
        assert main(["cluster", "up", "--data-dir", str(tmp_path), "--base-port",
                     str(base)]) == 1
    one_error_line(capsys.readouterr().err, f"port {base + 3}", "n2", "--base-port")
    assert not list(tmp_path.glob("*.pid"))


@pytest.mark.parametrize(("argv", "needle"), [
    (["--size", "0"], "--size=0"),
    (["--base-port", "65534"], "--base-port=65534"),
    (["--timeout", "0"], "--timeout=0"),
])
def test_up_bad_values(tmp_path: Path, argv: list[str], needle: str,
                       capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["cluster", "up", "--data-dir", str(tmp_path / "c"), *argv]) == 2
    one_error_line(capsys.readouterr().err, needle)
