"""A user's room sockets are capped atomically, across processes.

The cap used to be checked by reading the count before the socket was
counted: 200 handshakes of one user at once were all admitted. These race
real handshakes on two real processes.
"""

from __future__ import annotations

import asyncio
import signal

from server.client import HandshakeRefused
from tests.client import Api, RoomClient
from tests.conftest import ServerProcess, StartServer

CAP = 20


async def try_open(server: ServerProcess, token: str) -> RoomClient | str:
    """An open room socket, or the code its handshake was refused with."""
    try:
        client = await RoomClient.open(server.ws, "carol", token)
    except HandshakeRefused as refused:
        return refused.code
    await client.of_type("welcome")
    return client


async def test_two_hundred_handshakes_at_once_admit_exactly_the_cap(
    start_server: StartServer,
) -> None:
    servers = [await start_server(max_sockets_per_user=CAP) for _ in range(2)]
    api = Api(servers[0].http)
    token = await api.token("racer")
    opened: list[RoomClient] = []
    try:
        results = await asyncio.gather(*(try_open(servers[n % 2], token) for n in range(200)))
        opened += [r for r in results if isinstance(r, RoomClient)]
        refused = [r for r in results if isinstance(r, str)]
        assert len(opened) == CAP
        assert set(refused) == {"too_many_sockets"}
        # Closing one frees one place, and only one.
        await opened.pop().close()
        await asyncio.sleep(0.3)
        again = await asyncio.gather(*(try_open(servers[0], token) for _ in range(5)))
        opened += [r for r in again if isinstance(r, RoomClient)]
        assert [r for r in again if isinstance(r, str)] == ["too_many_sockets"] * 4
        assert len(opened) == CAP
    finally:
        await asyncio.gather(*(client.close() for client in opened), return_exceptions=True)
        await api.aclose()


async def test_a_dead_processs_sockets_stop_counting_after_the_ttl(
    start_server: StartServer,
) -> None:
    doomed = await start_server(max_sockets_per_user=2, presence_ttl_seconds=1)
    survivor = await start_server(max_sockets_per_user=2, presence_ttl_seconds=1)
    api = Api(survivor.http)
    token = await api.token("orphan")
    held = [await try_open(doomed, token) for _ in range(2)]
    assert all(isinstance(client, RoomClient) for client in held)
    assert await try_open(survivor, token) == "too_many_sockets"
    await doomed.stop(signal.SIGKILL)
    await asyncio.sleep(1.5)  # past the time to live of the dead process's count
    revived = await try_open(survivor, token)
    assert isinstance(revived, RoomClient)
    await revived.close()
    await api.aclose()
