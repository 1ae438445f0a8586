"""``python -m raftkv``: the same as the ``raftkv`` command."""

import sys

from raftkv.cli import main

if __name__ == "__main__":
    sys.exit(main())
