"""The rooms this process serves: who is in them, and fan-out to them.

Events reach a room from Redis pub/sub (``relay.py``), already in sequence
order. A quiet room sends each event at once; a busy one gathers what arrives
within one tick into a single ``events`` frame, because the cost of fan-out
is one write per viewer per frame, not per event. Each frame is encoded once
per codec and the same bytes go to every viewer's ``FrameWriter``, which
never waits: one slow viewer cannot hold up the room.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from server.auth import Identity, Role
from server.protocol import Codec, encode
from server.ws_protocol import FrameWriter, frame_bytes


@dataclass(eq=False, slots=True)
class Member:
    """One open WebSocket in one room."""

    writer: FrameWriter
    codec: Codec
    identity: Identity

    def send_message(self, wire: dict[str, Any]) -> None:
        """A message for this viewer only (ack, error, pong)."""
        self.writer.send(frame_bytes(encode(wire, self.codec)))

    def welcome(self, wire: dict[str, Any]) -> None:
        """The first message, ahead of any room event that arrived while it was built."""
        self.writer.release_with(frame_bytes(encode(wire, self.codec)))


# Caps a coalesced frame (about 60 KB of typical events), so that one frame
# stays far below a viewer's outgoing bound and its own reader's patience.
MAX_EVENTS_PER_FRAME = 200


def batch_wire(events: list[dict[str, Any]]) -> dict[str, Any]:
    """One event as itself; several as an ``events`` frame (protocol.md)."""
    return events[0] if len(events) == 1 else {"type": "events", "events": events}


@dataclass(slots=True)
class FanoutStats:
    """Totals over every room of the process, for /metrics."""

    events: int = 0
    frames: int = 0


@dataclass(eq=False)
class LocalRoom:
    room_id: str
    tick_seconds: float
    loop: asyncio.AbstractEventLoop
    stats: FanoutStats = field(default_factory=FanoutStats)
    by_codec: dict[Codec, set[Member]] = field(default_factory=dict)
    subscribed: asyncio.Event = field(default_factory=asyncio.Event)
    _pending: list[dict[str, Any]] = field(default_factory=list)
    _last_flush: float = float("-inf")
    _timer: asyncio.TimerHandle | None = None

    def __len__(self) -> int:
        return sum(len(members) for members in self.by_codec.values())

    def add(self, member: Member) -> None:
        self.by_codec.setdefault(member.codec, set()).add(member)

    def discard(self, member: Member) -> None:
        self.by_codec.get(member.codec, set()).discard(member)

    def deliver(self, event: dict[str, Any]) -> None:
        """Send now if the room was quiet for a tick, else at the end of this tick."""
        self._pending.append(event)
        self.stats.events += 1
        if self._timer is not None:
            return
        due = self._last_flush + self.tick_seconds
        if self.loop.time() >= due:
            self.flush()
        else:
            self._timer = self.loop.call_at(due, self.flush)

    def flush(self) -> None:
        self._timer = None
        events, self._pending = self._pending, []
        if not events:
            return
        self._last_flush = self.loop.time()
        for start in range(0, len(events), MAX_EVENTS_PER_FRAME):
            self._broadcast(batch_wire(events[start : start + MAX_EVENTS_PER_FRAME]))

    def _broadcast(self, wire: dict[str, Any]) -> None:
        for codec, members in self.by_codec.items():
            if not members:
                continue
            frame = frame_bytes(encode(wire, codec))
            for member in list(members):
                member.writer.send(frame)
            self.stats.frames += len(members)

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


class Hub:
    """Every room with at least one viewer in this process."""

    def __init__(
        self,
        tick_seconds: float,
        subscribe: Callable[[str], Awaitable[None]],
        unsubscribe: Callable[[str], Awaitable[None]],
    ) -> None:
        self.tick_seconds = tick_seconds
        self._subscribe = subscribe
        self._unsubscribe = unsubscribe
        self.rooms: dict[str, LocalRoom] = {}
        self.stats = FanoutStats()

    async def join(self, room_id: str, member: Member) -> LocalRoom:
        room = self.rooms.get(room_id)
        if room is None:
            room = LocalRoom(room_id, self.tick_seconds, asyncio.get_running_loop(), self.stats)
            self.rooms[room_id] = room
            try:
                await self._subscribe(room_id)
            except BaseException:
                # Nobody may stay in a room that hears nothing.
                del self.rooms[room_id]
                room.subscribed.set()
                raise
            room.subscribed.set()
        else:
            # Another viewer's join may still be subscribing the process.
            await room.subscribed.wait()
            if self.rooms.get(room_id) is not room:
                return await self.join(room_id, member)
        room.add(member)
        return room

    async def leave(self, room_id: str, member: Member) -> None:
        room = self.rooms.get(room_id)
        if room is None:
            return
        room.discard(member)
        if len(room) == 0:
            room.close()
            del self.rooms[room_id]
            await self._unsubscribe(room_id)

    def deliver(self, room_id: str, event: dict[str, Any]) -> None:
        room = self.rooms.get(room_id)
        if room is not None:
            room.deliver(event)

    def count_by_role(self) -> dict[Role, int]:
        counts = dict.fromkeys(Role, 0)
        for room in self.rooms.values():
            for members in room.by_codec.values():
                for member in members:
                    counts[member.identity.role] += 1
        return counts
