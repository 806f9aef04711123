"""Keepalive pings for every WebSocket of the process, a share per tick.

A viewer whose network vanished leaves no trace on its socket until
something is written to it, so each connection is pinged every
``interval`` seconds and closed (1011) if its pong has not come ``timeout``
seconds later. uvicorn does this with two timers per connection and a turn
of the event loop per ping: with 10,000 idle viewers, 500 wake-ups a second
and 11 to 15% of a core for a room where nothing happens. Here one timer per
process pings a share of the connections each tick, with the same frame
(one payload per tick), and checks the deadlines of earlier ticks; the
pongs come back together and are read together.
"""

from __future__ import annotations

import asyncio
import random
import struct
import weakref
from collections import deque
from typing import Protocol

# How often the process pings a share of its connections: each connection
# still gets one ping per interval, and 10,000 connections at the default
# interval of 20 s make 250 pings a tick.
TICK_SECONDS = 0.5
_OPCODE_PING = 0x9
_FIN = 0x80


class Pingable(Protocol):
    """A connection the keepalive pings (``GiftstreamWebSocketProtocol``)."""

    def ping(self, frame: bytes, payload: bytes) -> bool:
        """Write ``frame``, a ping carrying ``payload``; False if the connection is closing."""
        ...

    def missed_pong(self, payload: bytes) -> None:
        """The deadline of the ping that carried ``payload`` has passed."""
        ...


def ping_frame(payload: bytes) -> bytes:
    """An unmasked ping frame (RFC 6455 section 5.5.2); ``payload`` is at most 125 bytes."""
    return bytes((_FIN | _OPCODE_PING, len(payload))) + payload


class Keepalive:
    """Pings each of its connections once per ``interval`` seconds, a bucket per tick."""

    def __init__(
        self, loop: asyncio.AbstractEventLoop, interval: float, timeout: float | None
    ) -> None:
        self._loop = loop
        # None: ping, but never close for a missing pong (uvicorn's meaning).
        self._timeout = timeout
        buckets = max(1, round(interval / TICK_SECONDS))
        self._tick_seconds = interval / buckets
        self._buckets: list[set[Pingable]] = [set() for _ in range(buckets)]
        self._bucket_of: dict[Pingable, int] = {}
        # New connections are dealt round the buckets, so that a crowd that
        # joins at once is pinged over the whole interval, not in one tick.
        self._dealt = 0
        self._next_bucket = 0
        # Pings sent and not yet past their deadline, oldest first.
        self._deadlines: deque[tuple[float, bytes, list[Pingable]]] = deque()
        self._timer: asyncio.TimerHandle | None = None

    def add(self, connection: Pingable) -> None:
        if connection in self._bucket_of:
            return
        bucket = self._dealt % len(self._buckets)
        self._dealt += 1
        self._buckets[bucket].add(connection)
        self._bucket_of[connection] = bucket
        if self._timer is None:
            self._timer = self._loop.call_later(self._tick_seconds, self._tick)

    def discard(self, connection: Pingable) -> None:
        bucket = self._bucket_of.pop(connection, None)
        if bucket is not None:
            self._buckets[bucket].discard(connection)

    def _tick(self) -> None:
        now = self._loop.time()
        while self._deadlines and self._deadlines[0][0] <= now:
            _, payload, pinged = self._deadlines.popleft()
            for connection in pinged:
                connection.missed_pong(payload)
        bucket = self._buckets[self._next_bucket]
        self._next_bucket = (self._next_bucket + 1) % len(self._buckets)
        if bucket:
            # Unpredictable, as uvicorn's, so that a pong cannot be sent ahead of its ping.
            payload = struct.pack("!I", random.getrandbits(32))
            frame = ping_frame(payload)
            pinged = [connection for connection in list(bucket) if connection.ping(frame, payload)]
            if pinged and self._timeout is not None:
                self._deadlines.append((now + self._timeout, payload, pinged))
        if self._bucket_of or self._deadlines:
            self._timer = self._loop.call_at(now + self._tick_seconds, self._tick)
        else:
            self._timer = None

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


# One per event loop and setting: every connection of a server shares it.
_PROCESS_KEEPALIVES: weakref.WeakKeyDictionary[
    asyncio.AbstractEventLoop, dict[tuple[float, float | None], Keepalive]
] = weakref.WeakKeyDictionary()


def keepalive_for(
    loop: asyncio.AbstractEventLoop, interval: float, timeout: float | None
) -> Keepalive:
    by_setting = _PROCESS_KEEPALIVES.setdefault(loop, {})
    keepalive = by_setting.get((interval, timeout))
    if keepalive is None:
        keepalive = by_setting[(interval, timeout)] = Keepalive(loop, interval, timeout)
    return keepalive
