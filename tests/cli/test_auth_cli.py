"""``raftkv user | role | auth`` end to end against a real member, and etcdctl (3.4) for the
same commands against the same member: the same stdout. ``--user`` with and without the
password prompt, one-line errors, and no password in any output."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from raftkv.cli import main
from tests.integration.procs import ProcCluster, etcdctl

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(shutil.which("etcdctl") is None,
                                reason="etcdctl not installed (apt-get install etcd-client)")


@pytest.fixture(scope="module")
def member(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProcCluster]:
    c = ProcCluster(Path(tmp_path_factory.mktemp("auth-cli")), 1, flags=("--bcrypt-cost", "4"))
    c.start_all()
    try:
        c.leader()
        yield c
    finally:
        c.stop_all()


def rk(capsys: pytest.CaptureFixture[str], m: ProcCluster, *args: str) -> tuple[int, str, str]:
    """``raftkv ARGS`` in this process (fast): exit status, stdout, stderr."""
    capsys.readouterr()
    code = main(["--endpoints", m.endpoints, *args])
    out, err = capsys.readouterr()
    return code, out, err


def rk_proc(m: ProcCluster, *args: str, stdin: str = "",
            **env: str) -> subprocess.CompletedProcess[str]:
    """``raftkv ARGS`` as a user runs it, without a terminal (a prompt reads stdin)."""
    return subprocess.run([sys.executable, "-m", "raftkv", "--endpoints", m.endpoints, *args],
                          input=stdin, capture_output=True, text=True, timeout=60, cwd=REPO,
                          env={**os.environ, **env}, start_new_session=True, check=False)


def ectl(m: ProcCluster, *args: str, stdin: str | None = None) -> str:
    r = etcdctl(m.endpoints, *args, stdin=stdin)
    assert r.returncode == 0, (args, r.stderr)
    return r.stdout


def same(capsys: pytest.CaptureFixture[str], m: ProcCluster, args: str, *,
         swap: bool = True) -> None:
    """etcdctl ``args`` and raftkv ``args`` print the same; with ``swap``, raftkv's runs
    on the ``rk-`` twins of etcdctl's ``ectl-`` users and roles."""
    theirs = ectl(m, *args.split(" "))
    ours = args.replace("ectl-", "rk-") if swap else args
    code, out, err = rk(capsys, m, *ours.split(" "))
    assert code == 0, err
    assert (out.replace("rk-", "ectl-") if swap else out) == theirs, (args, out, theirs)


def test_user_and_role_commands_print_what_etcdctl_prints(
        capsys: pytest.CaptureFixture[str], member: ProcCluster) -> None:
    for args in ("user add ectl-u:pw", "user add ectl-v --new-user-password=pw -w json",
                 "role add ectl-r", "role add ectl-s -w json",
                 "role grant-permission ectl-r read /a/ --prefix",
                 "role grant-permission ectl-r readwrite k1",
                 "role grant-permission ectl-r write x z",
                 "role grant-permission ectl-r READ f --from-key",
                 "role grant-permission ectl-s write k2 -w json",
                 "user grant-role ectl-u ectl-r", "user get ectl-u", "user get ectl-u -w json",
                 "user get ectl-u --detail", "role get ectl-r", "role get ectl-r -w json",
                 "role revoke-permission ectl-r x z", "role revoke-permission ectl-r f --from-key",
                 "role revoke-permission ectl-r /a/ --prefix", "role revoke-permission ectl-r k1",
                 "user revoke-role ectl-u ectl-r", "user delete ectl-v", "role delete ectl-s"):
        same(capsys, member, args)
    for args in ("user list", "user list -w json", "role list", "role list -w json"):
        same(capsys, member, args, swap=False)
    # every key: etcdctl's [\0, <open ended>
    ectl(member, "role", "grant-permission", "ectl-r", "read", "", "--prefix")
    assert rk(capsys, member, "role", "grant-permission", "rk-r", "read", "", "--prefix")[0] == 0
    assert rk(capsys, member, "role", "get", "ectl-r")[1] == ectl(member, "role", "get", "ectl-r")
    assert "\t[\0, <open ended>\n" in rk(capsys, member, "role", "get", "rk-r")[1]
    code, _, err = rk(capsys, member, "role", "grant-permission", "rk-r", "rw", "k")
    assert (code, err) == (2, "raftkv: error: invalid permission type: rw (use read, write "
                              "or readwrite)\n")
    code, _, err = rk(capsys, member, "user", "list", "-w", "table")
    assert code == 2
    assert "-w table is not supported" in err


def test_auth_enable_status_disable_and_user_flags(
        capsys: pytest.CaptureFixture[str], member: ProcCluster) -> None:
    assert rk(capsys, member, "user", "add", "root:rootpw")[0] == 0  # no root role yet
    code, out, err = rk(capsys, member, "auth", "enable")  # etcdctl's automatic step
    assert (code, out) == (0, "Authentication Enabled\n"), err
    try:
        same(capsys, member, "--user root:rootpw user get root", swap=False)  # Roles: root
        out = rk(capsys, member, "--user", "root:rootpw", "auth", "status")[1]
        assert re.fullmatch(r"Authentication Status: true\nAuthRevision: \d+\n", out)
        assert '"enabled":true,"authRevision":' in rk(
            capsys, member, "--user", "root:rootpw", "auth", "status", "-w", "json")[1]
        _user_flags(member)
        assert rk(capsys, member, "--user", "root:rootpw", "auth", "disable")[1] == \
            "Authentication Disabled\n"
        assert rk(capsys, member, "auth", "status")[1].startswith(
            "Authentication Status: false\n")
        assert ectl(member, "auth", "enable") == "Authentication Enabled\n"
        assert ectl(member, "--user", "root:rootpw", "auth", "disable") == \
            "Authentication Disabled\n"
    finally:
        rk(capsys, member, "--user", "root:rootpw", "auth", "disable")


def _user_flags(m: ProcCluster) -> None:
    """--user NAME:PASSWORD, NAME with the prompt, --password, the variables; wrong ones."""
    theirs = etcdctl(m.endpoints, "--user", "root", "user", "list", stdin="rootpw\n").stdout
    prompted = rk_proc(m, "--user", "root", "user", "list", stdin="rootpw\n")
    assert prompted.returncode == 0, prompted.stderr
    assert prompted.stdout == theirs.removeprefix("Password: \n")  # ours is on stderr
    assert prompted.stderr == "Password: \n"
    assert rk_proc(m, "user", "list", RAFTKV_USER="root", RAFTKV_PASSWORD="rootpw").stdout \
        == prompted.stdout
    added = rk_proc(m, "--user", "root:rootpw", "user", "add", "carol", stdin="c pw\nc pw\n")
    assert added.stdout == "User carol created\n", added.stderr
    assert "Password of carol: " in added.stderr
    assert rk_proc(m, "user", "get", "carol", ETCDCTL_USER="carol:c pw").stdout == \
        "User: carol\nRoles:\n"
    for args, stdin, message in (
            (("--user", "root:s3cret", "user", "list"), "",
             "etcdserver: authentication failed, invalid user ID or password"),
            (("--user", "root:rootpw", "user", "add", "dave"), "d1\nd2\n",
             "given passwords are different"),
            (("user", "list"), "", "etcdserver: user name is empty (authentication is on: "
                                   "give --user NAME[:PASSWORD] or $RAFTKV_USER)"),
            (("--user", "root:x", "--password", "s3cret", "user", "list"), "",
             "--user must not include a password (NAME:PASSWORD) when --password is "
             "given; use --user NAME"),
            (("serve", "--user", "root:s3cret"), "", "unrecognized arguments: --user "
                                                     "root:*** (see 'raftkv --help')")):
        r = rk_proc(m, *args, stdin=stdin)
        assert r.returncode in (1, 2), args
        last = r.stderr.splitlines()[-1]
        assert last == f"raftkv: error: {message}", r.stderr
        assert "Traceback" not in r.stderr
        assert "s3cret" not in r.stdout + r.stderr
        assert "d1" not in r.stdout + r.stderr


def test_help_names_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    for group, verbs in (("user", "add get list delete passwd grant-role revoke-role"),
                         ("role", "add get list delete grant-permission revoke-permission"),
                         ("auth", "enable disable status")):
        assert main([group, "--help"]) == 0
        out = capsys.readouterr().out
        assert all(v in out for v in verbs.split()), out
    assert main(["user", "add", "--help"]) == 0
    out = capsys.readouterr().out
    assert "--interactive" in out
    assert "--new-user-password" in out
    assert "--user NAME[:PASSWORD]" in out
