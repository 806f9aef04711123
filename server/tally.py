"""Counts that span processes: a room's viewers, a user's open sockets.

Each process keeps its own count of a thing (a room, a user) in one field of
that thing's hash, with the time it last said so: ``"<count>|<ms>"``. The
total is the sum of the fields that are fresh. A process refreshes its
fields every third of the time-to-live, so the fields of a process that died
without saying goodbye go stale within the time-to-live, stop counting, and
are deleted by whoever counts next.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from redis.asyncio import Redis

from server.errors import Unavailable
from server.wallet import as_text, guarded

log = logging.getLogger(__name__)


def _now_ms() -> int:
    return int(time.time() * 1000)


class ProcessTally:
    """One process's share of per-thing counts, and the totals over all processes."""

    def __init__(
        self, redis: Redis, key_of: Callable[[str], str], process_id: str, ttl_seconds: float
    ) -> None:
        self._redis = redis
        self._key = key_of
        self.process_id = process_id
        self._ttl_ms = int(ttl_seconds * 1000)
        self._local: dict[str, int] = {}

    async def _write(self, thing: str, count: int) -> None:
        await guarded(self._redis.hset(self._key(thing), self.process_id, f"{count}|{_now_ms()}"))

    async def change(self, thing: str, delta: int) -> None:
        count = self._local.get(thing, 0) + delta
        if count > 0:
            self._local[thing] = count
            await self._write(thing, count)
        else:
            self._local.pop(thing, None)
            await guarded(self._redis.hdel(self._key(thing), self.process_id))

    async def count(self, thing: str) -> int:
        fields = await guarded(self._redis.hgetall(self._key(thing)))
        fresh_after = _now_ms() - self._ttl_ms
        total, stale = 0, []
        for process, value in fields.items():
            count, _, seen_ms = as_text(value).partition("|")
            if seen_ms.isdigit() and int(seen_ms) >= fresh_after:
                total += int(count)
            else:
                stale.append(process)
        if stale:
            await guarded(self._redis.hdel(self._key(thing), *stale))
        return total

    async def refresh_forever(self) -> None:
        """Say every third of the time-to-live that this process is still here."""
        while True:
            await asyncio.sleep(self._ttl_ms / 3000)
            try:
                for thing, count in list(self._local.items()):
                    await self._write(thing, count)
            except Unavailable:
                log.warning("presence not refreshed; Redis unavailable")

    async def clear(self) -> None:
        for thing in list(self._local):
            await guarded(self._redis.hdel(self._key(thing), self.process_id))
        self._local.clear()
