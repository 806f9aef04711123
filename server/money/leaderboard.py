"""A room's top gifters, by coins: for this stream, today (UTC) or all time.

Nothing is counted for it on the gift's path: the earnings reports already
rank every creator's supporters by coins for each stream, each UTC day and
all time (``report.lua``, counted from the creator's ledger a second or two
after the gift), and a leaderboard is the top of one of those sorted sets.
A viewer who asked to stay anonymous (``PUT /api/me/privacy``) is still
ranked, without a name.

Each process tells its own sockets of a room the stream's leaderboard when
it changes (``LeaderboardPush``), at most once a second, and only for rooms
where gifts came lately: an idle room costs no Redis read.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

from server.core.earnings_keys import EarningsKeys, ReportKeys, day_of
from server.errors import GiftError
from server.money.fanclub import FanClubs
from server.money.streams import Streams
from server.rooms.hub import Hub
from server.store.calls import as_text, guarded

log = logging.getLogger(__name__)

PERIODS = ("stream", "day", "all")
# Gifters a leaderboard shows.
LEADERBOARD_SIZE = 10
ANONYMOUS_NAME = "anonymous"


def anonymous_key(prefix: str) -> str:
    """The users who asked to appear in rankings without their name."""
    return f"{prefix}:anonymous"


@dataclass(frozen=True, slots=True)
class Standing:
    rank: int
    user: str | None
    name: str
    coins: int
    fan_level: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "rank": self.rank,
            "user": self.user,
            "name": self.name,
            "coins": self.coins,
            "fan_level": self.fan_level,
        }


class Leaderboards:
    def __init__(
        self,
        redis: Redis,
        prefix: str,
        streams: Streams,
        fans: FanClubs,
        size: int = LEADERBOARD_SIZE,
    ) -> None:
        self._redis = redis
        self._prefix = prefix
        self._streams = streams
        self._fans = fans
        self._size = size

    async def top(self, room: str, period: str, now_ms: int) -> dict[str, Any]:
        """``{"period", "stream_id"?, "entries"}`` for one room (its creator's id)."""
        keys = EarningsKeys(self._prefix, room)
        answer: dict[str, Any] = {"period": period}
        if period == "stream":
            stream = await self._streams.latest(room)
            answer["stream_id"] = stream.id if stream is not None else None
            report = keys.stream(stream.id) if stream is not None else None
        elif period == "day":
            report = keys.day(day_of(now_ms))
        else:
            report = keys.all_time
        answer["entries"] = [s.to_dict() for s in await self._standings(room, report)]
        return answer

    async def _standings(self, room: str, report: ReportKeys | None) -> list[Standing]:
        if report is None:
            return []
        top: Any = await guarded(
            self._redis.zrevrange(report.by_coins, 0, self._size - 1, withscores=True)
        )
        users = [as_text(user) for user, _ in top]
        if not users:
            return []
        hidden = await guarded(self._redis.smismember(anonymous_key(self._prefix), users))
        levels = await self._fans.levels(room, users)
        return [
            Standing(
                rank=rank,
                user=None if anonymous else user,
                name=ANONYMOUS_NAME if anonymous else user,
                coins=int(score),
                fan_level=level,
            )
            for rank, (user, (_, score), anonymous, level) in enumerate(
                zip(users, top, hidden, levels, strict=True), start=1
            )
        ]

    async def set_anonymous(self, user: str, anonymous: bool) -> None:
        key = anonymous_key(self._prefix)
        await guarded(self._redis.sadd(key, user) if anonymous else self._redis.srem(key, user))

    async def is_anonymous(self, user: str) -> bool:
        return bool(await guarded(self._redis.sismember(anonymous_key(self._prefix), user)))


# How long after a room's last event its leaderboard is still looked at:
# the reports count a gift within about two seconds (reports.py's worker).
ACTIVE_SECONDS = 6.0


class LeaderboardPush:
    """Each room's stream leaderboard to this process's sockets of it, when it changes."""

    def __init__(self, hub: Hub, leaderboards: Leaderboards, interval_seconds: float) -> None:
        self._hub = hub
        self._leaderboards = leaderboards
        self._interval = interval_seconds
        self._last_sent: dict[str, list[dict[str, Any]]] = {}

    async def announce_changes(self) -> None:
        """One pass over this process's rooms that had events lately."""
        rooms = dict(self._hub.rooms)
        for room_id in self._last_sent.keys() - rooms.keys():
            del self._last_sent[room_id]
        lately = asyncio.get_running_loop().time() - ACTIVE_SECONDS
        for room_id, room in rooms.items():
            if room.last_event_at < lately:
                continue
            board = await self._leaderboards.top(room_id, "stream", int(time.time() * 1000))
            # A room this process has told nothing yet had an empty one, as far
            # as its sockets know: those who opened later read it over HTTP.
            if self._last_sent.get(room_id, []) != board["entries"]:
                self._last_sent[room_id] = board["entries"]
                room.send_to_all({"type": "leaderboard", "room": room_id} | board)

    async def run_forever(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self.announce_changes()
            except GiftError:  # Unavailable: the rankings wait for Redis
                log.warning("leaderboards not announced; Redis unavailable")
