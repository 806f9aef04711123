"""Room events put straight on a room's channel, for fan-out measured alone.

``scripts/bench`` uses this to measure what giftstream's fan-out costs
without the gifts that normally cause the events: the events are what
``room_event.lua`` would publish (``b"<seq>:" + msgpack(event)``, seqs taken
from the room's own counter), so the server relays and writes them exactly
as it does a real gift's, while no money moves and no ack is sent.
"""

from __future__ import annotations

import asyncio
import time
from types import TracebackType

from redis.asyncio import Redis

from server.core.keys import RoomKeys
from server.rooms.room_log import pack_event

# A busy room's events go out in slices this far apart.
SLICE_SECONDS = 0.01


def gift_event(room: str, index: int, big: bool) -> bytes:
    """A rose (or a big gift) from one of a hundred senders, encoded as a gift's event is.

    ``ts`` is now: the readers time a big gift's reach from it.
    """
    return pack_event(
        {
            "type": "gift",
            "room": room,
            "sender": f"fan{index % 100:03d}",
            "gift": "universe" if big else "rose",
            "count": 1,
            "coins": 44999 if big else 1,
            "tier": "fullscreen" if big else "small",
            "ts": int(time.time() * 1000),
            "combo": None,
        }
    )


class RoomPublisher:
    """Publishes events to one room of one key prefix, numbered by the room's counter."""

    def __init__(self, redis_url: str, prefix: str, room: str) -> None:
        self._redis = Redis.from_url(redis_url)
        self._keys = RoomKeys(prefix, room)
        self._room = room
        self.published = 0

    async def __aenter__(self) -> RoomPublisher:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        await self._redis.aclose()

    async def publish(self, count: int, big_every: int = 0) -> None:
        """``count`` events now, in one round trip after the seqs are taken.

        With ``big_every`` n, the events whose seq is a multiple of n are big gifts.
        """
        last = await self._redis.incrby(self._keys.seq, count)
        pipe = self._redis.pipeline(transaction=False)
        for seq in range(last - count + 1, last + 1):
            big = big_every > 0 and seq % big_every == 0
            pipe.publish(self._keys.channel, b"%d:" % seq + gift_event(self._room, seq, big))
        await pipe.execute()
        self.published += count

    async def steady(self, per_second: float, seconds: float, big_every: int = 0) -> int:
        """``per_second`` events for ``seconds``, a slice every 10 ms, on schedule.

        Returns how many were published.
        """
        started, sent = time.perf_counter(), 0
        while (elapsed := time.perf_counter() - started) < seconds:
            due = int(elapsed * per_second) + 1 - sent
            if due > 0:
                await self.publish(due, big_every)
                sent += due
            await asyncio.sleep(SLICE_SECONDS)
        return sent
