"""Faults of the sockets themselves, counted and said at most once a second.

When the process runs out of file descriptors, every connection it cannot
accept makes asyncio report an error with a traceback, and a flood of
connections turns that into megabytes of log a second, burying everything
else. Here such errors are counted (for ``/metrics``) and logged as one
line at most once a second, with how many there were since the last line.
At start the process also raises its own limit on open files as far as the
system lets it, and says what it got.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import resource
import time
from typing import Any

log = logging.getLogger(__name__)

ACCEPT_ERROR = "socket.accept() out of system resource"


class SocketFaults:
    """Counts of this process's socket faults, read by ``/metrics``."""

    accept_errors = 0
    # Connections answered 429 because their address held too many (connection_caps.py).
    over_address_cap = 0
    # Connections closed because their request was not whole in time (api/http_protocol.py).
    past_deadline = 0
    # Requests whose client went away in the middle of the body (api/bodies.py).
    gone_mid_body = 0


class OncePerSecond:
    """Says a repeated warning once a second at most, with the count it stands for."""

    def __init__(self, logger: logging.Logger, message: str, clock: Any = time.monotonic) -> None:
        self._logger = logger
        self._message = message
        self._clock = clock
        self._last = float("-inf")
        self._unsaid = 0

    def __call__(self, **fields: Any) -> None:
        self._unsaid += 1
        now = self._clock()
        if now - self._last < 1.0:
            return
        self._logger.warning(self._message, extra={"times": self._unsaid, **fields})
        self._last, self._unsaid = now, 0


_accept_failed = OncePerSecond(log, "could not accept connections (out of file descriptors?)")


def handle_loop_exception(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """The loop's exception handler: accept errors counted and said once a second."""
    if str(context.get("message", "")).startswith(ACCEPT_ERROR):
        SocketFaults.accept_errors += 1
        _accept_failed(error=repr(context.get("exception")))
        return
    loop.default_exception_handler(context)


def raise_file_limit() -> int:
    """Raise the soft limit on open files to the hard one; the limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
        # Refused, the soft limit stays; the caller says which it got.
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]
