"""``raftkv status | member | endpoint | move-leader | defrag | alarm | snapshot save``."""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import os
import sys
import time
from pathlib import Path
from typing import Any

from raftkv.cli._common import FMT, CliError, Parser
from raftkv.cli._conn import (
    Options,
    add_command,
    header_json,
    make_client,
    print_json,
    run,
    table,
)
from raftkv.errors import ConfigError, RaftKVError

__all__ = ["add_admin", "add_snapshot_save"]


def add_admin(sub: Any) -> None:
    """Add the cluster and maintenance subcommands."""
    add_command(sub, "status", help="a table of every member: role, term, indexes, size",
                description="Ask every member (from the member list) for its status and "
                            "print one row each: name, id, client URL, role (leader, "
                            "follower, learner), term, commit and applied index, DB size, "
                            "and how long ago the leader last heard from it.",
                example="  raftkv status --endpoints 127.0.0.1:23790\n  raftkv status -w json",
                func=_cmd_status)
    _add_member(sub)
    _add_endpoint(sub)
    p = add_command(sub, "move-leader", help="hand leadership to another member",
                    description="Transfer leadership to member ID (hex). The request must "
                                "reach the current leader: give every endpoint.",
                    example="  raftkv move-leader 8e9e05c52164694d "
                            "--endpoints 127.0.0.1:23790,127.0.0.1:23792",
                    func=_cmd_move_leader)
    p.add_argument("member_id", metavar="ID")
    p = add_command(sub, "defrag", help="reclaim the space of deleted data on members",
                    description="Compact the storage files of the member(s) named by "
                                "--endpoints (or every member with --cluster).",
                    example="  raftkv defrag --cluster", func=_cmd_defrag)
    p.add_argument("--cluster", action="store_true", help="every member of the cluster")
    p = add_command(sub, "alarm", help="list or disarm alarms (NOSPACE)",
                    description="list: print the active alarms; disarm: clear them all.",
                    example="  raftkv alarm list\n  raftkv alarm disarm", func=_cmd_alarm)
    p.add_argument("action", choices=("list", "disarm"))


def _member_id(text: str) -> int:
    try:
        return int(text, 16)
    except ValueError:
        raise ConfigError(f"member id {text!r} is not hex (as `raftkv member list` prints "
                          "it)") from None


def _strip(url: str) -> str:
    return url.split("://", 1)[-1]


def is_loopback(address: str) -> bool:
    """Whether ``host:port`` (or a URL) names this machine: 127.0.0.0/8, ::1, localhost."""
    host = _strip(address).rstrip("/").rpartition(":")[0].strip("[]")
    if host.lower() == "localhost" or host.lower().endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a name: it may resolve anywhere


def plaintext_warnings(opts: Options, addresses: list[str]) -> list[str]:
    """One warning per address reached without TLS that is not loopback."""
    if opts.secure:
        return []
    return [f"raftkv: warning: plaintext (no TLS) to {a}: traffic and credentials are "
            "readable on the network"
            for a in dict.fromkeys(_strip(x) for x in addresses if x) if not is_loopback(a)]


# -- status ---------------------------------------------------------------------------------

async def _member_status(opts: Options, url: str) -> Any:
    """The raw StatusResponse of the member at ``url``, or the error text."""
    from raftkv.wire.pb.etcdserverpb import rpc_pb2

    client = make_client(opts, [_strip(url)])
    try:
        return await asyncio.wait_for(
            client.transport.maintenance.Status(rpc_pb2.StatusRequest(),
                                                timeout=opts.command_timeout_s,
                                                metadata=await client.auth_metadata()),
            opts.command_timeout_s + 1)
    except Exception as exc:  # any failure means: cannot tell
        return f"unreachable ({type(exc).__name__})"
    finally:
        await client.close()


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return str(n)


def _role(st: Any, member: Any) -> str:
    if member.is_learner:
        return "learner"
    return "leader" if st.leader == st.header.member_id else "follower"


async def _status_rows(client: Any, opts: Options) -> list[dict[str, Any]]:
    members = await client.members()
    urls = [m.client_urls[0] if m.client_urls else "" for m in members]
    results = await asyncio.gather(*(_member_status(opts, u) if u else
                                     asyncio.sleep(0, "not started") for u in urls))
    if any(not u for u in urls):  # a member that has not published its client URLs yet
        asked = await asyncio.gather(*(_member_status(opts, e) for e in opts.endpoints))
        found = {st.header.member_id: (f"http://{e}", st)
                 for e, st in zip(opts.endpoints, asked, strict=True) if not isinstance(st, str)}
        for i, m in enumerate(members):
            if not urls[i] and m.id in found:
                urls[i], results[i] = found[m.id]
    contact: dict[int, int] = {}
    for st in results:
        if not isinstance(st, str) and st.leader == st.header.member_id:
            contact = {p.ID: p.last_contact_ms for p in st.raftkv_peers}
    rows = []
    for m, url, st in sorted(zip(members, urls, results, strict=True),
                             key=lambda x: (x[0].name or "~", x[0].id)):
        row: dict[str, Any] = {"name": m.name or "(unstarted)", "id": f"{m.id:x}",
                               "client_url": url}
        if isinstance(st, str):
            row.update(role=st, term=None, commit=None, applied=None, db_size=None,
                       last_contact_ms=None)
        else:
            ms = contact.get(m.id)
            row.update(role=_role(st, m), term=st.raftTerm, commit=st.raftIndex,
                       applied=st.raftAppliedIndex, db_size=st.dbSize,
                       last_contact_ms=None if ms is None or ms < 0 else ms,
                       errors=list(st.errors))
        rows.append(row)
    return rows


def _contact_text(row: dict[str, Any]) -> str:
    if row["role"] == "leader":
        return "-"
    ms = row["last_contact_ms"]
    return "" if ms is None else f"{ms} ms ago"


def _blank(value: object) -> object:
    return "" if value is None else value


def _cmd_status(ns: argparse.Namespace) -> int:
    async def body(client: Any, opts: Options) -> int:
        rows = await _status_rows(client, opts)
        for line in plaintext_warnings(opts, [opts.endpoints[0],
                                              *(r["client_url"] for r in rows)]):
            sys.stderr.write(line + "\n")
        if opts.write_out == "json":
            print_json(rows)
        else:
            table(["NAME", "ID", "CLIENT URL", "ROLE", "TERM", "COMMIT", "APPLIED", "DB SIZE",
                   "LAST CONTACT"],
                  [(r["name"], r["id"], r["client_url"], r["role"], _blank(r["term"]),
                    _blank(r["commit"]), _blank(r["applied"]),
                    "" if r["db_size"] is None else _size(r["db_size"]), _contact_text(r))
                   for r in rows])
        healthy = all(r["role"] in ("leader", "follower", "learner") for r in rows)
        return 0 if healthy else 1

    return run(ns, body)


# -- member ---------------------------------------------------------------------------------

def _add_member(sub: Any) -> None:
    member = sub.add_parser("member", help="list, add, remove, update or promote members",
                            formatter_class=FMT, description="Membership changes, one "
                            "member at a time (etcdctl member ...).",
                            epilog="example:\n  raftkv member list -w table\n"
                                   "  raftkv member add n4 --peer-urls http://10.0.0.4:2380 "
                                   "--learner\n")
    msub = member.add_subparsers(dest="member_command", metavar="COMMAND", required=True,
                                 parser_class=Parser)
    add_command(msub, "list", help="list the members", func=_cmd_member_list,
                description="One line per member: ID, status, name, peer URLs, client "
                            "URLs, is learner.", example="  raftkv member list -w table")
    p = add_command(msub, "add", help="add a member (start it with "
                    "--initial-cluster-state existing)", func=_cmd_member_add,
                    description="Add member NAME at --peer-urls, then print the flags to "
                                "start it with.",
                    example="  raftkv member add n4 --peer-urls http://127.0.0.1:2386 --learner")
    p.add_argument("name", metavar="NAME")
    p.add_argument("--peer-urls", required=True, metavar="URLS")
    p.add_argument("--learner", action="store_true", help="add as a non-voting learner")
    for verb, text in (("remove", "remove member ID"), ("promote", "make learner ID a voter")):
        p = add_command(msub, verb, help=text, func=_cmd_member_change,
                        description=text[0].upper() + text[1:] + " (hex id).",
                        example=f"  raftkv member {verb} 8e9e05c52164694d")
        p.add_argument("member_id", metavar="ID")
    p = add_command(msub, "update", help="change member ID's peer URLs",
                    func=_cmd_member_change, description="Change the peer URLs of ID.",
                    example="  raftkv member update 8e9e05c52164694d --peer-urls "
                            "http://10.0.0.9:2380")
    p.add_argument("member_id", metavar="ID")
    p.add_argument("--peer-urls", required=True, metavar="URLS")


def _print_members(members: Any, opts: Options, header: Any = None) -> None:
    if opts.write_out == "json":
        doc: dict[str, Any] = {"members": [
            {"ID": m.id, "name": m.name, "peerURLs": list(m.peer_urls),
             "clientURLs": list(m.client_urls), "isLearner": m.is_learner}
            for m in members]}
        if header is not None:
            doc["header"] = header_json(header)
        print_json(doc)
        return
    rows = [(f"{m.id:x}", "started" if m.name else "unstarted", m.name,
             ",".join(m.peer_urls), ",".join(m.client_urls), str(m.is_learner).lower())
            for m in members]
    if opts.write_out == "table":
        table(["ID", "STATUS", "NAME", "PEER ADDRS", "CLIENT ADDRS", "IS LEARNER"], rows)
    else:
        for r in rows:
            print(", ".join(r))


def _cmd_member_list(ns: argparse.Namespace) -> int:
    async def body(client: Any, opts: Options) -> int:
        _print_members(await client.members(), opts)
        return 0

    return run(ns, body)


def _cmd_member_add(ns: argparse.Namespace) -> int:
    urls = [u.strip() for u in ns.peer_urls.split(",") if u.strip()]

    async def body(client: Any, opts: Options) -> int:
        added, members = await client.member_add(urls, learner=ns.learner)
        kind = "learner" if ns.learner else "member"
        print(f"Member {added.id:x} added to cluster as a {kind}")
        cluster = [f"{ns.name if m.id == added.id else m.name}={u}"
                   for m in members for u in m.peer_urls if m.name or m.id == added.id]
        print(f"\nstart it with:\n  raftkv serve --name {ns.name} "
              f"--initial-cluster {','.join(cluster)} \\\n"
              f"    --initial-advertise-peer-urls {','.join(urls)} "
              "--initial-cluster-state existing")
        return 0

    return run(ns, body)


def _cmd_member_change(ns: argparse.Namespace) -> int:
    mid = _member_id(ns.member_id)
    verb = ns.member_command

    async def body(client: Any, opts: Options) -> int:
        if verb == "remove":
            await client.member_remove(mid)
            print(f"Member {mid:x} removed from cluster")
        elif verb == "promote":
            await client.member_promote(mid)
            print(f"Member {mid:x} promoted in cluster")
        else:
            urls = [u.strip() for u in ns.peer_urls.split(",") if u.strip()]
            await client.member_update(mid, urls)
            print(f"Member {mid:x} updated in cluster")
        return 0

    return run(ns, body)


# -- endpoint ------------------------------------------------------------------------------

def _add_endpoint(sub: Any) -> None:
    ep = sub.add_parser("endpoint", help="health, status or hash of each endpoint",
                        formatter_class=FMT, description="Ask each endpoint (or every "
                        "member with --cluster) on its own.",
                        epilog="example:\n  raftkv endpoint health --cluster\n")
    esub = ep.add_subparsers(dest="endpoint_command", metavar="COMMAND", required=True,
                             parser_class=Parser)
    for name, text in (("health", "is each endpoint able to serve a linearizable read"),
                       ("status", "each endpoint's raft status"),
                       ("hashkv", "each endpoint's key-space hash (equal on every member)")):
        p = add_command(esub, name, help=text, func=_cmd_endpoint,
                        description=text[0].upper() + text[1:] + ".",
                        example=f"  raftkv endpoint {name} --cluster -w table")
        p.add_argument("--cluster", action="store_true", help="every member's client URL")


async def _endpoints(client: Any, opts: Options, cluster: bool) -> list[str]:
    if not cluster:
        return list(opts.endpoints)
    return [_strip(m.client_urls[0]) for m in await client.members() if m.client_urls]


async def _health(opts: Options, endpoint: str) -> tuple[str, bool, str]:
    client = make_client(opts, [endpoint])
    start = time.monotonic()
    try:
        await client.get("health", timeout=opts.command_timeout_s)
        took = (time.monotonic() - start) * 1000
        return endpoint, True, f"successfully committed proposal: took = {took:.1f}ms"
    except RaftKVError as exc:
        return endpoint, False, f"failed to commit proposal: {exc}"
    finally:
        await client.close()


async def _hash(opts: Options, endpoint: str) -> tuple[str, int]:
    client = make_client(opts, [endpoint])
    try:
        h, _, _ = await client.hash_kv()
        return endpoint, h
    finally:
        await client.close()


def _cmd_endpoint(ns: argparse.Namespace) -> int:
    async def body(client: Any, opts: Options) -> int:
        eps = await _endpoints(client, opts, ns.cluster)
        if ns.endpoint_command == "health":
            results = await asyncio.gather(*(_health(opts, e) for e in eps))
            for ep, ok, text in results:
                print(f"{ep} is {'healthy' if ok else 'unhealthy'}: {text}")
            return 0 if all(ok for _, ok, _ in results) else 1
        if ns.endpoint_command == "hashkv":
            hashes = await asyncio.gather(*(_hash(opts, e) for e in eps))
            if opts.write_out == "table":
                table(["ENDPOINT", "HASH"], hashes)
            else:
                for ep, h in hashes:
                    print(f"{ep}, {h}")
            return 0
        return await _endpoint_status(eps, opts)

    return run(ns, body)


async def _endpoint_status(eps: list[str], opts: Options) -> int:
    results = await asyncio.gather(*(_member_status(opts, e) for e in eps))
    rows = []
    for ep, st in zip(eps, results, strict=True):
        if isinstance(st, str):
            rows.append((ep, "", "", "", "", "", "", "", st))
            continue
        rows.append((ep, f"{st.header.member_id:x}", st.version, _size(st.dbSize),
                     str(st.leader == st.header.member_id).lower(),
                     str(st.isLearner).lower(), st.raftTerm, st.raftIndex,
                     ", ".join(st.errors)))
    if opts.write_out == "table":
        table(["ENDPOINT", "ID", "VERSION", "DB SIZE", "IS LEADER", "IS LEARNER",
               "RAFT TERM", "RAFT INDEX", "ERRORS"], rows)
    else:
        for r in rows:
            print(", ".join(str(x) for x in r))
    return 0 if all(not isinstance(st, str) for st in results) else 1


# -- leader, defrag, alarms --------------------------------------------------------------------

def _cmd_move_leader(ns: argparse.Namespace) -> int:
    target = _member_id(ns.member_id)

    async def body(client: Any, opts: Options) -> int:
        for ep in opts.endpoints:  # MoveLeader must reach the leader
            st = await _member_status(opts, ep)
            if isinstance(st, str) or st.leader != st.header.member_id:
                continue
            leader_client = make_client(opts, [ep])
            try:
                await leader_client.move_leader(target)
            finally:
                await leader_client.close()
            print(f"Leadership transferred from {st.leader:x} to {target:x}")
            return 0
        raise CliError("no endpoint in --endpoints is the leader; give every member's "
                       "client address")

    return run(ns, body)


def _cmd_defrag(ns: argparse.Namespace) -> int:
    async def body(client: Any, opts: Options) -> int:
        code = 0
        for ep in await _endpoints(client, opts, ns.cluster):
            one = make_client(opts, [ep])
            try:
                await one.defragment()
                print(f"Finished defragmenting etcd member[{ep}]")
            except RaftKVError as exc:
                print(f"Failed to defragment etcd member[{ep}] ({exc})")
                code = 1
            finally:
                await one.close()
        return code

    return run(ns, body)


def _cmd_alarm(ns: argparse.Namespace) -> int:
    async def body(client: Any, opts: Options) -> int:
        alarms = await client.alarms()
        if ns.action == "disarm":
            await client.disarm()
        for member_id, alarm in alarms:
            print(f"memberID:{member_id} alarm:{alarm}")
        return 0

    return run(ns, body)


# -- snapshot save -----------------------------------------------------------------------------

def add_snapshot_save(ssub: Any) -> None:
    """Add ``raftkv snapshot save`` to the ``snapshot`` subcommands."""
    p = add_command(ssub, "save", help="stream a member's snapshot into a file",
                    description="Write a snapshot of one member's data (the first endpoint) "
                                "to FILE, in etcd's format (`etcdctl snapshot save` writes "
                                "the same). Restore it with `raftkv snapshot restore`.",
                    example="  raftkv snapshot save backup.db --endpoints 127.0.0.1:23790",
                    func=_cmd_snapshot_save)
    p.add_argument("file", metavar="FILE")


def add_snapshot_status(ssub: Any) -> None:
    """Add ``raftkv snapshot status`` (offline: reads the file only)."""
    p = ssub.add_parser("status", help="check a snapshot file and summarise it",
                        formatter_class=FMT,
                        description="Verify FILE's SHA-256 trailer and print its hash (the "
                                    "key space's, as `endpoint hashkv` prints it), revision, "
                                    "number of keys and size, as etcdctl snapshot status does.",
                        epilog="example:\n  raftkv snapshot status backup.db -w table\n")
    p.add_argument("file", metavar="FILE")
    p.add_argument("-w", "--write-out", choices=("simple", "json", "table"), default="simple")
    p.set_defaults(func=_cmd_snapshot_status)


def _cmd_snapshot_status(ns: argparse.Namespace) -> int:
    from raftkv.server.services.maintenance import hash_kv, unpack_snapshot
    from raftkv.state import MemoryBackend, StateMachine
    from raftkv.state.commands import Range
    from raftkv.state.errors import ApplyError

    path = Path(ns.file)
    try:
        blob = path.read_bytes()
        backend = MemoryBackend()
        sm = StateMachine(backend)
        sm.restore(unpack_snapshot(blob))
    except OSError as exc:
        raise CliError(f"cannot read snapshot file {path}: {exc.strerror}") from None
    except (ValueError, ApplyError) as exc:
        raise CliError(f"{path}: {exc}") from None
    revision = sm.revision
    keys = sm.range(Range(b"\0", b"\0", count_only=True)).count
    digest = hash_kv(backend, revision)
    if ns.write_out == "json":
        print_json({"hash": digest, "revision": revision, "totalKey": keys,
                    "totalSize": len(blob)})
    elif ns.write_out == "table":
        table(["HASH", "REVISION", "TOTAL KEYS", "TOTAL SIZE"],
              [(digest, revision, keys, _size(len(blob)))])
    else:
        print(f"{digest}, {revision}, {keys}, {_size(len(blob))}")
    return 0


def _cmd_snapshot_save(ns: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.progress import DownloadColumn, Progress, TransferSpeedColumn

    target = Path(ns.file)
    partial = target.with_name(target.name + ".part")

    async def body(client: Any, opts: Options) -> int:
        one = make_client(opts, [opts.endpoints[0]])
        total = 0
        try:
            with open(partial, "wb") as f, Progress(
                    *Progress.get_default_columns()[:1], DownloadColumn(),
                    TransferSpeedColumn(), transient=True, console=Console(stderr=True),
                    disable=not sys.stderr.isatty()) as bar:
                task = bar.add_task("snapshot", total=None)
                async for chunk in one.snapshot():
                    f.write(chunk)
                    total += len(chunk)
                    bar.update(task, completed=total)
                f.flush()
                os.fsync(f.fileno())
        finally:
            await one.close()
        os.replace(partial, target)
        print(f"Snapshot saved at {target} ({_size(total)})")
        return 0

    try:
        return run(ns, body)
    finally:
        partial.unlink(missing_ok=True)
