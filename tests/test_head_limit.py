"""A request head over 16 KiB is refused with 431, however it arrives.

h11 bounds only a head still incomplete in its buffer: a 20 KB head sent in
one write used to be read and answered. Each test writes to a real server
over a raw socket.
"""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

from server.api.http_protocol import MAX_HEAD_BYTES
from tests.conftest import ServerProcess


async def answer(server: ServerProcess, pieces: list[bytes]) -> bytes:
    """Write the pieces one by one until the server answers; all it says until it closes.

    Writing on after the answer would only meet a closed socket, whose reset
    may discard the answer before it is read.
    """
    address = urlsplit(server.http)
    reader, writer = await asyncio.open_connection(address.hostname, address.port)
    try:
        first = asyncio.ensure_future(reader.read(1))
        for piece in pieces:
            done, _ = await asyncio.wait({first}, timeout=0.005)
            if done:
                break
            writer.write(piece)
            await writer.drain()
        return await asyncio.wait_for(first, 10) + await asyncio.wait_for(reader.read(), 10)
    finally:
        writer.close()


def head_of(size: int, path: str = "/livez") -> bytes:
    """A GET whose head is ``size`` bytes long, padded with one header."""
    start = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nX-Pad: ".encode()
    return start + b"a" * (size - len(start) - 4) + b"\r\n\r\n"


async def test_a_head_over_the_limit_in_one_write_gets_431(server: ServerProcess) -> None:
    reply = await answer(server, [head_of(20_000)])
    assert reply.startswith(b"HTTP/1.1 431 ")
    assert reply.endswith(f"request head over {MAX_HEAD_BYTES} bytes".encode())


async def test_a_head_over_the_limit_trickled_in_gets_431(server: ServerProcess) -> None:
    head = head_of(20_000)
    pieces = [head[i : i + 1000] for i in range(0, len(head), 1000)]
    assert (await answer(server, pieces)).startswith(b"HTTP/1.1 431 ")


async def test_a_head_just_under_the_limit_is_served(server: ServerProcess) -> None:
    head = head_of(MAX_HEAD_BYTES)
    # Split across the end-of-head marker, as a slow network may split it.
    reply = await answer(server, [head[:-2], head[-2:]])
    assert reply.startswith(b"HTTP/1.1 200 "), reply[:100]


async def test_a_websocket_handshake_with_a_huge_header_gets_431(server: ServerProcess) -> None:
    upgrade = (
        b"GET /ws/rooms/carol HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
        b"Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nX-Pad: " + b"b" * 17_000 + b"\r\n\r\n"
    )
    assert (await answer(server, [upgrade])).startswith(b"HTTP/1.1 431 ")


async def test_the_server_serves_the_next_client_after_a_refusal(server: ServerProcess) -> None:
    await answer(server, [head_of(40_000)])
    assert (await answer(server, [head_of(200)])).startswith(b"HTTP/1.1 200 ")
