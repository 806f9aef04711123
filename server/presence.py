"""How many viewers a room has, across every process that serves it.

Each process keeps its own count of a room's sockets in one field of the
room's presence hash, with the time it last said so: ``"<count>|<ms>"``.
A room's count is the sum of the fields that are fresh. A process refreshes
its fields every third of the time-to-live, so the fields of a process that
died without saying goodbye go stale within the time-to-live, stop counting,
and are deleted by whoever counts next.
"""

from __future__ import annotations

import asyncio
import logging
import time

from redis.asyncio import Redis

from server.errors import Unavailable
from server.keys import RoomKeys
from server.wallet import as_text, guarded

log = logging.getLogger(__name__)


def _now_ms() -> int:
    return int(time.time() * 1000)


class Presence:
    def __init__(self, redis: Redis, key_prefix: str, process_id: str, ttl_seconds: float) -> None:
        self._redis = redis
        self._prefix = key_prefix
        self.process_id = process_id
        self._ttl_ms = int(ttl_seconds * 1000)
        self._local: dict[str, int] = {}

    def _key(self, room: str) -> str:
        return RoomKeys(self._prefix, room).presence

    async def _write(self, room: str, count: int) -> None:
        await guarded(self._redis.hset(self._key(room), self.process_id, f"{count}|{_now_ms()}"))

    async def change(self, room: str, delta: int) -> None:
        count = self._local.get(room, 0) + delta
        if count > 0:
            self._local[room] = count
            await self._write(room, count)
        else:
            self._local.pop(room, None)
            await guarded(self._redis.hdel(self._key(room), self.process_id))

    async def count(self, room: str) -> int:
        fields = await guarded(self._redis.hgetall(self._key(room)))
        fresh_after = _now_ms() - self._ttl_ms
        total, stale = 0, []
        for process, value in fields.items():
            count, _, seen_ms = as_text(value).partition("|")
            if seen_ms.isdigit() and int(seen_ms) >= fresh_after:
                total += int(count)
            else:
                stale.append(process)
        if stale:
            await guarded(self._redis.hdel(self._key(room), *stale))
        return total

    async def refresh_forever(self) -> None:
        """Say every third of the time-to-live that this process is still here."""
        while True:
            await asyncio.sleep(self._ttl_ms / 3000)
            try:
                for room, count in list(self._local.items()):
                    await self._write(room, count)
            except Unavailable:
                log.warning("presence not refreshed; Redis unavailable")

    async def clear(self) -> None:
        for room in list(self._local):
            await guarded(self._redis.hdel(self._key(room), self.process_id))
        self._local.clear()
