"""``raftkv get | put | del | txn | compaction | watch``: etcdctl's key-value commands."""

from __future__ import annotations

import argparse
import asyncio
import shlex
import sys
from typing import Any

from raftkv.cli._common import int_flag
from raftkv.cli._conn import (
    Options,
    add_command,
    header_json,
    kv_json,
    print_json,
    run,
    table,
    text,
)
from raftkv.errors import ConfigError

__all__ = ["add_kv"]

_SORT_TARGETS = {"KEY": "key", "CREATE": "create", "MODIFY": "mod", "VALUE": "value",
                 "VERSION": "version"}


def add_kv(sub: Any) -> None:
    """Add the key-value subcommands."""
    _add_get(sub)
    _add_put(sub)
    _add_del(sub)
    _add_txn(sub)
    p = add_command(sub, "compaction", help="compact the key history up to a revision",
                    description="Discard every revision of every key older than REVISION "
                                "(reads and watches before it then fail as compacted).",
                    example="  raftkv compaction 1234\n  raftkv compaction 1234 --physical",
                    func=_cmd_compaction)
    p.add_argument("revision", type=int_flag, metavar="REVISION")
    p.add_argument("--physical", action="store_true",
                   help="return only once the space is reclaimed on the member")
    _add_watch(sub)


def _range_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("key", metavar="KEY")
    p.add_argument("range_end", nargs="?", metavar="RANGE_END",
                   help="end of the range [KEY, RANGE_END)")
    p.add_argument("--prefix", action="store_true", help="every key starting with KEY")
    p.add_argument("--from-key", action="store_true", help="every key >= KEY")


def _range_end(ns: argparse.Namespace) -> tuple[bytes, bytes | None, bool]:
    if sum(bool(x) for x in (ns.range_end, ns.prefix, ns.from_key)) > 1:
        raise ConfigError("give at most one of RANGE_END, --prefix and --from-key")
    key = ns.key.encode()
    if ns.from_key:
        return key or b"\0", b"\0", False
    return key, ns.range_end.encode() if ns.range_end else None, ns.prefix


# -- get -----------------------------------------------------------------------------------

def _add_get(sub: Any) -> None:
    p = add_command(sub, "get", help="read a key or a range of keys",
                    description="Read KEY, the range [KEY, RANGE_END), a prefix or every key "
                                "from KEY on. Linearizable unless --consistency=s.",
                    example="  raftkv get greeting\n  raftkv get app/ --prefix --keys-only\n"
                            "  raftkv get '' --from-key --limit 10 -w json",
                    func=_cmd_get)
    _range_args(p)
    p.add_argument("--limit", type=int_flag, default=0, help="at most N keys")
    p.add_argument("--rev", type=int_flag, default=0, help="read at this revision")
    p.add_argument("--sort-by", choices=sorted(_SORT_TARGETS), default=None,
                   help="sort target")
    p.add_argument("--order", choices=("ASCEND", "DESCEND"), default=None)
    p.add_argument("--keys-only", action="store_true")
    p.add_argument("--count-only", action="store_true")
    p.add_argument("--print-value-only", action="store_true")
    p.add_argument("--consistency", choices=("l", "s"), default="l",
                   help="l: linearizable (default), s: serializable (this member's view)")


def _cmd_get(ns: argparse.Namespace) -> int:
    key, end, prefix = _range_end(ns)
    order = ns.order.lower() if ns.order else ("ascend" if ns.sort_by else None)

    async def body(client: Any, opts: Options) -> int:
        r = await client.range(key, end, prefix=prefix, limit=ns.limit, revision=ns.rev,
                               sort_order=order,
                               sort_target=_SORT_TARGETS[ns.sort_by or "KEY"],
                               serializable=ns.consistency == "s", keys_only=ns.keys_only,
                               count_only=ns.count_only)
        if opts.write_out == "json":
            doc: dict[str, Any] = {"header": header_json(r.header), "count": r.count}
            if r.kvs:
                doc["kvs"] = [kv_json(kv) for kv in r.kvs]
            if r.more:
                doc["more"] = True
            print_json(doc)
        elif opts.write_out == "table":
            table(["KEY", "VALUE", "CREATE", "MOD", "VERSION", "LEASE"],
                  [(text(kv.key), text(kv.value), kv.create_revision, kv.mod_revision,
                    kv.version, f"{kv.lease:x}" if kv.lease else "") for kv in r.kvs])
        elif ns.count_only:
            print(r.count)
        else:
            _print_kvs(r.kvs, keys_only=ns.keys_only, value_only=ns.print_value_only)
        return 0

    return run(ns, body)


def _print_kvs(kvs: Any, *, keys_only: bool = False, value_only: bool = False) -> None:
    out = sys.stdout
    for kv in kvs:
        if not value_only:
            out.write(text(kv.key) + "\n")
        if not keys_only:
            out.write(text(kv.value) + "\n")


# -- put / del --------------------------------------------------------------------------

def _add_put(sub: Any) -> None:
    p = add_command(sub, "put", help="set a key", func=_cmd_put,
                    description="Set KEY to VALUE (read from stdin when VALUE is omitted).",
                    example="  raftkv put greeting hello\n"
                            "  raftkv put session/a up --lease 694d7a6b2c1e4f01\n"
                            "  echo -n hello | raftkv put greeting")
    p.add_argument("key", metavar="KEY")
    p.add_argument("value", nargs="?", metavar="VALUE")
    p.add_argument("--lease", default="0", metavar="ID", help="attach to this lease (hex)")
    p.add_argument("--prev-kv", action="store_true", help="print the previous value")
    p.add_argument("--ignore-value", action="store_true", help="keep the current value")
    p.add_argument("--ignore-lease", action="store_true", help="keep the current lease")


def lease_id(text_: str, flag: str = "--lease") -> int:
    try:
        return int(text_, 16)
    except ValueError:
        raise ConfigError(f"{flag}={text_!r} is not a lease id (hex, as `raftkv lease grant` "
                          "prints it)") from None


def _cmd_put(ns: argparse.Namespace) -> int:
    lease = lease_id(ns.lease)
    if ns.value is None and not ns.ignore_value:
        value = sys.stdin.buffer.read()
    else:
        value = (ns.value or "").encode()

    async def body(client: Any, opts: Options) -> int:
        r = await client.put(ns.key, value, lease=lease, prev_kv=ns.prev_kv,
                             ignore_value=ns.ignore_value, ignore_lease=ns.ignore_lease)
        if opts.write_out == "json":
            doc: dict[str, Any] = {"header": header_json(r.header)}
            if r.prev_kv is not None:
                doc["prev_kv"] = kv_json(r.prev_kv)
            print_json(doc)
            return 0
        print("OK")
        if r.prev_kv is not None:
            _print_kvs([r.prev_kv])
        return 0

    return run(ns, body)


def _add_del(sub: Any) -> None:
    p = add_command(sub, "del", help="delete a key or a range of keys", func=_cmd_del,
                    description="Delete KEY, the range [KEY, RANGE_END), a prefix or every "
                                "key from KEY on; print how many keys were deleted.",
                    example="  raftkv del greeting\n  raftkv del app/ --prefix --prev-kv")
    _range_args(p)
    p.add_argument("--prev-kv", action="store_true", help="print the deleted pairs")


def _cmd_del(ns: argparse.Namespace) -> int:
    from raftkv.client.types import prefix_end

    key, end, prefix = _range_end(ns)
    if prefix:
        end = prefix_end(key)

    async def body(client: Any, opts: Options) -> int:
        r = await client.delete_range(key, end, prev_kv=ns.prev_kv)
        if opts.write_out == "json":
            doc: dict[str, Any] = {"header": header_json(r.header), "deleted": r.deleted}
            if r.prev_kvs:
                doc["prev_kvs"] = [kv_json(kv) for kv in r.prev_kvs]
            print_json(doc)
            return 0
        print(r.deleted)
        _print_kvs(r.prev_kvs)
        return 0

    return run(ns, body)


def _cmd_compaction(ns: argparse.Namespace) -> int:
    async def body(client: Any, opts: Options) -> int:
        h = await client.compact(ns.revision, physical=ns.physical)
        if opts.write_out == "json":
            print_json({"header": header_json(h)})
        else:
            print(f"compacted revision {ns.revision}")
        return 0

    return run(ns, body)


# -- txn -----------------------------------------------------------------------------------

TXN_HELP = """\
The transaction is read from stdin in etcdctl's format, three blocks separated by empty
lines: compares, then the ops to run if every compare holds, then the ops to run if not.
  compares:  value("k") = "v"   version("k") > "2"   create("k") = "0"   mod("k") < "9"
             lease("k") = "694d7a6b2c1e4f01"          (relations: = != > <)
  ops:       put k v     get k [range_end]     del k [range_end]   (shell-style quoting)
"""


def _add_txn(sub: Any) -> None:
    p = add_command(sub, "txn", help="run a transaction read from stdin", func=_cmd_txn,
                    description="Run one transaction: if every compare holds, the success "
                                "ops, otherwise the failure ops. Prints SUCCESS or FAILURE "
                                "and each op's result.\n\n" + TXN_HELP,
                    example="  printf '%s\\n' 'create(\"lock\") = \"0\"' '' 'put lock me' '' \\\n"
                            "      'get lock' | raftkv txn")
    p.add_argument("-i", "--interactive", action="store_true",
                   help="prompt for each block (compares, success, failure)")


def _read_blocks(interactive: bool) -> list[list[str]]:
    blocks: list[list[str]] = [[], [], []]
    prompts = ("compares:", "success requests (get, put, del):",
               "failure requests (get, put, del):")
    for i in range(3):
        if interactive:
            sys.stderr.write(prompts[i] + "\n")
        for line in sys.stdin:
            line = line.strip()
            if not line:
                break
            blocks[i].append(line)
    return blocks


def _compare(line: str) -> Any:
    from raftkv.client.txn import Compare

    targets = {"value": None, "version": Compare.version, "create": Compare.create_revision,
               "mod": Compare.mod_revision, "lease": Compare.lease}
    name, _, rest = line.partition("(")
    key_part, _, relation = rest.partition(")")
    try:
        key = shlex.split(key_part)[0]
        op, operand = shlex.split(relation)
    except (IndexError, ValueError):
        raise ConfigError(f"txn: bad compare {line!r}; write e.g. value(\"k\") = \"v\"") from None
    target = name.strip()
    if target not in targets:
        raise ConfigError(f"txn: unknown compare target {target!r} in {line!r}; use "
                          "value, version, create, mod or lease")
    if op not in ("=", "!=", ">", "<"):
        raise ConfigError(f"txn: unknown relation {op!r} in {line!r}; use = != > <")
    if target == "value":
        return Compare.value(key, op, operand.encode())
    try:
        number = int(operand, 16) if target == "lease" else int(operand)
    except ValueError:
        raise ConfigError(f"txn: {target} compares with a number, got {operand!r}") from None
    return targets[target](key).relation(op, number)  # type: ignore[misc]


def _op(line: str) -> Any:
    from raftkv.client.txn import Op

    try:
        words = shlex.split(line)
    except ValueError as exc:
        raise ConfigError(f"txn: cannot read {line!r}: {exc}") from None
    verb, args = (words[0].lower(), words[1:]) if words else ("", [])
    if verb == "put" and len(args) == 2:
        return Op.put(args[0], args[1].encode())
    if verb == "get" and 1 <= len(args) <= 2:
        return Op.get(args[0], range_end=args[1] if len(args) == 2 else None)
    if verb in ("del", "delete") and 1 <= len(args) <= 2:
        return Op.delete(args[0], range_end=args[1] if len(args) == 2 else None)
    raise ConfigError(f"txn: bad request {line!r}; use put KEY VALUE, get KEY [END] or "
                      "del KEY [END]")


def _cmd_txn(ns: argparse.Namespace) -> int:
    compares, success, failure = _read_blocks(ns.interactive)
    cmps = [_compare(c) for c in compares]
    then, otherwise = [_op(x) for x in success], [_op(x) for x in failure]

    async def body(client: Any, opts: Options) -> int:
        r = await client.txn().if_(*cmps).then(*then).otherwise(*otherwise).commit()
        if opts.write_out == "json":
            print_json({"header": header_json(r.header), "succeeded": r.succeeded,
                        "responses": [_response_json(x) for x in r.responses]})
            return 0
        print("SUCCESS" if r.succeeded else "FAILURE")
        for resp in r.responses:
            print()
            _print_response(resp)
        return 0

    return run(ns, body)


def _print_response(resp: Any) -> None:
    kind = type(resp).__name__
    if kind == "PutResponse":
        print("OK")
    elif kind == "DeleteResponse":
        print(resp.deleted)
    elif kind == "RangeResponse":
        _print_kvs(resp.kvs)
    else:
        print("SUCCESS" if resp.succeeded else "FAILURE")


def _response_json(resp: Any) -> dict[str, Any]:
    kind = type(resp).__name__
    doc: dict[str, Any] = {"header": header_json(resp.header)}
    if kind == "RangeResponse":
        doc.update(kvs=[kv_json(kv) for kv in resp.kvs], count=resp.count)
        return {"response_range": doc}
    if kind == "PutResponse":
        return {"response_put": doc}
    if kind == "DeleteResponse":
        doc["deleted"] = resp.deleted
        return {"response_delete_range": doc}
    doc["succeeded"] = resp.succeeded
    return {"response_txn": doc}


# -- watch ---------------------------------------------------------------------------------

def _add_watch(sub: Any) -> None:
    p = add_command(sub, "watch", help="print changes to a key or range until interrupted",
                    func=_cmd_watch,
                    description="Print every change to KEY (or the range / prefix) as it "
                                "happens: the event type, the key and the value. Survives a "
                                "member or leader loss (resumes after the last revision "
                                "printed). Stops on Ctrl-C, or after --max-events.",
                    example="  raftkv watch greeting\n  raftkv watch app/ --prefix --rev 1 "
                            "--prev-kv")
    _range_args(p)
    p.add_argument("--rev", type=int_flag, default=0,
                   help="start from this revision (history first)")
    p.add_argument("--prev-kv", action="store_true", help="print the previous value too")
    p.add_argument("--max-events", type=int_flag, default=0, metavar="N",
                   help="exit after N events (default: run until interrupted)")


def _cmd_watch(ns: argparse.Namespace) -> int:
    key, end, prefix = _range_end(ns)

    async def body(client: Any, opts: Options) -> int:
        seen = 0
        async with client.watch(key, end, prefix=prefix, start_revision=ns.rev,
                                prev_kv=ns.prev_kv) as events:
            async for ev in events:
                _print_event(ev, opts.write_out, ns.prev_kv)
                seen += 1
                if ns.max_events and seen >= ns.max_events:
                    break
        return 0

    try:
        return run(ns, body)
    except (KeyboardInterrupt, asyncio.CancelledError):
        return 0


def _print_event(ev: Any, write_out: str, prev_kv: bool) -> None:
    kind = "PUT" if ev.type.name == "PUT" else "DELETE"
    if write_out == "json":
        doc: dict[str, Any] = {"type": kind, "kv": kv_json(ev.kv)}
        if ev.prev_kv is not None:
            doc["prev_kv"] = kv_json(ev.prev_kv)
        print_json(doc)
    else:
        print(kind)
        if prev_kv and ev.prev_kv is not None:
            _print_kvs([ev.prev_kv])
        _print_kvs([ev.kv], keys_only=kind == "DELETE")
    sys.stdout.flush()
