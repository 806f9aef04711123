"""One client address may hold only so many connections open, room sockets included.

Before the cap, one address could open connections until the process ran
out of file descriptors. The tests connect from 127.0.0.2 (any 127/8
address reaches the server on Linux), which is not exempt, while 127.0.0.1
(the exempt default, where a local proxy would stand) keeps connecting.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import urlsplit

from tests.client import Api, RoomClient
from tests.conftest import ServerProcess, StartServer

CAP = 4
CAPPED_ADDRESS = "127.0.0.2"


class RawConnection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    async def answer_status(self) -> tuple[int, dict[str, object]]:
        """Ask for /livez; the status and the JSON body of what comes back."""
        self.writer.write(b"GET /livez HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n")
        await self.writer.drain()
        head = await asyncio.wait_for(self.reader.readuntil(b"\r\n\r\n"), 5)
        status = int(head.split()[1])
        match = re.search(rb"content-length: (\d+)", head, re.IGNORECASE)
        assert match is not None, head
        body = await asyncio.wait_for(self.reader.readexactly(int(match.group(1))), 5)
        return status, json.loads(body) if body.startswith(b"{") else {}

    async def close(self) -> None:
        self.writer.close()
        await self.writer.wait_closed()


async def connect_from(server: ServerProcess, source: str) -> RawConnection:
    """A kept-alive HTTP connection from ``source`` that has answered one request."""
    port = urlsplit(server.http).port
    reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))
    return RawConnection(reader, writer)


@asynccontextmanager
async def held(connections: list[RawConnection]) -> AsyncIterator[list[RawConnection]]:
    try:
        yield connections
    finally:
        await asyncio.gather(*(c.close() for c in connections), return_exceptions=True)


async def over_cap_answer(server: ServerProcess) -> tuple[int, dict[str, object]]:
    """What one more connection from the capped address is told."""
    extra = await connect_from(server, CAPPED_ADDRESS)
    try:
        # Written before any request: read without sending one.
        head = await asyncio.wait_for(extra.reader.readuntil(b"\r\n\r\n"), 5)
        body = await asyncio.wait_for(extra.reader.read(), 5)
        return int(head.split()[1]), json.loads(body)
    finally:
        await extra.close()


async def metric(api: Api, name: str) -> float:
    text = (await api.http.get("/metrics")).text
    match = re.search(rf"^{name}(?:_total)? (\S+)$", text, re.MULTILINE)
    assert match is not None, f"{name} not in /metrics"
    return float(match.group(1))


async def test_an_address_over_the_cap_is_answered_429_and_a_closed_one_frees_a_place(
    start_server: StartServer,
) -> None:
    server = await start_server(max_connections_per_ip=CAP)
    api = Api(server.http)
    refused_before = await metric(api, "giftstream_connections_over_address_cap")
    connections = [await connect_from(server, CAPPED_ADDRESS) for _ in range(CAP)]
    async with held(connections):
        for connection in connections:
            assert (await connection.answer_status())[0] == 200
        status, problem = await over_cap_answer(server)
        assert status == 429
        assert problem["code"] == "too_many_connections"
        assert problem["temporary"] is True
        # The exempt address (a local proxy's, the machine's own tools) is not capped.
        assert (await api.http.get("/livez")).status_code == 200
        # Those already in keep being served.
        assert (await connections[0].answer_status())[0] == 200

        await connections.pop().close()
        await asyncio.sleep(0.2)
        connections.append(await connect_from(server, CAPPED_ADDRESS))
        assert (await connections[-1].answer_status())[0] == 200
        assert (await over_cap_answer(server))[0] == 429
    assert await metric(api, "giftstream_connections_over_address_cap") == refused_before + 2
    await api.aclose()


async def test_room_sockets_count_against_the_cap_until_they_close(
    start_server: StartServer,
) -> None:
    server = await start_server(max_connections_per_ip=CAP)
    api = Api(server.http)
    rooms = [
        await RoomClient.open(server.ws, "carol", local_addr=(CAPPED_ADDRESS, 0))
        for _ in range(CAP - 1)
    ]
    try:
        for room in rooms:
            await room.of_type("welcome")
        async with held([await connect_from(server, CAPPED_ADDRESS)]) as last:
            assert (await last[0].answer_status())[0] == 200
            assert (await over_cap_answer(server))[0] == 429
            # A room socket that ends gives its place back (its count went
            # with it from the HTTP protocol to the WebSocket one).
            await rooms.pop().close()
            await asyncio.sleep(0.2)
            rooms.append(await RoomClient.open(server.ws, "carol", local_addr=(CAPPED_ADDRESS, 0)))
            await rooms[-1].of_type("welcome")
            assert (await over_cap_answer(server))[0] == 429
    finally:
        await asyncio.gather(*(room.close() for room in rooms), return_exceptions=True)
    await asyncio.sleep(0.2)
    # All closed: the address may open as many again.
    async with held([await connect_from(server, CAPPED_ADDRESS) for _ in range(CAP)]) as again:
        statuses = [(await c.answer_status())[0] for c in again]
        assert statuses == [200] * CAP
    await api.aclose()
