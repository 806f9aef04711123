"""A big gift that comes while a room's frame is being written joins that write.

These drive ``LocalRoom`` on the test's own event loop with writers that
keep what they are sent, so that where in a flush a big gift lands is
chosen by the test, not by timing. ``test_fanout.py`` sends the same over
real sockets.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, cast

from server.core.auth import Identity, Role
from server.core.protocol import Codec, decode
from server.rooms.hub import (
    EXPRESS_MAX_PENDING,
    FANOUT_SLICE,
    MAX_EVENTS_PER_FRAME,
    FanoutStats,
    LocalRoom,
    Member,
)
from server.rooms.ws_protocol import FrameWriter


class KeptFrames:
    """Stands in for a socket's writer: keeps what it is sent, and reads back
    each frame's events' seqs, in order.

    Decoded only when read, so that a slice of the room is written in well
    under ``SLICE_SECONDS`` and each turn of the loop writes a whole slice.
    """

    def __init__(self, codec: Codec = Codec.MSGPACK) -> None:
        self.codec = codec
        self.sent: list[bytes] = []
        self.deflate_bits = 0  # no permessage-deflate: frames as they are

    def send(self, data: bytes) -> None:
        self.sent.append(data)

    @property
    def writes(self) -> int:
        return len(self.sent)

    @property
    def seqs(self) -> list[int]:
        seqs: list[int] = []
        for data in self.sent:
            # Frames in a row, each of under 64 KB: two or four bytes of
            # header (the length in the second byte, or in the two after
            # it), no mask.
            while data:
                length, start = data[1] & 0x7F, 2
                if length == 126:
                    length, start = int.from_bytes(data[2:4], "big"), 4
                payload, data = data[start : start + length], data[start + length :]
                wire = decode(payload.decode() if self.codec is Codec.JSON else payload)
                events = wire["events"] if wire.get("type") == "events" else [wire]
                seqs += [event["seq"] for event in events]
        return seqs


def event(seq: int, tier: str = "small") -> dict[str, Any]:
    return {"type": "gift", "seq": seq, "tier": tier, "gift": "rose"}


def crowded_room(viewers: int, tick_seconds: float) -> tuple[LocalRoom, list[KeptFrames]]:
    """A room whose viewers are all past their welcome and catch-up."""
    room = LocalRoom("stage", tick_seconds, asyncio.get_running_loop(), FanoutStats())
    return room, seat(room, viewers, Codec.MSGPACK)


def seat(room: LocalRoom, viewers: int, codec: Codec) -> list[KeptFrames]:
    kept = [KeptFrames(codec) for _ in range(viewers)]
    members = room.by_kind.setdefault((codec, 0), {})
    for writer in kept:
        members[Member(cast(FrameWriter, writer), codec, Identity("v", Role.VIEWER))] = None
    return kept


async def turns_until(done: Callable[[], bool]) -> None:
    """Let the loop turn (each turn writes one slice) until ``done``."""
    for _ in range(10_000):
        if done():
            return
        await asyncio.sleep(0)
    raise AssertionError("never done")


async def until_flushed(room: LocalRoom) -> None:
    await turns_until(lambda: room._next_slice is None)


async def test_a_big_gift_joins_the_flush_under_way() -> None:
    viewers = 3 * FANOUT_SLICE
    room, kept = crowded_room(viewers, tick_seconds=60.0)
    room.deliver(event(1))  # a quiet room: written at once, one slice a turn
    assert room._next_slice is not None
    reached = sum(1 for writer in kept if writer.seqs == [1])
    assert 0 < reached < viewers
    # Events while it is written wait for the tick (a minute here)...
    room.deliver(event(2))
    room.deliver(event(3))
    # ...until a big gift comes: it and what waited before it join this flush.
    room.deliver(event(4, "fullscreen"))
    room.deliver(event(5))  # after the big gift: waits for the tick again
    await until_flushed(room)
    assert all(writer.seqs == [1, 2, 3, 4] for writer in kept)
    assert room._pending == [event(5)]
    room.close()


async def test_a_second_big_gift_joins_the_same_flush() -> None:
    viewers = 3 * FANOUT_SLICE
    room, kept = crowded_room(viewers, tick_seconds=60.0)
    room.deliver(event(1))  # the first slice now, the next at the next turn
    room.deliver(event(2, "fullscreen"))  # joins: one slice to write again
    await asyncio.sleep(0)
    assert room._next_slice is not None
    room.deliver(event(3, "large"))  # joins too: two slices to write again in all
    await until_flushed(room)
    assert all(writer.seqs == [1, 2, 3] for writer in kept)
    assert room._pending == []
    # Each viewer once for the flush, and again for each join that found it
    # written: never once per frame.
    assert sum(writer.writes for writer in kept) == viewers + 2 * FANOUT_SLICE
    room.close()


async def test_a_big_gift_that_would_write_the_room_a_third_time_waits() -> None:
    room, kept = crowded_room(3 * FANOUT_SLICE, tick_seconds=60.0)
    room.deliver(event(1))
    await asyncio.sleep(0)  # two slices of three written
    room.deliver(event(2, "fullscreen"))  # joins: two slices to write again
    await asyncio.sleep(0)  # the slice not yet written, with both
    room.deliver(event(3, "fullscreen"))  # joins: one more, three in all
    await asyncio.sleep(0)
    # A room busy with events: a big gift that may not join keeps the tick.
    for seq in range(4, 4 + EXPRESS_MAX_PENDING):
        room.deliver(event(seq))
    room.deliver(event(4 + EXPRESS_MAX_PENDING, "large"))
    await until_flushed(room)
    assert all(writer.seqs == [1, 2, 3] for writer in kept)
    assert [e["seq"] for e in room._pending] == list(range(4, 5 + EXPRESS_MAX_PENDING))
    room.close()


async def test_joining_a_flush_that_has_passed_everyone_writes_them_once_more() -> None:
    # Two codecs' jobs: the big gift comes while the second is written, so
    # the whole first job and part of the second are written it at the end.
    room, kept = crowded_room(FANOUT_SLICE + 20, tick_seconds=60.0)
    json_kept = seat(room, FANOUT_SLICE, Codec.JSON)
    room.deliver(event(1))
    await turns_until(lambda: room._job > 0 or room._next_slice is None)
    assert room._next_slice is not None, "the flush ended before its second job"
    room.deliver(event(2, "fullscreen"))
    await until_flushed(room)
    everyone = kept + json_kept
    assert all(writer.seqs == [1, 2] for writer in everyone)
    room.close()


async def test_a_flush_of_several_frames_is_one_write_a_viewer() -> None:
    # A storm's tick fills more than one frame: each viewer gets them all in
    # one write, in order (the kernel's cost is per write).
    room, kept = crowded_room(FANOUT_SLICE + 20, tick_seconds=60.0)
    json_kept = seat(room, 20, Codec.JSON)
    room.deliver(event(1))
    await until_flushed(room)
    events = 2 * MAX_EVENTS_PER_FRAME + 1
    for seq in range(2, 2 + events):
        room.deliver(event(seq))
    room.flush()  # the tick, without waiting a minute for it
    await until_flushed(room)
    everyone = kept + json_kept
    assert all(writer.seqs == list(range(1, 2 + events)) for writer in everyone)
    assert all(writer.writes == 2 for writer in everyone)
    assert room.stats.frames == len(everyone) * (1 + 3)
    room.close()


async def test_a_big_gift_in_a_busy_rooms_pause_waits_at_most_half_of_it() -> None:
    tick = 0.4
    room, kept = crowded_room(10, tick_seconds=tick)
    room.deliver(event(1))  # a quiet room: written at once; the pause starts
    await until_flushed(room)
    # A room busy with events: they wait for the pause's end...
    for seq in range(2, 3 + EXPRESS_MAX_PENDING):
        room.deliver(event(seq))
    await asyncio.sleep(tick * 0.75)
    assert all(writer.seqs == [1] for writer in kept)
    # ...and a big gift past the pause's half goes at once, with them.
    big = 3 + EXPRESS_MAX_PENDING
    room.deliver(event(big, "fullscreen"))
    await until_flushed(room)
    assert all(writer.seqs == list(range(1, big + 1)) for writer in kept)
    # In the next pause, a big gift early on goes at the pause's half.
    for seq in range(big + 1, big + 2 + EXPRESS_MAX_PENDING):
        room.deliver(event(seq))
    room.deliver(event(big + 2 + EXPRESS_MAX_PENDING, "large"))
    assert all(writer.seqs[-1] == big for writer in kept)
    await asyncio.sleep(tick * 0.75)
    await until_flushed(room)
    assert all(writer.seqs[-1] == big + 2 + EXPRESS_MAX_PENDING for writer in kept)
    room.close()
