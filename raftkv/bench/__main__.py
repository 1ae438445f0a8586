"""``python -m raftkv.bench``: the ``raftkv bench`` command on its own."""

from raftkv.bench.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
