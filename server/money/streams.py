"""Streams: a creator goes live, stays seen, and the stream ends.

A room takes gifts only while its creator is live. ``stream.lua`` keeps the
live stream in the creator's profile (which the gift path reads anyway,
cached for a second: ``creators.py``) and a record of every stream, for the
earnings by stream. Going live while live answers with the current stream,
so two pages (or a retry) make one.

A stream stays live while something of the creator's is seen: a heartbeat
(``POST .../heartbeat``), or a creator page or overlay connected to the room
(each process heartbeats the rooms where it holds one, ``keep_present``).
When nothing has been seen for ``idle_seconds`` the server ends it itself
(``end_idle``, run by every process: the script ends it once). Where to
look is a sorted set of live creators by when each was last seen; it is an
index only: the profile says what is live. It is written before the
profile when a stream starts, so a crash between the two leaves an entry
that the next look drops, never a live stream nobody looks at.

The room hears ``stream_started`` and ``stream_ended`` events, in its
sequence like gifts, each once (by an event key of the stream): an end that
is asked for again publishes the event again, so a crash between the end
and its event is healed by the retry or by the next look.
"""

from __future__ import annotations

import logging
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

from server.core.earnings_keys import RETENTION_SECONDS
from server.core.keys import WalletKeys, live_streams_key
from server.core.protocol import StreamEnded as StreamEndedEvent
from server.core.protocol import StreamStarted, to_wire
from server.errors import StreamEnded, UnknownStream
from server.money.creators import Creators
from server.rooms.room_log import RoomLog
from server.store.calls import as_text, guarded
from server.store.scripts import Scripts

log = logging.getLogger(__name__)

# What new_stream_id makes, and nothing that could reach another key.
STREAM_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}\Z")
ENDED_BY_CREATOR = "ended"
ENDED_IDLE = "idle"
# Idle streams ended per look: more wait for the next look.
IDLE_BATCH = 100


@dataclass(frozen=True, slots=True)
class StreamInfo:
    id: str
    started: int
    ended: int | None = None
    # "ended" (by the creator) or "idle" (by the server); None while live.
    end_reason: str | None = None

    @property
    def live(self) -> bool:
        return self.ended is None

    def to_dict(self) -> dict[str, Any]:
        return {
            "stream_id": self.id,
            "live": self.live,
            "started": self.started,
            "ended": self.ended,
            "end_reason": self.end_reason,
        }


def new_stream_id(now_ms: int) -> str:
    """Sortable by start, and unguessable enough not to collide: ``st-<ms hex>-<random>``."""
    return f"st-{now_ms:x}-{secrets.token_hex(4)}"


def _int(value: Any) -> int | None:
    text = as_text(value) if value is not None else ""
    return int(text) if text else None


class Streams:
    def __init__(
        self,
        redis: Redis,
        scripts: Scripts,
        key_prefix: str,
        creators: Creators,
        room_log: RoomLog,
        idle_seconds: float,
    ) -> None:
        self._redis = redis
        self._scripts = scripts
        self._prefix = key_prefix
        self._creators = creators
        self._room_log = room_log
        self.idle_seconds = idle_seconds
        self._live = live_streams_key(key_prefix)

    def _call(self, op: str, creator: str, stream_id: str, now_ms: int, *extra: Any) -> Any:
        keys = WalletKeys(self._prefix, creator)
        return self._scripts.stream(
            keys=[keys.creator, keys.streams, keys.stream(stream_id)],
            args=[op, stream_id, now_ms, *extra],
        )

    async def go_live(self, creator: str, now_ms: int) -> tuple[StreamInfo, bool]:
        """The creator's live stream, started now if there was none; and whether it was."""
        # The index first: see the module's docstring.
        await guarded(self._redis.zadd(self._live, {creator: now_ms}, nx=True))
        outcome, stream_id, started, _ = await guarded(
            self._call("start", creator, new_stream_id(now_ms), now_ms, RETENTION_SECONDS)
        )
        info = StreamInfo(as_text(stream_id), int(started))
        self._creators.forget(creator)
        if as_text(outcome) == "started":
            await self._announce_start(creator, info, now_ms)
        return info, as_text(outcome) == "started"

    async def heartbeat(self, creator: str, stream_id: str, now_ms: int) -> StreamInfo:
        """The stream was seen now; ``StreamEnded`` if it is not live."""
        outcome, _, started, _ = await guarded(self._call("beat", creator, stream_id, now_ms))
        if as_text(outcome) != "seen":
            known = await self.get(creator, stream_id)
            if known is None:
                raise UnknownStream(f"no stream {stream_id!r}")
            raise StreamEnded(f"stream {stream_id!r} has ended; go live again")
        await guarded(self._redis.zadd(self._live, {creator: now_ms}, xx=True, gt=True))
        return StreamInfo(stream_id, int(started))

    async def end(
        self, creator: str, stream_id: str, now_ms: int, reason: str = ENDED_BY_CREATOR
    ) -> StreamInfo:
        """End the stream (again: its record); ``UnknownStream`` if there is none."""
        outcome, _, started, ended = await guarded(
            self._call("end", creator, stream_id, now_ms, reason, 0)
        )
        return await self._ended(creator, stream_id, as_text(outcome), started, ended)

    async def _ended(
        self, creator: str, stream_id: str, outcome: str, started: Any, ended: Any
    ) -> StreamInfo:
        if outcome == "unknown":
            raise UnknownStream(f"no stream {stream_id!r}")
        self._creators.forget(creator)
        info = await self.get(creator, stream_id)
        if info is None:  # the record outlived by its retention: what the script said
            info = StreamInfo(stream_id, int(started), int(ended), ENDED_BY_CREATOR)
        await self._announce_end(creator, info)
        if outcome == "ended":
            await guarded(self._redis.zrem(self._live, creator))
        return info

    async def current(self, creator: str) -> StreamInfo | None:
        """The creator's live stream now, read afresh (None when not live)."""
        raw = await guarded(
            self._redis.hmget(
                WalletKeys(self._prefix, creator).creator, "stream_id", "stream_started"
            )
        )
        stream_id, started = raw
        if stream_id is None or started is None:
            return None
        return StreamInfo(as_text(stream_id), int(started))

    async def get(self, creator: str, stream_id: str) -> StreamInfo | None:
        """One stream's record, live or ended; None when there is no such stream."""
        (info,) = await self._records(creator, [stream_id])
        return info

    async def _records(self, creator: str, ids: list[str]) -> list[StreamInfo | None]:
        """The records of ``ids``, in one round trip; None for one that is gone."""
        keys = WalletKeys(self._prefix, creator)
        pipe = self._redis.pipeline(transaction=False)
        for stream_id in ids:
            pipe.hmget(keys.stream(stream_id), "started", "ended", "end_reason")
        rows: list[Any] = await guarded(pipe.execute())
        return [
            None
            if started is None
            else StreamInfo(
                stream_id,
                int(as_text(started)),
                _int(ended),
                as_text(reason) if reason is not None else None,
            )
            for stream_id, (started, ended, reason) in zip(ids, rows, strict=True)
        ]

    async def between(self, creator: str, from_ms: int, to_ms: int) -> list[StreamInfo]:
        """The creator's streams that overlap [from_ms, to_ms], oldest first."""
        keys = WalletKeys(self._prefix, creator)
        ids = await guarded(self._redis.zrangebyscore(keys.streams, "-inf", to_ms))
        records = await self._records(creator, [as_text(raw) for raw in ids])
        return [
            info
            for info in records
            if info is not None and (info.ended is None or info.ended >= from_ms)
        ]

    async def recent(self, creator: str, count: int) -> list[StreamInfo]:
        """The creator's last ``count`` streams, newest first."""
        keys = WalletKeys(self._prefix, creator)
        ids = await guarded(self._redis.zrevrange(keys.streams, 0, count - 1))
        records = await self._records(creator, [as_text(raw) for raw in ids])
        return [info for info in records if info is not None]

    async def latest(self, creator: str) -> StreamInfo | None:
        """The creator's live stream, else the last one that ended."""
        keys = WalletKeys(self._prefix, creator)
        newest = await guarded(self._redis.zrevrange(keys.streams, 0, 0))
        return await self.get(creator, as_text(newest[0])) if newest else None

    async def _announce_start(self, creator: str, info: StreamInfo, now_ms: int) -> None:
        event = StreamStarted(room=creator, stream_id=info.id, started=info.started, ts=now_ms)
        await self._room_log.publish(creator, f"stream:{info.id}:start", to_wire(event))

    async def _announce_end(self, creator: str, info: StreamInfo) -> None:
        assert info.ended is not None
        event = StreamEndedEvent(
            room=creator,
            stream_id=info.id,
            started=info.started,
            ended=info.ended,
            reason=info.end_reason or ENDED_BY_CREATOR,
            ts=info.ended,
        )
        await self._room_log.publish(creator, f"stream:{info.id}:end", to_wire(event))

    # ------------------------------------------------------------ kept alive, ended idle

    async def keep_present(self, creators: Iterable[str], now_ms: int) -> int:
        """Heartbeat the live stream of each creator whose page or overlay this
        process holds open; how many were live."""
        seen = 0
        for creator in creators:
            live = await self.current(creator)
            if live is None:
                continue
            try:
                await self.heartbeat(creator, live.id, now_ms)
            except (StreamEnded, UnknownStream):
                continue  # ended in between
            seen += 1
        return seen

    async def end_idle(self, now_ms: int) -> list[StreamInfo]:
        """End every live stream not seen for ``idle_seconds``; those ended."""
        cutoff = now_ms - int(self.idle_seconds * 1000)
        due = await guarded(self._redis.zrangebyscore(self._live, "-inf", cutoff, 0, IDLE_BATCH))
        ended = []
        for raw in due:
            creator = as_text(raw)
            live = await self.current(creator)
            if live is None:
                # An index entry whose stream ended, or never started.
                await guarded(self._redis.zrem(self._live, creator))
                continue
            outcome, _, started, ended_at = await guarded(
                self._call("end", creator, live.id, now_ms, ENDED_IDLE, cutoff)
            )
            if as_text(outcome) == "seen":
                # Seen since by a heartbeat whose index update was lost: look later.
                seen = await guarded(
                    self._redis.hget(WalletKeys(self._prefix, creator).creator, "stream_seen")
                )
                await guarded(self._redis.zadd(self._live, {creator: int(seen or now_ms)}))
                continue
            if as_text(outcome) in ("ended", "already_ended"):
                info = await self._ended(creator, live.id, as_text(outcome), started, ended_at)
                log.info("stream ended unseen", extra={"room": creator, "stream": live.id})
                ended.append(info)
        return ended
