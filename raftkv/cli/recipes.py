"""``raftkv lease | lock | elect``: leases, locks with fencing tokens, and elections."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from typing import Any

from raftkv.cli._common import FMT, CliError, Parser, int_flag
from raftkv.cli._conn import Options, add_command, duration, print_json, run, text
from raftkv.cli.kv import lease_id

__all__ = ["add_recipes"]


def add_recipes(sub: Any) -> None:
    """Add the lease, lock and elect subcommands."""
    _add_lease(sub)
    p = add_command(sub, "lock", help="take a distributed lock (with a fencing token)",
                    func=_cmd_lock,
                    description="Wait for lock NAME, print its key and its fencing token "
                                "(the key's create revision: it only ever grows), then hold "
                                "it until Ctrl-C -- or, given COMMAND, run it while holding "
                                "the lock and release when it exits. COMMAND sees "
                                "RAFTKV_LOCK_KEY and RAFTKV_FENCING_TOKEN (and etcdctl's "
                                "ETCD_LOCK_KEY / ETCD_LOCK_REV); a write it makes is safe "
                                "only if guarded by the token (see docs/client.md).",
                    example="  raftkv lock jobs/nightly\n"
                            "  raftkv lock jobs/nightly -- sh -c 'echo token "
                            "$RAFTKV_FENCING_TOKEN'")
    p.add_argument("name", metavar="NAME")
    p.add_argument("command_args", nargs="*", metavar="COMMAND",
                   help="run this while holding the lock (put it after --)")
    p.add_argument("--ttl", type=int_flag, default=10,
                   help="lease TTL in seconds: how long the lock outlives a dead holder")
    p.add_argument("--wait-timeout", type=duration, default=None, metavar="DURATION",
                   help="give up if the lock is not ours within DURATION (default: wait)")
    p = add_command(sub, "elect", help="campaign in an election, or watch its leader",
                    func=_cmd_elect,
                    description="Campaign in election NAME with PROPOSAL and stay leader "
                                "until Ctrl-C; with --listen, print every leader (key, value) "
                                "as it changes instead.",
                    example="  raftkv elect workers me-1\n  raftkv elect workers --listen")
    p.add_argument("name", metavar="NAME")
    p.add_argument("proposal", nargs="?", metavar="PROPOSAL")
    p.add_argument("-l", "--listen", action="store_true", help="observe the election")
    p.add_argument("--ttl", type=int_flag, default=10, help="session lease TTL in seconds")


# -- lease -------------------------------------------------------------------------------

def _add_lease(sub: Any) -> None:
    lease = sub.add_parser("lease", help="grant, revoke, inspect or keep alive leases",
                           formatter_class=FMT, description="Leases: keys attached to a "
                           "lease are deleted when it expires or is revoked.",
                           epilog="example:\n  raftkv lease grant 30\n"
                                  "  raftkv put session/a up --lease <ID>\n")
    lsub = lease.add_subparsers(dest="lease_command", metavar="COMMAND", required=True,
                                parser_class=Parser)
    p = add_command(lsub, "grant", help="grant a lease of TTL seconds", func=_cmd_lease,
                    description="Grant a lease; print its id (hex).",
                    example="  raftkv lease grant 30")
    p.add_argument("ttl", type=int_flag, metavar="TTL")
    p = add_command(lsub, "revoke", help="revoke a lease (its keys are deleted)",
                    func=_cmd_lease, description="Revoke lease ID (hex).",
                    example="  raftkv lease revoke 694d7a6b2c1e4f01")
    p.add_argument("id", metavar="ID")
    p = add_command(lsub, "timetolive", help="remaining TTL of a lease", func=_cmd_lease,
                    description="Print lease ID's granted and remaining TTL.",
                    example="  raftkv lease timetolive 694d7a6b2c1e4f01 --keys")
    p.add_argument("id", metavar="ID")
    p.add_argument("--keys", action="store_true", help="also list the attached keys")
    add_command(lsub, "list", help="every lease id", func=_cmd_lease,
                description="List every lease.", example="  raftkv lease list")
    p = add_command(lsub, "keep-alive", help="keep a lease alive until Ctrl-C",
                    func=_cmd_lease, description="Renew lease ID every TTL/3 seconds and "
                    "print each renewal; --once renews once.",
                    example="  raftkv lease keep-alive 694d7a6b2c1e4f01 --once")
    p.add_argument("id", metavar="ID")
    p.add_argument("--once", action="store_true")


def _cmd_lease(ns: argparse.Namespace) -> int:
    verb = ns.lease_command

    async def body(client: Any, opts: Options) -> int:
        if verb == "grant":
            g = await client.grant(ns.ttl)
            _out(opts, {"ID": g.id, "TTL": g.ttl}, f"lease {g.id:x} granted with TTL({g.ttl}s)")
        elif verb == "revoke":
            lid = lease_id(ns.id, "ID")
            await client.revoke(lid)
            _out(opts, {"ID": lid}, f"lease {lid:x} revoked")
        elif verb == "timetolive":
            return await _time_to_live(client, opts, lease_id(ns.id, "ID"), ns.keys)
        elif verb == "list":
            ids = await client.leases()
            _out(opts, {"leases": [{"ID": i} for i in ids]},
                 "\n".join([f"found {len(ids)} leases", *(f"{i:x}" for i in ids)]))
        else:
            return await _keep_alive(client, opts, lease_id(ns.id, "ID"), ns.once)
        return 0

    return _interruptible(ns, body)


def _out(opts: Options, doc: dict[str, Any], line: str) -> None:
    if opts.write_out == "json":
        print_json(doc)
    else:
        print(line)


async def _time_to_live(client: Any, opts: Options, lid: int, keys: bool) -> int:
    t = await client.time_to_live(lid, keys=keys)
    if t.ttl == -1:
        _out(opts, {"ID": lid, "TTL": -1}, f"lease {lid:x} already expired")
        return 0
    line = f"lease {lid:x} granted with TTL({t.granted_ttl}s), remaining({t.ttl}s)"
    if keys:
        line += ", attached keys([" + " ".join(text(k) for k in t.keys) + "])"
    _out(opts, {"ID": lid, "TTL": t.ttl, "grantedTTL": t.granted_ttl,
                "keys": [text(k) for k in t.keys]}, line)
    return 0


async def _keep_alive(client: Any, opts: Options, lid: int, once: bool) -> int:
    from raftkv.errors import LeaseNotFoundError

    while True:
        ttl = await client.keep_alive_once(lid)
        if ttl <= 0:
            raise LeaseNotFoundError(f"lease {lid:x} expired or revoked")
        _out(opts, {"ID": lid, "TTL": ttl}, f"lease {lid:x} keepalived with TTL({ttl})")
        sys.stdout.flush()
        if once:
            return 0
        await asyncio.sleep(max(0.5, ttl / 3))


def _interruptible(ns: argparse.Namespace, body: Any) -> int:
    try:
        return run(ns, body)
    except KeyboardInterrupt:
        return 130


# -- lock / elect -----------------------------------------------------------------------------

def _cmd_lock(ns: argparse.Namespace) -> int:
    command = list(ns.command_args)

    async def body(client: Any, opts: Options) -> int:
        async with client.lock(ns.name, ttl=ns.ttl, timeout=ns.wait_timeout) as lock:
            if opts.write_out == "json":
                print_json({"key": text(lock.key), "fencing_token": lock.fencing_token})
            else:
                print(text(lock.key))
                print(f"fencing token: {lock.fencing_token}")
            sys.stdout.flush()
            if not command:
                await lock.lease.wait_lost()
                lock.check()
                return 1
            env = dict(os.environ, RAFTKV_LOCK_KEY=text(lock.key),
                       RAFTKV_FENCING_TOKEN=str(lock.fencing_token),
                       ETCD_LOCK_KEY=text(lock.key), ETCD_LOCK_REV=str(lock.fencing_token))
            proc = await asyncio.create_subprocess_exec(*command, env=env)
            return await proc.wait()

    from raftkv.errors import DeadlineExceededError

    try:
        return _interruptible(ns, body)
    except DeadlineExceededError:
        raise CliError(f"lock {ns.name}: not acquired within --wait-timeout "
                       f"({ns.wait_timeout:g}s); another client holds it") from None
    except FileNotFoundError as exc:
        raise SystemExit(f"raftkv: error: cannot run {command[0]!r}: {exc.strerror}") from None


def _cmd_elect(ns: argparse.Namespace) -> int:
    if not ns.listen and ns.proposal is None:
        from raftkv.errors import ConfigError

        raise ConfigError("elect: give a PROPOSAL to campaign with, or --listen to observe")

    async def body(client: Any, opts: Options) -> int:
        election = client.election(ns.name, ttl=ns.ttl)
        if ns.listen:
            async for kv in election.observe():
                print(text(kv.key))
                print(text(kv.value))
                sys.stdout.flush()
            return 0
        async with election:
            await election.campaign(ns.proposal)
            print(text(election.leader_key))
            print(ns.proposal)
            sys.stdout.flush()
            await asyncio.Event().wait()  # lead until interrupted
        return 0

    return _interruptible(ns, body)

