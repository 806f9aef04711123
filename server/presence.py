"""How many viewers a room has, across every process that serves it.

Each process keeps its own count of a room's sockets in one field of the
room's presence hash; the room's count is the sum. A process clears its
fields when it stops. A process that dies without stopping leaves its field
behind (each start picks a new process id), so a crash inflates the count
until someone deletes the field: expiring dead processes' presence is still
to be built.
"""

from __future__ import annotations

from redis.asyncio import Redis

from server.keys import RoomKeys
from server.wallet import guarded


class Presence:
    def __init__(self, redis: Redis, key_prefix: str, process_id: str) -> None:
        self._redis = redis
        self._prefix = key_prefix
        self.process_id = process_id
        self._local: dict[str, int] = {}

    def _key(self, room: str) -> str:
        return RoomKeys(self._prefix, room).presence

    async def change(self, room: str, delta: int) -> None:
        count = self._local.get(room, 0) + delta
        if count > 0:
            self._local[room] = count
            await guarded(self._redis.hset(self._key(room), self.process_id, count))
        else:
            self._local.pop(room, None)
            await guarded(self._redis.hdel(self._key(room), self.process_id))

    async def count(self, room: str) -> int:
        values = await guarded(self._redis.hvals(self._key(room)))
        return sum(int(v) for v in values)

    async def clear(self) -> None:
        for room in list(self._local):
            await guarded(self._redis.hdel(self._key(room), self.process_id))
        self._local.clear()
