"""The ``raftkv`` command: wiring only.

Each group of subcommands lives in its own module and adds itself to the parser here.
Usage errors print one line, ``raftkv: error: ...``, and exit 2; runtime failures print one
line and exit 1; neither prints a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import cast

import grpc

from raftkv.cli import admin, auth, certs, kv, local, recipes, serve
from raftkv.cli._common import FMT, PROG, CliError, Parser, fail
from raftkv.cli._conn import global_flags
from raftkv.errors import ConfigError, RaftKVError

__all__ = ["build_parser", "main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``raftkv`` command line and return its exit status."""
    parser = build_parser()
    args = list(sys.argv[1:] if argv is None else argv)
    # everything after "--" is a command to run (raftkv lock NAME -- CMD ...); argparse
    # mishandles "--" inside subcommands, so it is split off here
    rest: list[str] = []
    if "--" in args:
        i = args.index("--")
        args, rest = args[:i], args[i + 1:]
    try:
        ns = parser.parse_args(args)
        if rest:
            _take_rest(parser, ns, rest)
    except SystemExit as exc:  # --help, --version and usage errors
        return exc.code if isinstance(exc.code, int) else 1
    func = cast(Callable[[argparse.Namespace], int], ns.func)
    try:
        return func(ns)
    except ConfigError as exc:
        return fail(str(exc), 2)
    except (CliError, RaftKVError) as exc:
        return fail(str(exc), 1)
    except grpc.RpcError as exc:  # a raw stub call that escaped the client's mapping
        from raftkv.client._errors import from_rpc_error

        return fail(str(from_rpc_error(exc)), 1)
    except OSError as exc:  # e.g. a directory that cannot be created or written
        where = f" ({exc.filename})" if exc.filename else ""
        return fail(f"{exc.strerror or exc}{where}", 1)
    except KeyboardInterrupt:
        return 130


def _take_rest(parser: Parser, ns: argparse.Namespace, rest: list[str]) -> None:
    """Words after ``--``: the command of ``lock``, or (as in etcdctl) values that start
    with a dash for the trailing positionals left empty (``raftkv put k -- -v``)."""
    if hasattr(ns, "command_args"):
        ns.command_args = [*ns.command_args, *rest]
        return
    empty = [d for d in ("value", "range_end") if hasattr(ns, d) and getattr(ns, d) is None]
    if len(rest) > len(empty):
        parser.error(f"unrecognized arguments: -- {' '.join(rest)}")
    for dest, word in zip(empty, rest, strict=False):
        setattr(ns, dest, word)


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("raftkv")
    except Exception:  # not installed: running from a source tree
        import raftkv

        return raftkv.__version__


def build_parser() -> Parser:
    """The ``raftkv`` argument parser with every subcommand."""
    parser = Parser(prog=PROG, formatter_class=FMT, parents=[global_flags()],
                    description="raftkv: a Raft-replicated key-value store that speaks "
                                "the etcd v3 API.",
                    epilog="example:\n  raftkv cluster up --size 3 --data-dir /tmp/rk\n"
                           "  raftkv --endpoints 127.0.0.1:23790 put greeting hello\n"
                           "  raftkv get greeting -w json\n  raftkv status\n"
                           "  raftkv --user root auth status\n")
    parser.add_argument("--version", action="version", version=f"{PROG} {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True,
                                parser_class=Parser)
    kv.add_kv(sub)
    recipes.add_recipes(sub)
    admin.add_admin(sub)
    auth.add_auth(sub)
    _add_snapshot(sub)
    local.add_cluster(sub)
    certs.add_certs(sub)
    serve.add_serve(sub)
    _add_bench(sub)
    version = sub.add_parser("version", help="print the version", formatter_class=FMT,
                             description="Print raftkv's version.",
                             epilog="example:\n  raftkv version\n")
    version.set_defaults(func=_cmd_version)
    return parser


def _add_snapshot(sub: argparse._SubParsersAction[Parser]) -> None:
    snap = sub.add_parser("snapshot", help="save a member's snapshot, or restore one into a "
                          "new cluster", formatter_class=FMT,
                          description="Disaster recovery: save a snapshot of the data, "
                                      "restore it into the data dirs of a new cluster.",
                          epilog="example:\n  raftkv snapshot save backup.db\n"
                                 "  raftkv snapshot restore backup.db --name n1 ...\n")
    ssub = snap.add_subparsers(dest="snapshot_command", metavar="COMMAND", required=True,
                               parser_class=Parser)
    admin.add_snapshot_save(ssub)
    admin.add_snapshot_status(ssub)
    serve.add_snapshot_restore(ssub)


def _add_bench(sub: argparse._SubParsersAction[Parser]) -> None:
    from raftkv.bench.cli import add_parser

    add_parser(sub)


def _cmd_version(ns: argparse.Namespace) -> int:
    print(f"{PROG} {_version()}")
    return 0
