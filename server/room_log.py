"""A room's event log in Redis: sequence numbers, recent history, publishing.

``room_event.lua`` gives each event the room's next sequence number, keeps it
in a capped history stream and publishes ``b"<seq>:" + msgpack(event)`` on the
room's channel, all at once and once per event key, so a retried request
never shows its gift twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import msgpack
from redis.asyncio import Redis

from server.keys import RoomKeys
from server.scripts import Scripts
from server.settings import Settings
from server.wallet import as_text, guarded


def pack_event(event: dict[str, Any]) -> bytes:
    return msgpack.packb(event)  # type: ignore[no-any-return]


def unpack_published(message: bytes) -> dict[str, Any]:
    """The event dict of a published message, with its ``seq`` filled in."""
    seq, _, payload = message.partition(b":")
    event: dict[str, Any] = msgpack.unpackb(payload, raw=False)
    event["seq"] = int(seq)
    return event


ResumeStatus = Literal["none", "ok", "too_far_behind", "ahead"]


def _status(text: str) -> ResumeStatus:
    if text in ("none", "ok", "too_far_behind", "ahead"):
        return text  # type: ignore[return-value]
    raise ValueError(f"room_replay.lua answered an unknown status {text[:40]!r}")


@dataclass(frozen=True, slots=True)
class RoomView:
    """A room's log as a joining viewer sees it, read at one instant."""

    last_seq: int
    epoch: str
    status: ResumeStatus
    # With status "ok": every event after the viewer's ``since``, oldest first.
    missed: list[dict[str, Any]]


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
                    "SPUBLISH" if self._settings.redis_cluster else "PUBLISH",
                ],
            )
        )
        return int(seq), bool(published)

    async def view(self, room: str, since: int | None) -> RoomView:
        """The last seq and epoch, and with ``since`` the events after it."""
        keys = self.keys(room)
        last, epoch, status, flat = await guarded(
            self._scripts.room_replay(
                keys=[keys.seq, keys.history, keys.epoch],
                args=["" if since is None else since, self._settings.room_history_length],
            )
        )
        pairs = zip(flat[::2], flat[1::2], strict=True)
        missed = [unpack_published(seq + b":" + data) for seq, data in pairs]
        return RoomView(int(last), as_text(epoch), _status(as_text(status)), missed)

    async def last_seq(self, room: str) -> int:
        raw = await guarded(self._redis.get(self.keys(room).seq))
        return int(raw or 0)

    async def recent(self, room: str, count: int) -> list[dict[str, Any]]:
        """The last ``count`` events, oldest first."""
        entries: Any = await guarded(self._redis.xrevrange(self.keys(room).history, count=count))
        return [unpack_published(fields[b"s"] + b":" + fields[b"d"]) for _, fields in entries][::-1]

    async def announce(self, room: str, event: dict[str, Any]) -> None:
        """Show an event to the room's open sockets now, outside its sequence.

        For what is not part of the room's story (a creator's test alert): it
        takes no ``seq`` (it is published with seq 0, which the pages and the
        resume logic treat as "not in the log"), is not kept in the history
        and is never replayed.
        """
        payload = b"0:" + pack_event({k: v for k, v in event.items() if k != "seq"})
        publish = self._redis.spublish if self._settings.redis_cluster else self._redis.publish
        await guarded(publish(self.keys(room).channel, payload))
