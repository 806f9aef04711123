"""Floods of sockets that never finish a handshake, or never read.

A real ``giftstream serve`` process takes thousands of hostile sockets of
three kinds at once: TCP connections that never send a byte, WebSocket
upgrade requests cut off half way, and anonymous watchers that complete the
handshake and then never read while the room is busy. Meanwhile real viewers
must still connect and see a paid gift within a generous bound, and the
server's resident memory must grow by less than ``MAX_GROWTH_PER_SOCKET``
per flood socket, and not keep growing once the flood is gone.

Separately, with a short ``handshake_timeout_seconds``, sockets that never
finish their request head (silent, half sent, or trickled a byte at a time)
are closed by the server, while sockets that did finish it are left alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import resource
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from tests.client import Api, RoomClient
from tests.conftest import ServerProcess, StartServer
from tests.test_fanout import publish_burst

ROOM = "carol"
# Sockets of each kind, 2,600 in all. Watchers cost the server a welcome
# each (a few Redis calls), so fewer of them keep the test near 30 s.
SILENT = 1000
HALF_SENT = 1000
MUTE = 600
FLOOD = SILENT + HALF_SENT + MUTE
# What one flood socket may add to the server's resident memory. Measured
# here: about 10-20 KB for a watcher that never reads (uvicorn's WebSocket
# state, our session, its place in the room), a few KB for a bare TCP socket.
MAX_GROWTH_PER_SOCKET = 64 * 1024
# A second, identical flood may add at most this much on top of the first:
# what the allocator keeps is reused; a leak of even 1 KB a socket is not.
MAX_SECOND_FLOOD_GROWTH = 4 * 1024 * 1024
# Generous: the machine is shared, and these are "it still works" bounds.
SERVE_WITHIN = 5.0
CONNECT_BATCH = 200
# Small receive buffers, so that watchers that never read fill up quickly.
MUTE_RCVBUF = 4096


# ---------------------------------------------------------------- raw sockets


def raise_fd_limit(needed: int) -> None:
    """Raise this process's soft limit on open files (servers it starts inherit it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        if hard != resource.RLIM_INFINITY and hard < needed:
            pytest.fail(f"this test needs {needed} open files; the hard limit is {hard}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for process {pid}")


def address(server: ServerProcess) -> tuple[str, int]:
    host, port = server.http.removeprefix("http://").rsplit(":", 1)
    return host, int(port)


def upgrade_request(host: str, port: int, path: str) -> bytes:
    return (
        f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
        "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n"
    ).encode()


async def connect(where: tuple[str, int], rcvbuf: int | None = None) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setblocking(False)
    if rcvbuf is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    try:
        await asyncio.get_running_loop().sock_connect(sock, where)
    except BaseException:
        sock.close()
        raise
    return sock


async def silent(where: tuple[str, int]) -> socket.socket:
    """Connects and never sends a byte."""
    return await connect(where)


async def half_upgrade(where: tuple[str, int]) -> socket.socket:
    """Sends the first half of a WebSocket upgrade request, then nothing."""
    sock = await connect(where)
    request = upgrade_request(*where, f"/ws/rooms/{ROOM}")
    await asyncio.get_running_loop().sock_sendall(sock, request[: len(request) // 2])
    return sock


async def mute_watcher(where: tuple[str, int]) -> socket.socket:
    """An anonymous watcher: completes the handshake, then never reads again."""
    loop = asyncio.get_running_loop()
    sock = await connect(where, rcvbuf=MUTE_RCVBUF)
    await loop.sock_sendall(sock, upgrade_request(*where, f"/ws/rooms/{ROOM}"))
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = await loop.sock_recv(sock, 4096)
        assert chunk, f"closed during the handshake after {head!r}"
        head += chunk
    assert head.startswith(b"HTTP/1.1 101"), head[:200]
    return sock


Opener = Callable[[tuple[str, int]], Awaitable[socket.socket]]


async def open_many(opener: Opener, where: tuple[str, int], count: int) -> list[socket.socket]:
    opened: list[socket.socket] = []
    try:
        for start in range(0, count, CONNECT_BATCH):
            batch = min(CONNECT_BATCH, count - start)
            opened += await asyncio.gather(*(opener(where) for _ in range(batch)))
    except BaseException:
        close_all(opened)
        raise
    return opened


def close_all(socks: list[socket.socket]) -> None:
    for sock in socks:
        sock.close()


def closed_by_peer(sock: socket.socket) -> bool:
    """Whether the server has closed this socket (without reading what it sent)."""
    try:
        return sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
    except BlockingIOError:
        return False
    except OSError:  # reset
        return True


@contextlib.asynccontextmanager
async def room_client(server: ServerProcess, token: str | None = None) -> AsyncIterator[RoomClient]:
    client = await asyncio.wait_for(RoomClient.open(server.ws, ROOM, token), SERVE_WITHIN)
    try:
        await client.of_type("welcome", within=SERVE_WITHIN)
        yield client
    finally:
        await client.close()


# ---------------------------------------------------------------- checks


async def real_viewers_are_served(server: ServerProcess, api: Api, tag: str) -> None:
    """A payer and two new viewers connect; all see the payer's gift in time."""
    alice = await api.token("alice")
    async with (
        room_client(server, alice) as payer,
        room_client(server) as anonymous,
        room_client(server, await api.token("bob")) as bob,
    ):
        started = time.monotonic()
        ack = await payer.gift(f"flood-{tag}", "rose")
        assert ack["type"] == "ack", ack
        for viewer in (payer, anonymous, bob):
            event = await viewer.next(
                lambda m: m.get("type") == "gift" and m.get("seq") == ack["seq"],
                within=SERVE_WITHIN,
            )
            assert event["sender"] == "alice"
        assert time.monotonic() - started < SERVE_WITHIN
    async with httpx.AsyncClient(base_url=server.http, timeout=SERVE_WITHIN) as http:
        assert (await http.get("/readyz")).status_code == 200


async def settled_rss(pid: int, quiet: float = 1.0) -> int:
    """RSS once the server has had a moment to finish what it was doing."""
    await asyncio.sleep(quiet)
    return rss_bytes(pid)


async def flood(
    server: ServerProcess, api: Api, redis: Redis, tag: str
) -> tuple[int, list[socket.socket]]:
    """Open the three kinds of flood, make the room busy, check real viewers. RSS, sockets."""
    where = address(server)
    socks: list[socket.socket] = []
    try:
        socks += await open_many(silent, where, SILENT)
        socks += await open_many(half_upgrade, where, HALF_SENT)
        socks += await open_many(mute_watcher, where, MUTE)
        # A busy room: 200 events of about 1 KB each reach every mute
        # watcher, more than its small receive buffer holds.
        assert server.key_prefix is not None
        await publish_burst(redis, server.key_prefix, ROOM, 200, size=1000)
        await real_viewers_are_served(server, api, tag)
        rss = await settled_rss(server.process.pid)
        # Every flood socket is still held open by the server at this point.
        still_open = [sock for sock in socks if not closed_by_peer(sock)]
        assert len(still_open) == len(socks), f"{len(socks) - len(still_open)} were closed"
    except BaseException:
        close_all(socks)
        raise
    return rss, socks


# ---------------------------------------------------------------- tests


async def test_a_flood_of_idle_half_open_and_mute_sockets_leaves_real_viewers_served(
    start_server: StartServer, redis: Redis
) -> None:
    raise_fd_limit(4 * FLOOD)
    # A deadline longer than the test: here the flood sockets must stay open
    # while real viewers are served (the deadline has a test of its own).
    server = await start_server(handshake_timeout_seconds=300)
    pid = server.process.pid
    api = Api(server.http)
    try:
        # Warm up every path the flood takes before the baseline.
        await real_viewers_are_served(server, api, "warm-up")
        baseline = await settled_rss(pid)

        first_peak, socks = await flood(server, api, redis, "first")
        close_all(socks)
        await real_viewers_are_served(server, api, "after-first")
        after_first = await settled_rss(pid)

        second_peak, socks = await flood(server, api, redis, "second")
        close_all(socks)
        await real_viewers_are_served(server, api, "after-second")
        after_second = await settled_rss(pid)
    finally:
        await api.aclose()

    per_socket = (first_peak - baseline) / FLOOD
    print(
        f"RSS MB: baseline {baseline / 2**20:.1f}, first flood {first_peak / 2**20:.1f} "
        f"({per_socket / 1024:.1f} KB a socket), after it {after_first / 2**20:.1f}, "
        f"second flood {second_peak / 2**20:.1f}, after it {after_second / 2**20:.1f}"
    )
    assert per_socket < MAX_GROWTH_PER_SOCKET, per_socket
    assert second_peak - first_peak < MAX_SECOND_FLOOD_GROWTH, (first_peak, second_peak)
    assert after_second - after_first < MAX_SECOND_FLOOD_GROWTH, (after_first, after_second)


async def trickle(sock: socket.socket, request: bytes, every: float) -> None:
    """Sends a request head one byte at a time until the server hangs up."""
    loop = asyncio.get_running_loop()
    for byte in request[:-4]:
        try:
            await loop.sock_sendall(sock, bytes([byte]))
        except OSError:
            return
        await asyncio.sleep(every)


async def wait_all_closed(socks: list[socket.socket], within: float) -> list[socket.socket]:
    """The sockets still open after ``within`` seconds (none, if all closed sooner)."""
    deadline = time.monotonic() + within
    while True:
        still_open = [sock for sock in socks if not closed_by_peer(sock)]
        if not still_open or time.monotonic() > deadline:
            return still_open
        await asyncio.sleep(0.1)


async def test_sockets_that_never_finish_their_request_head_are_closed(
    start_server: StartServer,
) -> None:
    timeout = 1.0
    server = await start_server(handshake_timeout_seconds=timeout)
    where = address(server)
    api = Api(server.http)
    socks: list[socket.socket] = []
    trickler: asyncio.Task[None] | None = None
    try:
        async with room_client(server) as watcher:
            opened_at = time.monotonic()
            socks += await open_many(silent, where, 100)
            socks += await open_many(half_upgrade, where, 100)
            slow = await connect(where)
            socks.append(slow)
            request = upgrade_request(*where, f"/ws/rooms/{ROOM}")
            trickler = asyncio.create_task(trickle(slow, request, every=0.1))
            # Not before the deadline...
            await asyncio.sleep(timeout / 4)
            if time.monotonic() - opened_at < timeout * 0.75:
                assert not any(closed_by_peer(sock) for sock in socks)
            # ...but soon after it, trickled bytes or not.
            still_open = await wait_all_closed(socks, within=timeout + SERVE_WITHIN)
            assert not still_open, f"{len(still_open)} of {len(socks)} sockets still open"
            # Sockets that finished their handshake are not cut off by it.
            await asyncio.sleep(timeout)
            await real_viewers_are_served(server, api, "deadline")
            ping: dict[str, Any] = {"type": "ping", "id": "still-here"}
            await watcher.send(ping)
            assert (await watcher.of_type("pong", within=SERVE_WITHIN))["id"] == "still-here"
    finally:
        if trickler is not None:
            trickler.cancel()
            await asyncio.gather(trickler, return_exceptions=True)
        close_all(socks)
        await api.aclose()
