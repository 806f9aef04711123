"""``python -m server``: the same command line as ``giftstream``."""

import sys

from server.cli import main

if __name__ == "__main__":
    sys.exit(main())
