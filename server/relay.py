"""Room events between processes: one Redis pub/sub connection per process.

The process subscribes to a room's channel when its first viewer of that
room arrives and unsubscribes when the last one leaves, so it hears only the
rooms it serves. Every event, including those this process published
itself, comes back through here: one path, one order (Redis's).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.exceptions import RedisError

from server.keys import RoomKeys
from server.room_log import unpack_published
from server.wallet import FailureTally

log = logging.getLogger(__name__)
RETRY_SECONDS = 0.5


class Relay:
    def __init__(self, redis: Redis, key_prefix: str) -> None:
        self._pubsub: PubSub = redis.pubsub(ignore_subscribe_messages=True)
        self._prefix = key_prefix
        # Where events go: the process's Hub sets itself here.
        self.on_event: Callable[[str, dict[str, Any]], None] = lambda room, event: None
        self._rooms_by_channel: dict[bytes, str] = {}
        # Set while at least one room is subscribed: redis-py cannot read a
        # pub/sub connection that has no subscription yet.
        self._active = asyncio.Event()

    def _channel(self, room: str) -> str:
        return RoomKeys(self._prefix, room).channel

    async def subscribe(self, room: str) -> None:
        channel = self._channel(room)
        self._rooms_by_channel[channel.encode()] = room
        await self._pubsub.subscribe(channel)
        self._active.set()

    async def unsubscribe(self, room: str) -> None:
        channel = self._channel(room)
        self._rooms_by_channel.pop(channel.encode(), None)
        if not self._rooms_by_channel:
            self._active.clear()
        try:
            await self._pubsub.unsubscribe(channel)
        except RedisError:
            log.warning("unsubscribe failed", extra={"room": room})

    def _dispatch(self, message: dict[str, Any]) -> None:
        room = self._rooms_by_channel.get(message["channel"])
        if room is None:
            return
        try:
            event = unpack_published(message["data"])
        except (ValueError, TypeError):
            log.error("undecodable room event", extra={"room": room})
            return
        self.on_event(room, event)

    async def run(self) -> None:
        """Read until cancelled; reconnects (and resubscribes) after Redis errors."""
        while True:
            try:
                await self._active.wait()
                message = await self._pubsub.get_message(timeout=1.0)
            except RedisError:
                FailureTally.count += 1
                log.warning("room relay lost Redis; retrying")
                await asyncio.sleep(RETRY_SECONDS)
                continue
            if message is not None and message.get("type") == "message":
                self._dispatch(message)

    async def close(self) -> None:
        await self._pubsub.aclose()  # type: ignore[no-untyped-call]
