"""scripts/bench_clients.c counts what a server sends as the bench says it does.

The bench's reach and ack figures come from this C program, so its own
reading is checked here against a small server of known behaviour: room
frames with a gap in their seqs and a big gift of known age to its viewers;
acks, and a temporary refusal, to its senders.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import msgpack
import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
BIG_GIFT_AGE_MS = 50

pytestmark = pytest.mark.skipif(
    shutil.which("gcc") is None, reason="the bench's clients are a C program: needs gcc"
)

Session = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@pytest.fixture(scope="module")
def clients_binary(tmp_path_factory: pytest.TempPathFactory) -> Path:
    binary = tmp_path_factory.mktemp("bench_clients") / "bench_clients"
    source = REPO_ROOT / "scripts" / "bench_clients.c"
    subprocess.run(["gcc", "-O2", "-o", str(binary), str(source)], check=True)
    return binary


def server_frame(message: dict[str, Any]) -> bytes:
    payload: bytes = msgpack.packb(message)
    assert len(payload) < 126
    return bytes((0x82, len(payload))) + payload


async def read_client_frame(reader: asyncio.StreamReader) -> dict[str, Any]:
    """One masked client frame's MessagePack payload."""
    head = await reader.readexactly(2)
    assert head[1] & 0x80, "client frames are masked"
    length = head[1] & 0x7F
    assert length < 126
    mask = await reader.readexactly(4)
    data = await reader.readexactly(length)
    message: dict[str, Any] = msgpack.unpackb(bytes(b ^ mask[i % 4] for i, b in enumerate(data)))
    return message


async def accept_upgrade(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> str:
    """Reads the opening handshake, answers 101; returns the request line."""
    request = await reader.readuntil(b"\r\n\r\n")
    writer.write(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n")
    return request.split(b"\r\n", 1)[0].decode()


@asynccontextmanager
async def serving(session: Session) -> AsyncIterator[int]:
    """A loopback server running ``session`` per connection; on exit each
    session is let finish (its client has gone) and its socket closed."""
    sessions: set[asyncio.Task[Any]] = set()

    async def one(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        sessions.add(task)
        try:
            await session(reader, writer)
        finally:
            writer.close()

    server = await asyncio.start_server(one, HOST, 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await asyncio.wait_for(asyncio.gather(*sessions), 10)
        await server.wait_closed()


class Clients:
    """The C program, driven over its standard input as scripts/bench does."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process

    async def line(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        raw = await asyncio.wait_for(self.process.stdout.readline(), 10)
        assert raw, "bench_clients exited"
        result: dict[str, Any] = json.loads(raw)
        return result

    async def command(self, text: str) -> dict[str, Any]:
        assert self.process.stdin is not None
        self.process.stdin.write(text.encode() + b"\n")
        await self.process.stdin.drain()
        return await self.line()


@asynccontextmanager
async def running(binary: Path, *args: str) -> AsyncIterator[Clients]:
    process = await asyncio.create_subprocess_exec(
        str(binary), *args, stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    try:
        yield Clients(process)
    finally:
        assert process.stdin is not None
        process.stdin.close()
        await asyncio.wait_for(process.wait(), 10)


async def count_frames(
    clients: Clients, viewers: int, go: asyncio.Event, frames: int
) -> dict[str, Any]:
    """Once every viewer is open: count from here, let the server go, and
    return the tally when ``frames`` frames are read (or after 10 s)."""
    assert await clients.line() == {"opened": viewers, "failed": 0}
    assert await clients.command("start") == {"counting": True}
    go.set()
    tally = await clients.command("peek")
    deadline = time.monotonic() + 10
    while tally["frames"] < frames and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
        tally = await clients.command("peek")
    return await clients.command("stop")


async def test_viewers_count_events_find_the_seq_gap_and_time_the_big_gift(
    clients_binary: Path,
) -> None:
    viewers = 3
    go = asyncio.Event()

    async def session(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await accept_upgrade(reader, writer)
        await go.wait()
        now_ms = int(time.time() * 1000)
        for message in (
            {"type": "events", "events": [{"seq": 1}, {"seq": 2}]},
            # seq 3 never comes: one gap for each viewer.
            {"type": "events", "events": [{"seq": 4, "tier": "fullscreen", "ts": now_ms - 50}]},
            {"type": "gift", "seq": 5, "tier": "small", "ts": now_ms},
            {"type": "viewers", "count": viewers},  # not a room event
        ):
            writer.write(server_frame(message))
        await writer.drain()
        await reader.read()  # until the client goes

    async with (
        serving(session) as port,
        running(clients_binary, "-v", str(viewers), HOST, str(port), "/") as clients,
    ):
        tally = await count_frames(clients, viewers, go, frames=4 * viewers)

    assert tally["frames"] == 4 * viewers
    assert tally["events"] == 4 * viewers
    assert tally["gaps"] == viewers
    reach = {int(ms): count for ms, count in tally["reach_ms"].items()}
    assert sum(reach.values()) == viewers  # the big gift only, once per viewer
    assert all(BIG_GIFT_AGE_MS <= ms < 5000 for ms in reach), reach


async def test_a_big_gift_read_within_its_millisecond_counts_as_one_ms(
    clients_binary: Path,
) -> None:
    viewers = 3

    async def session(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await accept_upgrade(reader, writer)
        await go.wait()
        # Stamped a little ahead of the clock: however fast the read, the
        # elapsed time is under a millisecond (negative, even).
        ahead_ms = int(time.time() * 1000) + 5
        event = {"seq": 1, "tier": "fullscreen", "ts": ahead_ms}
        writer.write(server_frame({"type": "events", "events": [event]}))
        await writer.drain()
        await reader.read()

    go = asyncio.Event()
    async with (
        serving(session) as port,
        running(clients_binary, "-v", str(viewers), HOST, str(port), "/") as clients,
    ):
        tally = await count_frames(clients, viewers, go, frames=viewers)

    # Bucket 0 would make a p99 of 0 ms; rounded up, it is the 1 ms bucket.
    assert {int(ms): count for ms, count in tally["reach_ms"].items()} == {1: viewers}


async def test_senders_time_acks_and_send_again_after_a_temporary_refusal(
    clients_binary: Path, tmp_path: Path
) -> None:
    gifts: list[dict[str, Any]] = []
    paths: list[str] = []

    async def session(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        paths.append(await accept_upgrade(reader, writer))
        writer.write(server_frame({"type": "welcome"}))
        refused = False
        while True:
            try:
                gift = await read_client_frame(reader)
            except asyncio.IncompleteReadError:
                return
            gifts.append(gift)
            if not refused:
                refused = True
                reply = {"type": "error", "id": gift["id"], "code": "rate_limited"}
                reply["temporary"] = True
            else:
                reply = {"type": "ack", "id": gift["id"]}
            writer.write(server_frame(reply))

    queries = tmp_path / "queries.txt"
    queries.write_text("?token=a\n?token=b\n")
    async with (
        serving(session) as port,
        running(
            clients_binary, "-s", str(queries), "-w", HOST, str(port), "/ws/rooms/carol"
        ) as clients,
    ):
        assert await clients.line() == {"opened": 2, "failed": 0}
        assert await clients.command("window 1") == {"counting": True}
        await asyncio.sleep(0.3)
        tally = await clients.command("stop")

    assert sorted(path.split()[1] for path in paths) == [
        "/ws/rooms/carol?token=a",
        "/ws/rooms/carol?token=b",
    ]
    assert gifts
    assert all(g["type"] == "gift" and g["gift"] == "rose" and g["count"] == 1 for g in gifts)
    assert tally["errors"] == {"rate_limited": 2}
    # Each sender's first gift was refused and sent again: the acks go on.
    assert tally["acks"] >= 2
    assert sum(tally["ack_tenths_ms"].values()) == tally["acks"]


async def test_with_z_senders_offer_deflate_and_skip_compressed_room_frames(
    clients_binary: Path, tmp_path: Path
) -> None:
    requests: list[bytes] = []

    async def session(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        requests.append(await reader.readuntil(b"\r\n\r\n"))
        writer.write(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n")
        writer.write(server_frame({"type": "welcome"}))
        while True:
            try:
                gift = await read_client_frame(reader)
            except asyncio.IncompleteReadError:
                return
            # A compressed room frame (RSV1) whose bytes are no MessagePack a
            # sender could read: skipped unread. Then the ack, uncompressed.
            writer.write(bytes((0x80 | 0x40 | 0x2, 4)) + b"\xff\x00\xff\x00")
            writer.write(server_frame({"type": "ack", "id": gift["id"]}))

    queries = tmp_path / "queries.txt"
    queries.write_text("?token=a\n")
    async with (
        serving(session) as port,
        running(
            clients_binary, "-s", str(queries), "-v", "1", "-w", "-z", HOST, str(port), "/r"
        ) as clients,
    ):
        assert await clients.line() == {"opened": 2, "failed": 0}
        assert await clients.command("window 1") == {"counting": True}
        await asyncio.sleep(0.3)
        tally = await clients.command("stop")

    offer = b"sec-websocket-extensions: permessage-deflate"
    sender, viewer = sorted(requests, key=lambda request: b"token=a" not in request)
    assert offer in sender.lower()
    assert offer not in viewer.lower()  # the viewers offer nothing
    assert tally["acks"] >= 2
    assert tally["errors"] == {}
    # Each ack came after its compressed frame, both counted as read.
    assert tally["frames"] >= 2 * tally["acks"]
