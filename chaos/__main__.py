"""``raftkv-chaos`` / ``python -m chaos``: the chaos tools' command line.

* ``run`` — the real-cluster harness (:mod:`chaos.run_cli`);
* ``cleanup`` — remove whatever interrupted runs left behind;
* ``sim`` — the seeded simulator of the pure Raft core (:mod:`chaos.sim_cli`).
"""

from __future__ import annotations

import sys

USAGE = """usage: raftkv-chaos COMMAND [ARGS]

commands:
  run      run a workload and faults against a fresh real cluster (raftkv-chaos run --help)
  cleanup  remove namespaces, bridges, rules and processes left by interrupted runs
  sim      run the seeded Raft simulator (raftkv-chaos sim --help)

example: raftkv-chaos run --workload register --nemesis partition,kill,pause --out runs/r1"""


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in ("-h", "--help"):
        print(USAGE)
        return 0 if args else 2
    if args[0] == "sim":
        from chaos import sim_cli

        return sim_cli.main(args[1:])
    if args[0] == "run":
        from chaos.run_cli import run_main

        return run_main(args[1:])
    if args[0] == "cleanup":
        from chaos.run_cli import cleanup_main

        return cleanup_main(args[1:])
    print(f"raftkv-chaos: error: unknown command {args[0]!r} (try: run, cleanup, sim)",
          file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
