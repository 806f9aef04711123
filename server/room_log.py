"""A room's event log in Redis: sequence numbers, recent history, publishing.

``room_event.lua`` gives each event the room's next sequence number, keeps it
in a capped history stream and publishes ``b"<seq>:" + msgpack(event)`` on the
room's channel, all at once and once per event key, so a retried request
never shows its gift twice.
"""

from __future__ import annotations

from typing import Any

import msgpack
from redis.asyncio import Redis

from server.keys import RoomKeys
from server.scripts import Scripts
from server.settings import Settings
from server.wallet import guarded


def pack_event(event: dict[str, Any]) -> bytes:
    return msgpack.packb(event)  # type: ignore[no-any-return]


def unpack_published(message: bytes) -> dict[str, Any]:
    """The event dict of a published message, with its ``seq`` filled in."""
    seq, _, payload = message.partition(b":")
    event: dict[str, Any] = msgpack.unpackb(payload, raw=False)
    event["seq"] = int(seq)
    return event


class RoomLog:
    def __init__(self, redis: Redis, scripts: Scripts, settings: Settings) -> None:
        self._redis = redis
        self._scripts = scripts
        self._settings = settings

    def keys(self, room: str) -> RoomKeys:
        return RoomKeys(self._settings.key_prefix, room)

    async def publish(self, room: str, event_key: str, event: dict[str, Any]) -> tuple[int, bool]:
        """Publish once per ``event_key``. Returns (seq, published now)."""
        keys = self.keys(room)
        event = {k: v for k, v in event.items() if k != "seq"}
        seq, published = await guarded(
            self._scripts.room_event(
                keys=[keys.seq, keys.history, keys.event_marker(event_key)],
                args=[
                    keys.channel,
                    pack_event(event),
                    self._settings.room_history_length,
                    self._settings.idempotency_ttl_seconds,
                ],
            )
        )
        return int(seq), bool(published)

    async def last_seq(self, room: str) -> int:
        raw = await guarded(self._redis.get(self.keys(room).seq))
        return int(raw or 0)

    async def recent(self, room: str, count: int) -> list[dict[str, Any]]:
        """The last ``count`` events, oldest first."""
        entries: Any = await guarded(self._redis.xrevrange(self.keys(room).history, count=count))
        return [unpack_published(fields[b"s"] + b":" + fields[b"d"]) for _, fields in entries][::-1]
