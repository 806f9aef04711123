"""A closed connection's transport is freed by reference counting, not left for the collector."""

from __future__ import annotations

import asyncio
import gc
import weakref

from server.tuning.transports import break_transport_cycle


class _Closer(asyncio.Protocol):
    def __init__(self, breaks_cycle: bool) -> None:
        self.breaks_cycle = breaks_cycle
        self.transport: asyncio.BaseTransport | None = None
        loop = asyncio.get_running_loop()
        self.made: asyncio.Future[weakref.ref[asyncio.BaseTransport]] = loop.create_future()
        self.lost: asyncio.Future[None] = loop.create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self.made.set_result(weakref.ref(transport))

    def connection_lost(self, exc: Exception | None) -> None:
        if self.breaks_cycle:
            break_transport_cycle(self.transport)
        self.transport = None
        self.lost.set_result(None)


async def _closed_transport_survives(breaks_cycle: bool) -> bool:
    """Whether a server-side transport outlives its closed connection (GC off)."""
    closer = _Closer(breaks_cycle)
    server = await asyncio.get_running_loop().create_server(lambda: closer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    _reader, writer = await asyncio.open_connection("127.0.0.1", port)
    ours = await closer.made
    writer.close()
    await writer.wait_closed()
    await closer.lost
    await asyncio.sleep(0.05)  # asyncio drops its last references on the next turns
    server.close()
    await server.wait_closed()
    return ours() is not None


async def test_breaking_the_cycle_frees_the_transport_without_a_collection() -> None:
    gc.disable()
    try:
        assert await _closed_transport_survives(breaks_cycle=False)  # the cycle is real
        assert not await _closed_transport_survives(breaks_cycle=True)
    finally:
        gc.enable()
