"""``raftkv user | role | auth``: etcdctl's authentication commands, with its output.

Output is etcdctl 3.4's byte for byte (``auth status``: etcdctl 3.5's, 3.4 has none):
``simple`` lines, or with ``-w json`` the response as etcd's JSON (compact, zero fields
left out, keys base64); ``-w table`` is refused, as etcdctl does. ``auth enable`` and
``auth disable`` print their line whatever ``-w`` says (etcdctl too). A password is read
from the flags, a prompt or stdin and never printed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from raftkv.cli._common import FMT, Parser
from raftkv.cli._conn import (
    Options,
    add_command,
    ask_password,
    b64,
    boolean,
    header_json,
    run,
    text,
)
from raftkv.errors import ConfigError

__all__ = ["add_auth"]

Body = Callable[[Any, Options], Awaitable[int]]


def add_auth(sub: Any) -> None:
    """Add the ``user``, ``role`` and ``auth`` command groups."""
    _add_user(sub)
    _add_role(sub)
    _add_switch(sub)


def _group(sub: Any, name: str, help: str, description: str, example: str) -> Any:
    p = sub.add_parser(name, help=help, formatter_class=FMT, description=description,
                       epilog="example:\n" + example)
    return p.add_subparsers(dest=f"{name}_command", metavar="COMMAND", required=True,
                            parser_class=Parser)


def _interactive(p: Parser, what: str) -> None:
    p.add_argument("--interactive", type=boolean, nargs="?", const=True, default=True,
                   metavar="true|false",
                   help=f"ask for {what} on the terminal, twice (default: true); false: read "
                        "it from the first line of stdin")


def _add_user(sub: Any) -> None:
    usub = _group(sub, "user", "add, list, inspect and delete users; grant them roles",
                  "Users (etcdctl user ...). With auth on, only root may manage users.",
                  "  raftkv user add alice\n  raftkv user grant-role alice reader\n")
    p = add_command(usub, "add", help="add a user", func=_cmd_user_add,
                    description="Add user NAME. The password comes from NAME:PASSWORD, "
                                "--new-user-password, or a prompt (twice; with "
                                "--interactive=false, the first line of stdin); "
                                "--no-password makes a user that can only authenticate "
                                "with a client certificate.",
                    example="  raftkv user add alice\n  raftkv user add bob "
                            "--new-user-password s3cret\n  raftkv user add svc --no-password")
    p.add_argument("name", metavar="NAME[:PASSWORD]")
    _interactive(p, "the password")
    p.add_argument("--new-user-password", metavar="PASSWORD", default="",
                   help="the new user's password (visible to other local users in ps)")
    p.add_argument("--no-password", action="store_true",
                   help="a user without password (client-certificate authentication only)")
    p = add_command(usub, "get", help="a user's roles", func=_cmd_user_get,
                    description="Print user NAME and its roles; --detail prints each role's "
                                "permissions too.", example="  raftkv user get alice --detail")
    p.add_argument("name", metavar="NAME")
    p.add_argument("--detail", action="store_true", help="show the roles' permissions")
    add_command(usub, "list", help="every user", func=_cmd_user_simple,
                description="Print every user name, sorted.", example="  raftkv user list")
    p = add_command(usub, "delete", help="delete a user", func=_cmd_user_simple,
                    description="Delete user NAME (its tokens stop working).",
                    example="  raftkv user delete alice")
    p.add_argument("name", metavar="NAME")
    p = add_command(usub, "passwd", help="change a user's password", func=_cmd_user_passwd,
                    description="Set user NAME's password (asked for twice; with "
                                "--interactive=false, the first line of stdin). Its tokens "
                                "stop working.", example="  raftkv user passwd alice")
    p.add_argument("name", metavar="NAME")
    _interactive(p, "the new password")
    for verb, text_ in (("grant-role", "give user NAME role ROLE"),
                        ("revoke-role", "take role ROLE from user NAME")):
        p = add_command(usub, verb, help=text_, func=_cmd_user_simple,
                        description=text_[0].upper() + text_[1:] + ".",
                        example=f"  raftkv user {verb} alice reader")
        p.add_argument("name", metavar="NAME")
        p.add_argument("role", metavar="ROLE")


def _add_role(sub: Any) -> None:
    rsub = _group(sub, "role", "add, list, inspect and delete roles; grant them permissions",
                  "Roles and their key permissions (etcdctl role ...).",
                  "  raftkv role add reader\n"
                  "  raftkv role grant-permission reader read /config/ --prefix\n")
    for verb, text_, example in (("add", "add role NAME", "add reader"),
                                 ("get", "print role NAME's permissions", "get reader"),
                                 ("delete", "delete role NAME", "delete reader")):
        p = add_command(rsub, verb, help=text_, func=_cmd_role_simple,
                        description=text_[0].upper() + text_[1:] + ".",
                        example=f"  raftkv role {example}")
        p.add_argument("name", metavar="NAME")
    add_command(rsub, "list", help="every role", func=_cmd_role_simple,
                description="Print every role name, sorted.", example="  raftkv role list")
    p = add_command(rsub, "grant-permission", help="let a role read and/or write keys",
                    func=_cmd_role_perm,
                    description="Grant role NAME the permission PERM (read, write or "
                                "readwrite) on KEY, on [KEY, END), on every key starting "
                                "with KEY (--prefix) or on every key from KEY on "
                                "(--from-key). An empty KEY with --prefix is every key.",
                    example="  raftkv role grant-permission reader read /config/ --prefix\n"
                            "  raftkv role grant-permission writer readwrite a z")
    p.add_argument("name", metavar="NAME")
    p.add_argument("perm", metavar="PERM", help="read, write or readwrite")
    _perm_args(p)
    p = add_command(rsub, "revoke-permission", help="remove a role's permission",
                    func=_cmd_role_perm,
                    description="Remove role NAME's permission on exactly KEY, [KEY, END), "
                                "the prefix KEY (--prefix) or KEY on (--from-key), as it "
                                "was granted.",
                    example="  raftkv role revoke-permission reader /config/ --prefix")
    p.add_argument("name", metavar="NAME")
    _perm_args(p)


def _perm_args(p: Parser) -> None:
    p.add_argument("key", metavar="KEY")
    p.add_argument("range_end", nargs="?", default=None, metavar="END")
    p.add_argument("--prefix", action="store_true", help="every key starting with KEY")
    p.add_argument("--from-key", action="store_true",
                   help="every key greater than or equal to KEY (byte order)")


def _add_switch(sub: Any) -> None:
    asub = _group(sub, "auth", "enable, disable or show authentication",
                  "Turn authentication on or off (etcdctl auth ...).",
                  "  raftkv user add root\n  raftkv auth enable\n"
                  "  raftkv --user root auth status\n")
    add_command(asub, "enable", help="turn authentication on", func=_cmd_auth,
                description="Turn authentication on. User root must exist; it is given "
                            "role root first if it lacks it (as etcdctl does).",
                example="  raftkv auth enable")
    add_command(asub, "disable", help="turn authentication off (root only)", func=_cmd_auth,
                description="Turn authentication off.",
                example="  raftkv --user root auth disable")
    add_command(asub, "status", help="is authentication on; the auth revision",
                func=_cmd_auth, description="Print whether authentication is on and the "
                "auth store's revision (anyone may ask).", example="  raftkv auth status")


# -- output ---------------------------------------------------------------------------------

def _print_json(doc: dict[str, Any]) -> None:
    """etcdctl's JSON: Go's encoding (compact, <>& escaped, other characters as they are)."""
    out = json.dumps(doc, separators=(",", ":"), ensure_ascii=False)
    sys.stdout.write(out.replace("<", "\\u003c").replace(">", "\\u003e")
                     .replace("&", "\\u0026") + "\n")


def _doc(header: Any, **fields: Any) -> dict[str, Any]:
    """A response as Go marshals it: zero values (0, false, empty) left out."""
    doc: dict[str, Any] = {"header": {k: v for k, v in header_json(header).items() if v}}
    doc.update({k: v for k, v in fields.items() if v})
    return doc


def _emit(opts: Options, doc: dict[str, Any], lines: list[str]) -> None:
    if opts.write_out == "json":
        _print_json(doc)
    else:
        for line in lines:
            print(line)


def _simple_or_json(ns: argparse.Namespace, body: Body) -> int:
    """Run ``body``, refusing ``-w table`` first (etcdctl has no table for these)."""
    if getattr(ns, "write_out", "simple") == "table":
        raise ConfigError("-w table is not supported by this command (nor by etcdctl's): "
                          "use -w simple or -w json")
    return run(ns, body)


def _perm_line(p: Any) -> str:
    from raftkv.client.types import prefix_end

    if not p.range_end:
        return "\t" + text(p.key)
    line = f"\t[{text(p.key)}, <open ended>" if p.range_end == b"\0" else \
        f"\t[{text(p.key)}, {text(p.range_end)})"
    return line + (f" (prefix {text(p.key)})" if prefix_end(p.key) == p.range_end else "")


def _role_out(opts: Options, role: Any) -> None:
    lines = [f"Role {role.name}", "KV Read:"]
    lines += [_perm_line(p) for p in role.permissions if p.perm in ("read", "readwrite")]
    lines.append("KV Write:")
    lines += [_perm_line(p) for p in role.permissions if p.perm in ("write", "readwrite")]
    perms = [{k: v for k, v in (("permType", _PERM_CODE[p.perm]), ("key", b64(p.key)),
                                ("range_end", b64(p.range_end))) if v}
             for p in role.permissions]
    _emit(opts, _doc(role.header, perm=perms), lines)


_PERM_CODE = {"read": 0, "write": 1, "readwrite": 2}


# -- passwords ------------------------------------------------------------------------------

def _new_password(name: str, interactive: bool) -> str:
    """etcdctl's: asked twice (they must match, and not be empty), or stdin's first line."""
    if not interactive:
        return sys.stdin.readline().rstrip("\r\n")
    first = ask_password(f"Password of {name}: ")
    if not first:
        raise ConfigError("empty password")
    if ask_password(f"Type password of {name} again for confirmation: ") != first:
        raise ConfigError("given passwords are different")
    return first


def _new_user(ns: argparse.Namespace) -> tuple[str, str | None]:
    """``(name, password)`` of ``user add`` (password None: ``--no-password``)."""
    if ns.no_password:
        return ns.name, None
    if ns.new_user_password:
        return ns.name, ns.new_user_password
    name, colon, password = ns.name.partition(":")
    if colon:
        if not name:
            raise ConfigError("empty user name is not allowed")
        return name, password
    return name, _new_password(name, ns.interactive)


# -- users ----------------------------------------------------------------------------------

def _cmd_user_add(ns: argparse.Namespace) -> int:
    name, password = _new_user(ns)  # before --user's prompt, as etcdctl asks

    async def body(client: Any, opts: Options) -> int:
        h = await client.user_add(name, password, no_password=password is None)
        _emit(opts, _doc(h), [f"User {name} created"])
        return 0

    return _simple_or_json(ns, body)


def _cmd_user_passwd(ns: argparse.Namespace) -> int:
    password = _new_password(ns.name, ns.interactive)

    async def body(client: Any, opts: Options) -> int:
        h = await client.user_change_password(ns.name, password)
        _emit(opts, _doc(h), ["Password updated"])
        return 0

    return _simple_or_json(ns, body)


def _cmd_user_get(ns: argparse.Namespace) -> int:
    async def body(client: Any, opts: Options) -> int:
        user = await client.user_get(ns.name)
        if not ns.detail:
            _emit(opts, _doc(user.header, roles=list(user.roles)),
                  [f"User: {user.name}", "Roles:" + "".join(f" {r}" for r in user.roles)])
            return 0
        print(f"User: {user.name}")
        for role in user.roles:
            print()
            _role_out(opts, await client.role_get(role))
        return 0

    return _simple_or_json(ns, body)


def _cmd_user_simple(ns: argparse.Namespace) -> int:
    verb = ns.user_command

    async def body(client: Any, opts: Options) -> int:
        if verb == "list":
            r = await client._auth("UserList", _pb().AuthUserListRequest())
            _emit(opts, _doc(r.header, users=list(r.users)), list(r.users))
        elif verb == "delete":
            h = await client.user_delete(ns.name)
            _emit(opts, _doc(h), [f"User {ns.name} deleted"])
        elif verb == "grant-role":
            h = await client.user_grant_role(ns.name, ns.role)
            _emit(opts, _doc(h), [f"Role {ns.role} is granted to user {ns.name}"])
        else:
            h = await client.user_revoke_role(ns.name, ns.role)
            _emit(opts, _doc(h), [f"Role {ns.role} is revoked from user {ns.name}"])
        return 0

    return _simple_or_json(ns, body)


def _pb() -> Any:
    from raftkv.wire.pb.etcdserverpb import rpc_pb2

    return rpc_pb2


# -- roles ----------------------------------------------------------------------------------

def _cmd_role_simple(ns: argparse.Namespace) -> int:
    verb = ns.role_command

    async def body(client: Any, opts: Options) -> int:
        if verb == "list":
            r = await client._auth("RoleList", _pb().AuthRoleListRequest())
            _emit(opts, _doc(r.header, roles=list(r.roles)), list(r.roles))
        elif verb == "get":
            _role_out(opts, await client.role_get(ns.name))
        elif verb == "add":
            h = await client.role_add(ns.name)
            _emit(opts, _doc(h), [f"Role {ns.name} created"])
        else:
            h = await client.role_delete(ns.name)
            _emit(opts, _doc(h), [f"Role {ns.name} deleted"])
        return 0

    return _simple_or_json(ns, body)


def _check_perm_flags(ns: argparse.Namespace) -> None:
    """etcdctl's permRange errors, in its words."""
    if ns.prefix and ns.from_key:
        raise ConfigError("--from-key and --prefix flags are mutually exclusive")
    if ns.range_end is not None and ns.key:
        for flag, on in (("--prefix", ns.prefix), ("--from-key", ns.from_key)):
            if on:
                raise ConfigError(f"unexpected endkey argument with {flag} flag")


def _revoked_line(ns: argparse.Namespace) -> str:
    from raftkv.client.auth import perm_range

    _, end = perm_range(ns.key, ns.range_end or "", prefix=ns.prefix, from_key=ns.from_key)
    if not end:
        return f"Permission of key {ns.key} is revoked from role {ns.name}"
    if end == b"\0":
        return f"Permission of range [{ns.key}, <open ended> is revoked from role {ns.name}"
    return f"Permission of range [{ns.key}, {text(end)}) is revoked from role {ns.name}"


def _cmd_role_perm(ns: argparse.Namespace) -> int:
    _check_perm_flags(ns)
    grant = ns.role_command == "grant-permission"
    if grant and ns.perm.lower() not in _PERM_CODE:
        raise ConfigError(f"invalid permission type: {ns.perm} (use read, write or readwrite)")
    end = ns.range_end if ns.key else ""  # etcdctl ignores END after an empty KEY

    async def body(client: Any, opts: Options) -> int:
        flags = {"prefix": ns.prefix, "from_key": ns.from_key}
        if grant:
            h = await client.role_grant_permission(ns.name, ns.key, end or "", ns.perm, **flags)
            _emit(opts, _doc(h), [f"Role {ns.name} updated"])
        else:
            h = await client.role_revoke_permission(ns.name, ns.key, end or "", **flags)
            _emit(opts, _doc(h), [_revoked_line(ns)])
        return 0

    return _simple_or_json(ns, body)


# -- auth -----------------------------------------------------------------------------------

async def _enable(client: Any) -> None:
    """etcdctl's ``auth enable``: when root lacks role root, add the role (if need be),
    grant it to root and enable again."""
    from raftkv import errors as e
    from raftkv.client import RoleExistsError, RootRoleMissingError

    try:
        await client.auth_enable()
        return
    except RootRoleMissingError as exc:
        if str(exc) != e.AUTH_ROOT_ROLE_NOT_EXIST:
            raise  # no root user at all: add it first (raftkv user add root)
    with contextlib.suppress(RoleExistsError):
        await client.role_add("root")
    await client.user_grant_role("root", "root")
    await client.auth_enable()


def _cmd_auth(ns: argparse.Namespace) -> int:
    verb = ns.auth_command

    async def body(client: Any, opts: Options) -> int:
        if verb == "enable":
            await _enable(client)
            print("Authentication Enabled")
        elif verb == "disable":
            await client.auth_disable()
            print("Authentication Disabled")
        else:
            st = await client.auth_status()
            _emit(opts, _doc(st.header, enabled=st.enabled, authRevision=st.auth_revision),
                  [f"Authentication Status: {str(st.enabled).lower()}",
                   f"AuthRevision: {st.auth_revision}"])
        return 0

    return run(ns, body) if verb != "status" else _simple_or_json(ns, body)
