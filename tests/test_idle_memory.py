"""What an idle room socket keeps, and the small waits that replace asyncio's.

A process holds tens of thousands of idle sockets, so what each keeps after
its handshake is what the process weighs (``scripts/bench --only memory``
measures it). These tests check the pieces one at a time: the queue and flag
of ``server/rooms/slim_waits.py`` behave as asyncio's do where uvicorn uses
them, and a connection served by ``GiftstreamWebSocketProtocol`` in a real
uvicorn server lets go of its handshake once it is open.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest
import uvicorn
from websockets.asyncio.client import connect

from server.commands.serving import WS_PROTOCOL
from server.rooms.slim_waits import Flag, ReceiveQueue
from server.rooms.ws_protocol import WRITER_EXTENSION, FrameWriter, frame_bytes

# ---------------------------------------------------------------- the queue


async def test_the_queue_hands_items_over_in_order_and_get_waits_for_one() -> None:
    queue: ReceiveQueue[int] = ReceiveQueue()
    queue.put_nowait(1)
    queue.put_nowait(2)
    assert (queue.qsize(), queue.empty()) == (2, False)
    assert [await queue.get(), await queue.get()] == [1, 2]
    assert queue.empty()
    waiting = asyncio.ensure_future(queue.get())
    await asyncio.sleep(0)
    assert not waiting.done()
    queue.put_nowait(3)
    assert await asyncio.wait_for(waiting, 1) == 3


async def test_a_cancelled_get_takes_nothing_and_passes_a_woken_item_on() -> None:
    queue: ReceiveQueue[str] = ReceiveQueue()
    first = asyncio.ensure_future(queue.get())
    second = asyncio.ensure_future(queue.get())
    await asyncio.sleep(0)
    queue.put_nowait("only")  # wakes the first getter...
    first.cancel()  # ...which is cancelled before it runs
    assert await asyncio.wait_for(second, 1) == "only"
    assert first.cancelled()
    assert queue.empty()
    # A getter cancelled while waiting leaves nothing behind.
    third = asyncio.ensure_future(queue.get())
    await asyncio.sleep(0)
    third.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await third
    queue.put_nowait("later")
    assert await queue.get() == "later"


# ---------------------------------------------------------------- the flag


async def test_the_flag_lets_waiters_through_once_set_and_holds_them_once_cleared() -> None:
    flag = Flag()
    assert not flag.is_set()
    waiters = [asyncio.ensure_future(flag.wait()) for _ in range(3)]
    await asyncio.sleep(0)
    assert not any(w.done() for w in waiters)
    flag.set()
    assert await asyncio.wait_for(asyncio.gather(*waiters), 1) == [True, True, True]
    assert await flag.wait()  # set: no wait at all
    flag.clear()
    held = asyncio.ensure_future(flag.wait())
    await asyncio.sleep(0.01)
    assert not held.done()
    held.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await held
    flag.set()
    assert await asyncio.wait_for(flag.wait(), 1)


# ---------------------------------------------------------------- a real connection


class OpenSockets:
    """An ASGI app that accepts every WebSocket, sends one frame through its
    writer and keeps the writers of the sockets it holds open."""

    def __init__(self) -> None:
        self.writers: list[FrameWriter] = []
        self.opened = asyncio.Event()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        assert scope["type"] == "websocket"
        await receive()  # websocket.connect
        await send({"type": "websocket.accept"})
        writer: FrameWriter = scope["extensions"][WRITER_EXTENSION]
        writer.release_with(frame_bytes("hello"))
        self.writers.append(writer)
        self.opened.set()
        while (await receive())["type"] != "websocket.disconnect":
            pass


@contextlib.asynccontextmanager
async def serving(app: OpenSockets) -> AsyncIterator[int]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()  # a client may connect at once: the kernel holds it until uvicorn accepts
    config = uvicorn.Config(app, ws=WS_PROTOCOL, log_config=None, lifespan="on")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        yield sock.getsockname()[1]
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)


@pytest.mark.parametrize("subprotocol", [None, "giftstream.v1.json"])
async def test_an_open_connection_lets_go_of_its_handshake(subprotocol: str | None) -> None:
    app = OpenSockets()
    async with serving(app) as port:
        headers = {f"X-Padding-{n}": "x" * 40 for n in range(10)}
        async with connect(
            f"ws://127.0.0.1:{port}/ws",
            additional_headers=headers,
            subprotocols=[subprotocol] if subprotocol else None,  # type: ignore[list-item]
        ) as client:
            assert await asyncio.wait_for(client.recv(), 5) == "hello"
            await asyncio.wait_for(app.opened.wait(), 5)
            writer = app.writers[0]
            protocol = writer._protocol()
            assert protocol is not None
            assert protocol.handshake_complete
            # Neither uvicorn's copies of the request and response nor the
            # request's headers, which the library's parser still points at.
            assert not hasattr(protocol, "request")
            assert not hasattr(protocol, "response")
            parser: Any = protocol.conn.parser
            parsed = parser.gi_frame.f_locals["request"]
            assert dict(parsed.headers) == {}
            assert protocol.scope["headers"], "the app's scope keeps them for the app to decide"
            # The welcome went through the backlog; empty, the deque is gone.
            assert writer._backlog is None
            assert writer.direct
            # Small, not asyncio's.
            assert isinstance(protocol.queue, ReceiveQueue)
            assert isinstance(protocol.writable, Flag)
