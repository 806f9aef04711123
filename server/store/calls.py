"""Calls to Redis as the rest of giftstream makes them: failures typed, replies as text.

Every module that talks to Redis awaits its calls through ``guarded``, so a
lost connection or a failed script reaches a client as the wire error
``unavailable`` (retry), never as a traceback, and ``/metrics`` counts it.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any, TypeVar

from redis.exceptions import RedisError

from server.errors import Unavailable

T = TypeVar("T")


class FailureTally:
    """Redis failures seen by this process (one app per process), for /metrics."""

    count = 0


async def guarded(call: Awaitable[T]) -> T:
    """Await a Redis call, turning its failures into the wire error ``unavailable``."""
    try:
        return await call
    except RedisError as exc:
        FailureTally.count += 1
        raise Unavailable(f"the store is unavailable ({type(exc).__name__}); retry") from exc


def as_text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
