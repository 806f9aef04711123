"""A room's newcomers, between their welcome and the first event newer than it.

``LocalRoom`` on its own, in a real event loop, with sockets that record
the frames they are given: whether a crowd that just joined is written in
the room's slices, whether slow writes end a slice early, and whether an
event a newcomer's welcome already covered reaches it again. And the hub's
count of the sockets in its rooms, whatever their stage, which the garbage
collector's freezer allows for.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any, cast

import pytest

from server.core.auth import ANONYMOUS
from server.core.protocol import Codec
from server.rooms import hub as rooms
from server.rooms.hub import LocalRoom, Member
from server.rooms.ws_protocol import FrameWriter


class RecordingSocket:
    """Stands where a connection's ``FrameWriter`` does, and keeps what it is sent."""

    def __init__(self) -> None:
        self.frames: list[bytes] = []
        self.deflate_bits = 0  # no permessage-deflate: frames as they are

    def send(self, frame: bytes) -> None:
        self.frames.append(frame)

    def release_with(self, first: bytes) -> None:
        self.frames.append(first)

    def messages(self) -> list[dict[str, Any]]:
        # A JSON frame: two header bytes (payloads under 126 bytes), then the text.
        return [json.loads(frame[2:]) for frame in self.frames]


def gift(seq: int) -> dict[str, Any]:
    return {"type": "gift", "seq": seq, "gift": "rose", "tier": "small"}


class SlowSocket(RecordingSocket):
    """A socket whose writes are slow: one step of a slice of them takes
    twice as long as a slice may."""

    def send(self, frame: bytes) -> None:
        time.sleep(2 * rooms.SLICE_SECONDS / rooms.SLICE_STEP)
        super().send(frame)


def join(room: LocalRoom, floor: int, socket: RecordingSocket | None = None) -> RecordingSocket:
    socket = socket or RecordingSocket()
    member = Member(cast(FrameWriter, socket), Codec.JSON, ANONYMOUS)
    room.add(member)
    room.admit(member, {"type": "welcome"}, [], floor)
    return socket


async def turns(count: int) -> None:
    for _ in range(count):
        await asyncio.sleep(0)


async def test_a_crowd_that_just_joined_is_written_in_the_rooms_slices(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(rooms, "FANOUT_SLICE", 4)
    room = LocalRoom("stormy", 0.0, asyncio.get_running_loop())
    crowd = [join(room, floor=5) for _ in range(10)]
    room.deliver(gift(6))
    # One slice now, the rest on later turns of the loop: the newcomers are
    # written as the room is, not one by one in a single turn.
    assert sum(len(socket.frames) - 1 for socket in crowd) == 4
    await turns(5)
    for socket in crowd:
        assert [m["type"] for m in socket.messages()] == ["welcome", "gift"]
    assert not room.catching_up
    assert len(room) == 10


async def test_slow_writes_end_a_turn_after_the_slice_time_whatever_the_count() -> None:
    # A gift storm's frames are big and slow to write: a turn of the loop
    # stops writing once its time is up, well before the count allows, so
    # that the gifts and acks waiting on the loop do not wait as long.
    room = LocalRoom("stormy", 0.0, asyncio.get_running_loop())
    crowd = [join(room, floor=5, socket=SlowSocket()) for _ in range(2 * rooms.SLICE_STEP + 5)]
    assert len(crowd) < rooms.FANOUT_SLICE

    def written() -> int:
        return sum(len(socket.frames) - 1 for socket in crowd)

    room.deliver(gift(6))
    assert written() == rooms.SLICE_STEP  # the first step took longer than a slice may
    await turns(1)
    assert written() == 2 * rooms.SLICE_STEP
    await turns(3)
    for socket in crowd:
        assert [m["type"] for m in socket.messages()] == ["welcome", "gift"]


async def test_an_event_the_welcome_covered_is_not_sent_again() -> None:
    room = LocalRoom("stormy", 0.0, asyncio.get_running_loop())
    early = join(room, floor=5)
    late = join(room, floor=7)  # its welcome already counted seqs 6 and 7
    for seq in (6, 7, 8):
        room.deliver(gift(seq))
        await turns(3)
    assert [m.get("seq") for m in early.messages()] == [None, 6, 7, 8]
    assert [m.get("seq") for m in late.messages()] == [None, 8]
    assert not room.catching_up


class HoldingSocket(RecordingSocket):
    """Holds what it is sent until its welcome, as a ``FrameWriter`` does."""

    def __init__(self) -> None:
        super().__init__()
        self.held: list[bytes] | None = []

    def send(self, frame: bytes) -> None:
        if self.held is None:
            super().send(frame)
        else:
            self.held.append(frame)

    def release_with(self, first: bytes) -> None:
        held, self.held = self.held or [], None
        self.frames += [first, *held]


async def test_a_viewer_count_reaches_sockets_at_every_stage_a_joining_one_after_its_welcome() -> (
    None
):
    room = LocalRoom("stormy", 0.0, asyncio.get_running_loop())
    settled = join(room, floor=0)
    room.deliver(gift(1))
    await turns(3)  # an event newer than its floor: no longer catching up
    catching_up = join(room, floor=1)
    joining = HoldingSocket()
    member = Member(cast(FrameWriter, joining), Codec.JSON, ANONYMOUS)
    room.add(member)
    settled_count = len(room.by_kind[(Codec.JSON, 0)])
    assert [settled_count, len(room.catching_up), len(room.joining)] == [1, 1, 1]
    room.send_to_all({"type": "viewers", "count": 3})
    room.admit(member, {"type": "welcome"}, [], 1)
    assert [m["type"] for m in settled.messages()] == ["welcome", "gift", "viewers"]
    assert [m["type"] for m in catching_up.messages()] == ["welcome", "viewers"]
    # Its welcome may carry an older count: the newer one follows it.
    assert [m["type"] for m in joining.messages()] == ["welcome", "viewers"]


async def test_the_hub_counts_every_open_socket_whatever_its_stage() -> None:
    async def nothing(room_id: str) -> None:
        return None

    hub = rooms.Hub(0.05, nothing, nothing)
    members = [
        Member(cast(FrameWriter, RecordingSocket()), Codec.JSON, ANONYMOUS) for _ in range(3)
    ]
    first = await hub.join("carol", members[0])  # still joining: no welcome yet
    await hub.join("carol", members[1])
    first.admit(members[1], {"type": "welcome"}, [], 0)  # welcomed, catching up
    await hub.join("dave", members[2])
    assert hub.sockets() == 3
    await hub.leave("carol", members[0])
    assert hub.sockets() == 2
