"""Fan-out: every viewer gets every event, slow viewers are dropped, rooms span processes."""

from __future__ import annotations

import asyncio
import signal
import socket
import time
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from server.core.keys import RoomKeys
from server.rooms.hub import EXPRESS_MAX_PENDING, FANOUT_SLICE
from server.rooms.room_log import pack_event
from tests.client import Api, RoomClient


async def publish_burst(
    redis: Redis, prefix: str, room: str, count: int, size: int, tier: str = "small"
) -> None:
    """Put events on the room's channel as room_event.lua does, fast.

    The seqs are taken from the room's own counter, so that they go on from
    any real gift's and a real gift after the burst comes after it (the
    server drops an event whose seq a viewer has already been sent).
    """
    keys = RoomKeys(prefix, room)
    channel = keys.channel
    padding = "x" * size
    last = await redis.incrby(keys.seq, count)
    for seq in range(last - count + 1, last + 1):
        event = {
            "type": "gift",
            "room": room,
            "sender": "storm",
            "gift": "rose",
            "count": 1,
            "coins": 1,
            "tier": tier,
            "ts": 0,
            "combo": None,
            "note": padding,
        }
        await redis.publish(channel, f"{seq}:".encode() + pack_event(event))


class StalledViewer:
    """A WebSocket client that completes the handshake and then never reads."""

    def __init__(self, host: str, port: int, path: str) -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.sock.connect((host, port))
        self.sock.sendall(
            (
                f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
                "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                "Sec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        response = self.sock.recv(1024)
        assert response.startswith(b"HTTP/1.1 101"), response

    def read_all(self, timeout: float) -> bytes:
        """Read what is left until the server closes the connection."""
        self.sock.settimeout(timeout)
        chunks = []
        while True:
            try:
                chunk = self.sock.recv(65536)
            except (TimeoutError, ConnectionResetError):
                break
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks)


def close_code_in(stream: bytes) -> int | None:
    """The status code of the first close frame (opcode 8) in a server stream."""
    position = 0
    while position + 2 <= len(stream):
        opcode, length = stream[position] & 0x0F, stream[position + 1] & 0x7F
        header = 2
        if length == 126:
            length, header = int.from_bytes(stream[position + 2 : position + 4], "big"), 4
        elif length == 127:
            length, header = int.from_bytes(stream[position + 2 : position + 10], "big"), 10
        if opcode == 0x8:
            start = position + header
            return int.from_bytes(stream[start : start + 2], "big")
        position += header + length
    return None


async def test_a_viewer_who_stops_reading_does_not_delay_the_others(
    small_buffers: Any, redis: Redis
) -> None:
    host, port = small_buffers.http.removeprefix("http://").split(":")
    stalled = StalledViewer(host, int(port), "/ws/rooms/stormy")
    readers = [await RoomClient.open(small_buffers.ws, "stormy", max_size=None) for _ in range(3)]
    for reader in readers:
        await reader.of_type("welcome")
    # 5 MB: more than the kernel's socket buffers (about 3 MB here) can hide.
    count = 5000
    started = time.monotonic()
    await publish_burst(redis, small_buffers.key_prefix, "stormy", count, size=1000)

    async def receive_all(reader: RoomClient) -> list[int]:
        seqs: list[int] = []
        while len(seqs) < count:
            event = await reader.of_type("gift", within=10)
            seqs.append(event["seq"])
        return seqs

    received = await asyncio.gather(*(receive_all(r) for r in readers))
    elapsed = time.monotonic() - started
    for seqs in received:
        assert seqs == list(range(1, count + 1))
    # 5 MB to each reader over loopback: a second or two on a quiet machine.
    # A room that waited on the stalled viewer would not finish at all (it
    # never reads); the bound is loose for machines busy with other work.
    assert elapsed < 10, elapsed
    leftover = await asyncio.to_thread(stalled.read_all, 10.0)
    stalled.sock.close()
    assert close_code_in(leftover) == 4001
    async with httpx.AsyncClient(base_url=small_buffers.http) as http:
        metrics = (await http.get("/metrics")).text
    assert "giftstream_slow_consumers_dropped_total 1.0" in metrics
    for reader in readers:
        await reader.close()


async def test_busy_room_coalesces_events_into_fewer_frames(
    small_buffers: Any, redis: Redis
) -> None:
    viewer = await RoomClient.open(small_buffers.ws, "busy", codec="giftstream.v1.json")
    await viewer.of_type("welcome")
    frames_before = viewer.frames
    count = 300
    await publish_burst(redis, small_buffers.key_prefix, "busy", count, size=10)
    seqs: list[int] = []
    while len(seqs) < count:
        seqs.append((await viewer.of_type("gift"))["seq"])
    assert seqs == list(range(1, count + 1))
    frames = viewer.frames - frames_before
    # A quiet room sends at once; a busy one at most one frame per tick.
    assert frames < count / 5, frames
    await viewer.close()


async def test_two_server_processes_serve_one_room(
    server: Any, second_server: Any, api: Api
) -> None:
    left_token = await api.token("lefty")
    right_api = Api(second_server.http)
    right_token = await right_api.token("righty")
    await api.buy(left_token, "coins_65")
    await right_api.buy(right_token, "coins_65")

    left = await RoomClient.open(server.ws, "carol", left_token)
    right = await RoomClient.open(second_server.ws, "carol", right_token)
    left_welcome = await left.of_type("welcome")
    await right.of_type("welcome")
    assert left_welcome["viewers"] >= 1

    left_ack = await left.gift("from-left", "finger_heart", 1)
    seen_right = await right.next(lambda m: m.get("sender") == "lefty")
    assert seen_right["seq"] == left_ack["seq"]
    right_ack = await right.gift("from-right", "finger_heart", 2)
    seen_left = await left.next(lambda m: m.get("sender") == "righty")
    assert seen_left["seq"] == right_ack["seq"] > left_ack["seq"]
    assert (seen_left["count"], seen_left["coins"]) == (2, 10)
    await left.close()
    await right.close()
    await right_api.aclose()


async def test_viewer_count_spans_processes_and_forgets_a_dead_one(
    start_server: Any,
) -> None:
    alive = await start_server(presence_ttl_seconds=1.5)
    doomed = await start_server(presence_ttl_seconds=1.5)
    first = await RoomClient.open(alive.ws, "counted")
    assert (await first.of_type("welcome"))["viewers"] == 1
    on_doomed = [await RoomClient.open(doomed.ws, "counted") for _ in range(2)]
    for client in on_doomed:
        await client.of_type("welcome")
    second = await RoomClient.open(alive.ws, "counted")
    assert (await second.of_type("welcome"))["viewers"] == 4
    await doomed.stop(signal.SIGKILL)  # no goodbye: its presence must age out
    await asyncio.sleep(2.0)
    third = await RoomClient.open(alive.ws, "counted")
    assert (await third.of_type("welcome"))["viewers"] == 3
    for client in (first, second, third):
        await client.close()


async def test_a_room_written_in_slices_gets_every_event_once_in_order(
    server: Any, redis: Redis
) -> None:
    # More viewers than two slices of a flush, in both codecs: each frame is
    # written over several turns of the server's loop, and events keep coming
    # while it is, big gifts among them, which join a flush under way.
    codecs = ["giftstream.v1.msgpack", "giftstream.v1.json"]
    viewers: list[RoomClient] = []
    for start in range(0, 2 * FANOUT_SLICE + 10, 100):
        size = min(100, 2 * FANOUT_SLICE + 10 - start)
        viewers += await asyncio.gather(
            *(RoomClient.open(server.ws, "crowd", codec=codecs[n % 2]) for n in range(size))
        )
    for viewer in viewers:
        await viewer.of_type("welcome")
    count = 200
    for _ in range(4):  # four bursts, so that some come while a flush is under way
        await publish_burst(redis, server.key_prefix, "crowd", count // 4 - 1, size=20)
        await publish_burst(redis, server.key_prefix, "crowd", 1, size=20, tier="fullscreen")

    async def seqs_of(viewer: RoomClient) -> list[int]:
        return [(await viewer.of_type("gift", within=20))["seq"] for _ in range(count)]

    received = await asyncio.gather(*(seqs_of(viewer) for viewer in viewers))
    assert all(seqs == list(range(1, count + 1)) for seqs in received)
    assert [m for m in await viewers[-1].drain(0.3) if m.get("type") == "gift"] == []
    await asyncio.gather(*(viewer.close() for viewer in viewers))


@pytest.mark.parametrize("crowd", [1, FANOUT_SLICE + 10])
async def test_a_big_gift_does_not_wait_for_the_tick(
    start_server: Any, redis: Redis, crowd: int
) -> None:
    # A tick far longer than the test waits: a small gift that comes right
    # after another waits for it, a fullscreen one does not, and takes the
    # waiting small one with it. With more viewers than a slice, the big
    # gift may also come while the first frame is still being written; it
    # then goes as soon as that write ends, without the tick after it.
    tick_seconds = 4.0
    slow = await start_server(coalesce_tick_ms=int(tick_seconds * 1000))
    viewers: list[RoomClient] = []
    for start in range(0, crowd, 100):
        viewers += await asyncio.gather(
            *(RoomClient.open(slow.ws, "stage") for _ in range(min(100, crowd - start)))
        )
    for viewer in viewers:
        await viewer.of_type("welcome")
    watched = viewers[-1]
    await publish_burst(redis, slow.key_prefix, "stage", 1, size=10)
    assert (await watched.of_type("gift"))["seq"] == 1  # a quiet room: at once
    started = time.monotonic()
    await publish_burst(redis, slow.key_prefix, "stage", 1, size=10)
    await publish_burst(redis, slow.key_prefix, "stage", 1, size=10, tier="fullscreen")
    small = await watched.of_type("gift", within=tick_seconds * 2)
    big = await watched.of_type("gift", within=tick_seconds * 2)
    waited = time.monotonic() - started
    assert (small["seq"], small["tier"], big["seq"], big["tier"]) == (2, "small", 3, "fullscreen")
    assert waited < tick_seconds / 2, waited
    await asyncio.gather(*(viewer.drain(0.3) for viewer in viewers))
    for viewer in viewers:
        assert [m["seq"] for m in viewer.seen if m.get("type") == "gift"] == [1, 2, 3]
    await asyncio.gather(*(viewer.close() for viewer in viewers))


async def test_in_a_room_busy_with_events_a_big_gift_keeps_the_tick(
    start_server: Any, redis: Redis
) -> None:
    # More events waiting than a quiet room has: the big gift goes with the
    # tick's frame, as every other event does, not before.
    tick_seconds = 2.0
    slow = await start_server(coalesce_tick_ms=int(tick_seconds * 1000))
    viewer = await RoomClient.open(slow.ws, "busy-stage")
    await viewer.of_type("welcome")
    await publish_burst(redis, slow.key_prefix, "busy-stage", 1, size=10)
    await viewer.of_type("gift")
    started = time.monotonic()
    await publish_burst(redis, slow.key_prefix, "busy-stage", EXPRESS_MAX_PENDING + 1, size=10)
    await publish_burst(redis, slow.key_prefix, "busy-stage", 1, size=10, tier="fullscreen")
    gifts = [
        await viewer.of_type("gift", within=tick_seconds * 2)
        for _ in range(EXPRESS_MAX_PENDING + 2)
    ]
    waited = time.monotonic() - started
    assert [g["seq"] for g in gifts] == list(range(2, EXPRESS_MAX_PENDING + 4))
    assert gifts[-1]["tier"] == "fullscreen"
    assert waited > tick_seconds / 2, waited
    await viewer.close()
