"""What every ``raftkv`` subcommand shares: the parser class, one-line errors, flag types."""

from __future__ import annotations

import argparse
import re
import sys
from typing import NoReturn

PROG = "raftkv"
FMT = argparse.RawDescriptionHelpFormatter


class CliError(Exception):
    """A runtime failure reported as one line; exit status 1."""


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line on stderr and exit status 2."""

    def error(self, message: str) -> NoReturn:
        text = redact(" ".join(message.split()))
        sys.stderr.write(f"{PROG}: error: {text} (see '{self.prog} --help')\n")
        raise SystemExit(2)


_SECRETS = re.compile(r"(--(?:new-user-)?password[= ])\S+|(--user[= ][^:\s]*:)\S+")


def redact(text: str) -> str:
    """``text`` with the passwords of ``--user NAME:PASSWORD``, ``--password`` and
    ``--new-user-password`` replaced by ``***`` (usage errors echo arguments)."""
    return _SECRETS.sub(lambda m: (m.group(1) or m.group(2)) + "***", text)


def int_flag(text: str) -> int:
    """An argparse type: an integer, or a one-line error naming the value."""
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer, got {text!r}") from None


def fail(message: str, code: int) -> int:
    """Print ``raftkv: error: MESSAGE`` on one line and return ``code``."""
    text = " ".join(message.split()).removeprefix(f"{PROG}: ")  # one prefix is enough
    sys.stderr.write(f"{PROG}: error: {text}\n")
    return code
