"""Telling each room's sockets its viewer count when it changes.

The count spans processes (``tally.py``), so no single process sees every
join and leave. Instead each process asks for the total of each room it
serves every ``viewer_count_interval_seconds`` and sends ``viewers`` to its
own sockets of that room when the total moved: one small Redis read per
room per interval, and a joining viewer gets the count in its welcome.
"""

from __future__ import annotations

import asyncio
import logging

from server.core.protocol import Viewers, to_wire
from server.errors import GiftError
from server.rooms.hub import Hub
from server.rooms.tally import ProcessTally

log = logging.getLogger(__name__)


class ViewerCounts:
    def __init__(self, hub: Hub, presence: ProcessTally, interval_seconds: float) -> None:
        self._hub = hub
        self._presence = presence
        self._interval = interval_seconds
        self._last_sent: dict[str, int] = {}

    async def announce_changes(self) -> None:
        """One pass over this process's rooms."""
        rooms = dict(self._hub.rooms)
        for room_id in self._last_sent.keys() - rooms.keys():
            del self._last_sent[room_id]
        for room_id, room in rooms.items():
            count = await self._presence.count(room_id)
            if self._last_sent.get(room_id) != count:
                self._last_sent[room_id] = count
                room.send_to_all(to_wire(Viewers(count=count)))

    async def run_forever(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self.announce_changes()
            except GiftError:  # Unavailable: the counts wait for Redis
                log.warning("viewer counts not announced; Redis unavailable")
