"""A creator's goal for their room, filled by the room's gifts, reached once.

The goal lives on the creator's shard (``{w:<creator>}:goal``) with a
cursor into the creator's ledger. Filling it reads the ``credit`` entries
after the cursor and adds them with ``goal.lua``, which adds only if the
cursor is still where the sum began: when two processes count the same
credits, one adds and the other finds the cursor moved. So each gift
counts once, and the call that takes the goal to its target is one call.

``goal_reached`` is a room event with a seq, published through
``room_event.lua`` under the event key ``goal:<goal id>``, which publishes
once per key: a process that dies after the goal was reached and before it
said so leaves the goal reached but not ``announced``, and the next look,
by any process, says it; said twice, it is still shown once. Progress and
changes reach the room's sockets as ``goal`` messages outside the sequence.

Every process looks at the goals of the rooms it serves once a second, only
while gifts come (and a few seconds after): a goal fills only from gifts.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from server.core.goal_rules import GoalAsk, filled_by, goal_view
from server.core.keys import WalletKeys
from server.errors import GiftError
from server.money.settlement import now_ms
from server.rooms.hub import Hub
from server.rooms.room_log import RoomLog
from server.store.calls import as_text, guarded
from server.store.scripts import Scripts

log = logging.getLogger(__name__)

# Ledger entries one look reads: the rest wait for the next look.
ENTRIES_PER_LOOK = 1000
# How long after a room's last event its goal is still looked at (gifts are
# credited in the call that shows them on one node; on a cluster, settled
# within moments, or by the sweeper later).
ACTIVE_SECONDS = 6.0


def goal_key(prefix: str, creator: str) -> str:
    return WalletKeys(prefix, creator).wallet.removesuffix(":wallet") + ":goal"


class Goals:
    def __init__(self, redis: Redis, scripts: Scripts, prefix: str, room_log: RoomLog) -> None:
        self._redis = redis
        self._scripts = scripts
        self._prefix = prefix
        self._room_log = room_log

    def _keys(self, creator: str) -> list[str]:
        return [goal_key(self._prefix, creator), WalletKeys(self._prefix, creator).ledger]

    async def get(self, creator: str) -> dict[str, Any] | None:
        raw = await guarded(self._redis.hgetall(goal_key(self._prefix, creator)))
        return goal_view({as_text(k): as_text(v) for k, v in raw.items()})

    async def set(self, creator: str, ask: GoalAsk) -> dict[str, Any]:
        goal_id = secrets.token_hex(6)
        args = ["set", goal_id, ask.title, ask.kind, ask.gift, ask.target, now_ms()]
        await guarded(self._scripts.goal(keys=self._keys(creator), args=args))
        goal = await self.get(creator)
        assert goal is not None
        await self._tell(creator, goal)
        return goal

    async def clear(self, creator: str) -> None:
        await guarded(self._scripts.goal(keys=self._keys(creator), args=["clear"]))
        await self._tell(creator, None)

    async def advance(self, creator: str) -> None:
        """Count the credits since the goal's cursor; say what changed."""
        raw = {
            as_text(k): as_text(v)
            for k, v in (
                await guarded(self._redis.hgetall(goal_key(self._prefix, creator)))
            ).items()
        }
        goal = goal_view(raw)
        if goal is None:
            return
        if goal["reached"] is not None:
            if not raw.get("announced"):
                await self._announce_reached(creator, goal)
            return
        cursor = raw.get("cursor", "0-0")
        ledger = WalletKeys(self._prefix, creator).ledger
        entries: Any = await guarded(
            self._redis.xrange(ledger, f"({cursor}", "+", ENTRIES_PER_LOOK)
        )
        if not entries:
            return
        added = filled_by(raw.get("kind", ""), raw.get("gift", ""), (f for _, f in entries))
        last = as_text(entries[-1][0])
        answer = await guarded(
            self._scripts.goal(
                keys=self._keys(creator),
                args=["count", goal["goal_id"], cursor, last, added, now_ms()],
            )
        )
        if as_text(answer[0]) != "ok" or added == 0:
            return  # another process counted these; or nothing of the goal's
        goal["progress"] = int(answer[1])
        if int(answer[2]):
            goal["reached"] = now_ms()
        await self._tell(creator, goal)
        if goal["reached"] is not None:
            await self._announce_reached(creator, goal)

    async def _announce_reached(self, creator: str, goal: dict[str, Any]) -> None:
        event = {"type": "goal_reached", "room": creator, "goal": goal, "ts": now_ms()}
        await self._room_log.publish(creator, f"goal:{goal['goal_id']}", event)
        await guarded(
            self._scripts.goal(keys=self._keys(creator), args=["announced", goal["goal_id"]])
        )

    async def _tell(self, creator: str, goal: dict[str, Any] | None) -> None:
        """A ``goal`` message to every socket of the room, on every process."""
        await self._room_log.announce(creator, {"type": "goal", "room": creator, "goal": goal})


class GoalWatch:
    """This process's rooms' goals, filled from their gifts."""

    def __init__(self, hub: Hub, goals: Goals, interval_seconds: float) -> None:
        self._hub = hub
        self._goals = goals
        self._interval = interval_seconds

    async def look(self) -> None:
        lately = asyncio.get_running_loop().time() - ACTIVE_SECONDS
        for room_id, room in list(self._hub.rooms.items()):
            if room.last_event_at >= lately:
                await self._goals.advance(room_id)

    async def run_forever(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self.look()
            except (GiftError, RedisError):
                log.warning("goals not counted this round (Redis unavailable); will retry")
