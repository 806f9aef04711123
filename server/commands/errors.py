"""Errors of the command line that a user can fix."""

from __future__ import annotations

import sys


class ServeError(Exception):
    """A problem the user can fix (the port is taken, say): one line, no traceback."""


def say_error(message: str) -> None:
    print(f"giftstream: error: {message}", file=sys.stderr, flush=True)
