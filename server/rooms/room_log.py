"""A room's event log in Redis: sequence numbers, recent history, publishing.

``room_event.lua`` gives each event the room's next sequence number, keeps it
in a capped history stream and publishes ``b"<seq>:" + msgpack(event)`` on the
room's channel, all at once and once per event key, so a retried request
never shows its gift twice.

In a storm a room gets many events at once, all for the same shard: with
script batching on, the events a room gets before its call goes out (in the
same turn of the loop, or while earlier batches are in flight) share one
``room_event.lua`` call (``ScriptGroups``), one script run instead of many.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import msgpack
from redis.asyncio import Redis

from server.core.keys import RoomKeys
from server.settings import Settings
from server.store.calls import as_text, guarded
from server.store.scripts import Scripts
from server.tuning.pipelining import AutoPipeline, BatchedScript
from server.tuning.script_groups import ScriptGroups


def pack_event(event: dict[str, Any]) -> bytes:
    return msgpack.packb(event)  # type: ignore[no-any-return]


def event_payload(event: dict[str, Any]) -> bytes:
    """What a room event is published and kept as, before its seq is known."""
    return pack_event({k: v for k, v in event.items() if k != "seq"})


def gift_payload(event: dict[str, Any], streakable: bool) -> bytes:
    """A gift event's payload. A streakable gift's ends with ``combo`` nil,
    where the script that numbers it puts the sender's combo (``lib_combo.lua``)."""
    if not streakable:
        return event_payload(event)
    wire = {k: v for k, v in event.items() if k not in ("seq", "combo")}
    wire["combo"] = None
    return pack_event(wire)


@dataclass(frozen=True, slots=True)
class ComboHit:
    """A streakable gift counted in its sender's combo as its event is numbered."""

    sender: str
    gift: str
    count: int
    now_ms: int
    stream_id: str | None

    def spec(self) -> str:
        """As ``room_event.lua`` takes it (no part holds a space)."""
        return f"{self.sender} {self.gift} {self.count} {self.now_ms} {self.stream_id or ''}"


def unpack_published_all(message: bytes) -> list[dict[str, Any]]:
    """The events of a published message, each with its ``seq`` filled in.

    A message is ``<first seq>:`` and one or more events, each one MessagePack
    map, one after the other (``room_gifts.lua`` publishes a call's gifts in
    one message), with consecutive seqs.
    """
    seq, _, payload = message.partition(b":")
    first = int(seq)
    unpacker = msgpack.Unpacker(raw=False)
    unpacker.feed(payload)
    events: list[dict[str, Any]] = []
    for offset, event in enumerate(unpacker):
        if not isinstance(event, dict):
            raise ValueError("a room event that is not a map")
        event["seq"] = first + offset
        events.append(event)
    if not events:
        raise ValueError("a room message without events")
    return events


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
    def __init__(
        self,
        redis: Redis,
        scripts: Scripts,
        settings: Settings,
        pipeline: AutoPipeline | None = None,
    ) -> None:
        self._redis = redis
        self._scripts = scripts
        self._settings = settings
        self._events: ScriptGroups | None = None
        if pipeline is not None:
            call = scripts.room_event
            assert isinstance(call, BatchedScript), "scripts registered without the pipeline"
            self._events = ScriptGroups(pipeline, call.script, self.call_head, reply_width=2)

    def keys(self, room: str) -> RoomKeys:
        return RoomKeys(self._settings.key_prefix, room)

    async def publish(
        self,
        room: str,
        event_key: str,
        event: dict[str, Any],
        combo: ComboHit | None = None,
    ) -> tuple[int, bool]:
        """Publish once per ``event_key``. Returns (seq, published now).

        With ``combo``, the event is a streakable gift's: it counts in the
        sender's combo and carries it (``lib_combo.lua``).
        """
        keys = self.keys(room)
        if combo is None:
            payload, spec = event_payload(event), ""
        else:
            payload, spec = gift_payload(event, streakable=True), combo.spec()
        marker = keys.event_marker(event_key)
        if self._events is None:
            seq, published = await guarded(
                self._scripts.room_event(
                    keys=[*self._head_keys(keys), marker],
                    args=[*self._call_args(keys), payload, spec],
                )
            )
        else:
            seq, published = await guarded(self._events.add(room, [marker], [payload, spec]))
        return int(seq), bool(published)

    def call_head(self, room: str) -> tuple[list[Any], list[Any]]:
        """The keys and args a room's ``room_event.lua`` call (or
        ``room_gifts.lua``'s, or ``combo_end.lua``'s) takes before its events'."""
        keys = self.keys(room)
        return self._head_keys(keys), self._call_args(keys)

    @staticmethod
    def _head_keys(keys: RoomKeys) -> list[str]:
        return [keys.seq, keys.history, keys.combos]

    def _call_args(self, keys: RoomKeys) -> list[Any]:
        return [
            keys.channel,
            self._settings.room_history_length,
            self._settings.idempotency_ttl_seconds,
            "SPUBLISH" if self._settings.redis_cluster else "PUBLISH",
            self._settings.combo_window_ms,
            keys.room,
        ]

    async def view(self, room: str, since: int | None) -> RoomView:
        """The last seq and epoch, and with ``since`` the events after it."""
        keys = self.keys(room)
        last, epoch, status, flat = await guarded(
            self._scripts.room_replay(
                keys=[keys.seq, keys.history, keys.epoch],
                args=[
                    "" if since is None else since,
                    self._settings.room_history_length,
                    self._settings.idempotency_ttl_seconds,
                ],
            )
        )
        pairs = zip(flat[::2], flat[1::2], strict=True)
        # An entry may hold several events, the oldest some seen already.
        missed = [
            event
            for seq, data in pairs
            for event in unpack_published_all(seq + b":" + data)
            if since is None or event["seq"] > since
        ]
        return RoomView(int(last), as_text(epoch), _status(as_text(status)), missed)

    async def last_seq(self, room: str) -> int:
        raw = await guarded(self._redis.get(self.keys(room).seq))
        return int(raw or 0)

    async def recent(self, room: str, count: int) -> list[dict[str, Any]]:
        """The last ``count`` events, oldest first."""
        # Each entry holds at least one event: ``count`` entries hold enough.
        entries: Any = await guarded(self._redis.xrevrange(self.keys(room).history, count=count))
        events = [
            event
            for _, fields in reversed(entries)
            for event in unpack_published_all(fields[b"s"] + b":" + fields[b"d"])
        ]
        return events[-count:] if count > 0 else []

    async def announce(self, room: str, event: dict[str, Any]) -> None:
        """Show an event to the room's open sockets now, outside its sequence.

        For what is not part of the room's story (a creator's test alert): it
        takes no ``seq`` (it is published with seq 0, which the pages and the
        resume logic treat as "not in the log"), is not kept in the history
        and is never replayed.
        """
        payload = b"0:" + event_payload(event)
        publish = self._redis.spublish if self._settings.redis_cluster else self._redis.publish
        await guarded(publish(self.keys(room).channel, payload))
