"""``raftkv-chaos`` / ``python -m chaos``: the chaos tools' command line.

Today it runs the seeded simulator (``raftkv-chaos sim --seeds 1000``); the real-cluster
harness (``run``, ``cleanup``) joins it with the chaos issue.
"""

from __future__ import annotations

import sys

from chaos import sim_cli

USAGE = """usage: raftkv-chaos COMMAND [ARGS]

commands:
  sim     run the seeded Raft simulator (raftkv-chaos sim --help)

example: raftkv-chaos sim --seeds 1000 --nodes 5 --ticks 2000 --jobs 2"""


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in ("-h", "--help"):
        print(USAGE)
        return 0 if args else 2
    if args[0] == "sim":
        return sim_cli.main(args[1:])
    print(f"raftkv-chaos: error: unknown command {args[0]!r} (try: sim)", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
