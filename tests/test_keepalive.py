"""Keepalive pings: every room socket is pinged, and one that stops answering is closed.

Against a real server with short intervals, spoken to frame by frame so that
each test decides how its socket answers; then the process-wide ``Keepalive``
on its own, for how it spreads the pings of many sockets over the interval.
"""

from __future__ import annotations

import asyncio
import os
import struct
import time

import pytest

from server.rooms.keepalive import Keepalive, ping_frame
from tests.conftest import StartServer
from tests.test_flood import upgrade_request

PING, PONG, CLOSE = 0x9, 0xA, 0x8
INTERVAL = 0.5
TIMEOUT = 0.5
# From a socket's last ping to its close: the timeout, the tick that checks
# it, and a loaded machine's slack.
CLOSED_WITHIN = INTERVAL + TIMEOUT + 4.0


class FrameByFrame:
    """A room socket read and written one WebSocket frame at a time."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, http: str, room: str) -> FrameByFrame:
        host, port = http.removeprefix("http://").split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(upgrade_request(host, int(port), f"/ws/rooms/{room}"))
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        assert head.startswith(b"HTTP/1.1 101"), head
        return cls(reader, writer)

    async def frame(self, within: float) -> tuple[int, bytes]:
        """The next frame from the server (unmasked, unfragmented): opcode, payload."""
        first, second = await asyncio.wait_for(self.reader.readexactly(2), within)
        length = second & 0x7F
        if length == 126:
            (length,) = struct.unpack("!H", await self.reader.readexactly(2))
        elif length == 127:
            (length,) = struct.unpack("!Q", await self.reader.readexactly(8))
        return first & 0x0F, await self.reader.readexactly(length)

    async def control_frame(self, within: float) -> tuple[int, bytes]:
        """The next ping or close, passing over the room's messages."""
        deadline = time.monotonic() + within
        while True:
            opcode, payload = await self.frame(max(deadline - time.monotonic(), 0.01))
            if opcode in (PING, CLOSE):
                return opcode, payload

    def send(self, opcode: int, payload: bytes) -> None:
        """A client frame, masked as RFC 6455 requires."""
        mask = os.urandom(4)
        masked = bytes(byte ^ mask[i % 4] for i, byte in enumerate(payload))
        self.writer.write(bytes((0x80 | opcode, 0x80 | len(payload))) + mask + masked)

    def close(self) -> None:
        self.writer.close()


async def test_a_socket_that_answers_its_pings_stays_open(start_server: StartServer) -> None:
    server = await start_server(ws_ping_interval_seconds=INTERVAL, ws_ping_timeout_seconds=TIMEOUT)
    viewer = await FrameByFrame.open(server.http, "carol")
    try:
        payloads = []
        started = time.monotonic()
        while time.monotonic() - started < 6 * INTERVAL:
            opcode, payload = await viewer.control_frame(within=CLOSED_WITHIN)
            assert opcode == PING, (opcode, payload)
            payloads.append(payload)
            viewer.send(PONG, payload)
        # One ping an interval, each with a payload of its own.
        assert len(payloads) >= 4, payloads
        assert len(set(payloads)) == len(payloads), payloads
    finally:
        viewer.close()


@pytest.mark.parametrize("answer", ["never", "a pong of the wrong ping"])
async def test_a_socket_that_does_not_answer_is_closed_with_1011(
    start_server: StartServer, answer: str
) -> None:
    server = await start_server(ws_ping_interval_seconds=INTERVAL, ws_ping_timeout_seconds=TIMEOUT)
    viewer = await FrameByFrame.open(server.http, "carol")
    try:
        opcode, payload = await viewer.control_frame(within=CLOSED_WITHIN)
        assert opcode == PING, (opcode, payload)
        if answer != "never":
            viewer.send(PONG, bytes(byte ^ 0xFF for byte in payload))
        opcode, payload = await viewer.control_frame(within=CLOSED_WITHIN)
        assert opcode == CLOSE, (opcode, payload)
        assert struct.unpack("!H", payload[:2])[0] == 1011, payload
        assert b"keepalive ping timeout" in payload, payload
    finally:
        viewer.close()
    # The process goes on: a new socket is welcomed and pinged.
    other = await FrameByFrame.open(server.http, "carol")
    try:
        assert (await other.control_frame(within=CLOSED_WITHIN))[0] == PING
    finally:
        other.close()


async def test_no_pings_when_the_interval_is_zero(start_server: StartServer) -> None:
    server = await start_server(ws_ping_interval_seconds=0)
    viewer = await FrameByFrame.open(server.http, "carol")
    try:
        with pytest.raises(TimeoutError):
            await viewer.control_frame(within=2.0)
    finally:
        viewer.close()


class Recorded:
    """A connection that records the pings it is sent, and answers or not."""

    def __init__(self, name: str, answers: bool) -> None:
        self.name = name
        self.answers = answers
        self.pinged_at: list[float] = []
        self.pending: bytes | None = None
        self.missed: list[bytes] = []
        self.pinged_thrice = asyncio.Event()

    def ping(self, frame: bytes, payload: bytes) -> bool:
        assert frame == ping_frame(payload)
        if self.pending is not None:
            return False
        self.pinged_at.append(time.monotonic())
        if len(self.pinged_at) == 3:
            self.pinged_thrice.set()
        self.pending = None if self.answers else payload
        return True

    def missed_pong(self, payload: bytes) -> None:
        if payload == self.pending:
            self.missed.append(payload)


async def test_the_keepalive_spreads_its_sockets_over_the_interval() -> None:
    loop = asyncio.get_running_loop()
    # An interval of 1 s is two ticks of 0.5 s: each socket is in one of them.
    keepalive = Keepalive(loop, interval=1.0, timeout=0.5)
    sockets = [Recorded(f"s{i}", answers=i != 0) for i in range(8)]
    for connection in sockets:
        keepalive.add(connection)
    left = Recorded("left", answers=True)
    keepalive.add(left)
    keepalive.discard(left)
    answering = sockets[1:]
    try:
        thrice = [connection.pinged_thrice.wait() for connection in answering]
        await asyncio.wait_for(asyncio.gather(*thrice), 10.0)
    finally:
        keepalive.close()
    assert left.pinged_at == []
    # Each answering socket pinged once an interval.
    for connection in answering:
        assert len(connection.pinged_at) >= 3, (connection.name, connection.pinged_at)
        gaps = [b - a for a, b in zip(connection.pinged_at, connection.pinged_at[1:], strict=False)]
        assert all(0.8 < gap < 1.5 for gap in gaps), (connection.name, gaps)
    # Dealt over both ticks: half the sockets first pinged in one, half in the next.
    firsts = sorted(connection.pinged_at[0] for connection in sockets)
    assert firsts[3] - firsts[0] < 0.2, firsts
    assert 0.3 < firsts[4] - firsts[3] < 0.8, firsts
    # The silent socket: its deadline passed, and it was not pinged again
    # while that ping went unanswered.
    silent = sockets[0]
    assert silent.pending is not None
    assert silent.missed == [silent.pending], silent.missed
    assert len(silent.pinged_at) == 1, silent.pinged_at
