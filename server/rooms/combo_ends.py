"""Ending combos: once their window passes, and even when their process died.

A combo (a sender's run of one streakable gift in a room) lives in the
room's ``{r:room}:combos`` hash, counted by the script that numbers the
gift's event (``lib_combo.lua``), so every process counts the same run.
It ends when no gift of it came for the combo window: ``combo_end.lua``
removes it and publishes its ``combo_end`` in one call, so it ends once
whoever asks.

Who asks:

- **The process that counted a gift of it.** Each keeps a deadline per
  (room, sender, gift) it counted, and asks when it passes. A run continued
  on another process since is not over yet: the script answers when it may
  be, and the process asks again then (the other process asks too).
- **Any process, for one that died.** Before counting in a room, a process
  notes the room in its own set (``combo_rooms_key``, at most once a second
  a room) and says it is alive in ``combo_owners_key`` every few seconds.
  When a process has been silent for the owner timeout
  (``combo_owner_timeout_seconds``), longer than the window, every run it
  counted has lapsed: the first process to claim it
  ends the lapsed runs in its rooms and forgets it. A process stopped
  cleanly is treated the same way, so its last combos end at most about
  the owner timeout late.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
import time
from collections.abc import Callable
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from server.core.keys import combo_owners_key, combo_rooms_key
from server.errors import GiftError
from server.rooms.room_log import RoomLog
from server.store.calls import as_text, guarded
from server.store.scripts import ScriptCall
from server.tuning.pipelining import AutoPipeline

log = logging.getLogger(__name__)

# A room is noted in a process's set at most this often.
MARK_EVERY_MS = 1_000
# A process's rooms are forgotten this long after its last combo there
# (its own deadlines have ended those runs long before).
ROOM_KEPT_MS = 600_000
# After a failed call, a deadline is tried again this much later.
RETRY_MS = 1_000
# Held by the process ending a dead one's combos.
CLAIM_SECONDS = 60


def _now_ms() -> int:
    return int(time.time() * 1000)


class ComboEnds:
    def __init__(
        self,
        redis: Redis,
        pipeline: AutoPipeline,
        combo_end: ScriptCall,
        room_log: RoomLog,
        key_prefix: str,
        process_id: str,
        window_ms: int,
        owner_timeout_ms: int,
        clock: Callable[[], int] = _now_ms,
    ) -> None:
        self._redis = redis
        self._pipeline = pipeline
        self._combo_end = combo_end
        self._room_log = room_log
        self._prefix = key_prefix
        self._owners = combo_owners_key(key_prefix)
        self._rooms = combo_rooms_key(key_prefix, process_id)
        self.process_id = process_id
        self._window_ms = window_ms
        # Silent this long, a process is taken for dead; each says it is
        # alive five times as often.
        self._dead_after_ms = owner_timeout_ms
        self._heartbeat_ms = max(1, owner_timeout_ms // 5)
        self._clock = clock
        # (room, field) -> the latest deadline asked for; the heap holds one
        # entry a key, at that deadline or an earlier one (moved on when popped).
        self._due: dict[tuple[str, str], int] = {}
        self._heap: list[tuple[int, str, str]] = []
        self._marked: dict[str, int] = {}
        self._wake = asyncio.Event()

    def expect(self, room: str, sender: str, gift: str, now_ms: int) -> None:
        """Before a streakable gift is sent: its room is where this process
        counts a combo, and the run is to be ended once its window passes.

        The room is noted in the pipeline's next batch, ahead of the gift's
        call (or beside it, when the room's call is already waiting), so
        that a crash right after the gift leaves the room known.
        """
        if now_ms - self._marked.get(room, -MARK_EVERY_MS) >= MARK_EVERY_MS:
            self._marked[room] = now_ms
            noted = self._pipeline.queue("ZADD", self._rooms, now_ms, room)
            noted.add_done_callback(lambda reply: self._noted(room, reply))
        self._schedule(room, f"{sender} {gift}", now_ms + self._window_ms + 1)

    def _noted(self, room: str, reply: asyncio.Future[Any]) -> None:
        if reply.cancelled() or reply.exception() is not None:
            # Noted again with the room's next combo.
            self._marked.pop(room, None)

    def _schedule(self, room: str, field: str, deadline: int) -> None:
        key = (room, field)
        held = self._due.get(key)
        if held is not None:
            # Already in the heap: a gift of a run under way only moves its
            # deadline on (a dict write), and the heap entry, when it comes
            # due, is put back at the latest one.
            self._due[key] = max(held, deadline)
            return
        self._due[key] = deadline
        heapq.heappush(self._heap, (deadline, room, field))
        if self._heap[0][0] == deadline:
            self._wake.set()

    async def run_forever(self) -> None:
        next_beat = 0
        while True:
            now = self._clock()
            if now >= next_beat:
                next_beat = now + self._heartbeat_ms
                await self.beat(now)
            await self._end_due(now)
            wake_at = min(next_beat, self._heap[0][0] if self._heap else next_beat)
            self._wake.clear()
            delay = max(0, wake_at - self._clock()) / 1000
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=delay)

    async def _end_due(self, now: int) -> None:
        by_room: dict[str, list[str]] = {}
        while self._heap and self._heap[0][0] <= now:
            deadline, room, field = heapq.heappop(self._heap)
            latest = self._due.get((room, field))
            if latest is None:
                continue
            if latest > deadline:  # moved on by later gifts: wait for that
                heapq.heappush(self._heap, (latest, room, field))
                continue
            del self._due[(room, field)]
            by_room.setdefault(room, []).append(field)
        for room, fields in by_room.items():
            try:
                still_open = await self.end_lapsed(room, fields, now)
            except (GiftError, RedisError):
                log.warning("could not end combos in a room; trying again")
                for field in fields:
                    self._schedule(room, field, now + RETRY_MS)
                continue
            for field, deadline in still_open.items():
                self._schedule(room, field, deadline)

    async def end_lapsed(self, room: str, fields: list[str] | None, now_ms: int) -> dict[str, int]:
        """End the room's runs (``fields``, or all) quiet for the window.
        Returns those still open, with when each may end."""
        keys, args = self._room_log.call_head(room)
        reply: Any = await guarded(
            self._combo_end(keys=keys, args=[*args, now_ms, *(fields or [])])
        )
        pairs = zip(reply[::2], reply[1::2], strict=True)
        return {as_text(field): int(due) for field, due in pairs if int(due) > 0}

    async def beat(self, now: int) -> None:
        """Say this process is alive; end the lapsed combos of any that died."""
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.zadd(self._owners, {self.process_id: now})
                pipe.zremrangebyscore(self._rooms, "-inf", now - ROOM_KEPT_MS)
                # Silent for longer than the timeout.
                pipe.zrangebyscore(self._owners, "-inf", f"({now - self._dead_after_ms}")
                added, _, dead = await guarded(pipe.execute())
            if added:
                # Taken for dead and forgotten (a long pause): note rooms afresh.
                self._marked.clear()
            for process_id in dead:
                await self._end_for_dead(as_text(process_id), now)
        except (GiftError, RedisError):
            log.warning("could not look after the combos of other processes")

    async def _end_for_dead(self, process_id: str, now: int) -> None:
        """End the lapsed runs in the rooms of a process that died, once."""
        claim = f"{self._owners}:claim:{process_id}"
        if not await guarded(self._redis.set(claim, self.process_id, nx=True, ex=CLAIM_SECONDS)):
            return  # another process is on it
        rooms_key = combo_rooms_key(self._prefix, process_id)
        rooms = await guarded(self._redis.zrange(rooms_key, 0, -1))
        for room in rooms:
            # A run still open was continued by a live process, which ends it.
            await self.end_lapsed(as_text(room), None, now)
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.delete(rooms_key)
            pipe.zrem(self._owners, process_id)
            await guarded(pipe.execute())
        log.info("ended the lapsed combos of a process that stopped (%d rooms)", len(rooms))
