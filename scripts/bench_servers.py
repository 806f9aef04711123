"""The Python baseline servers that ``scripts/bench`` measures giftstream against.

Each one listens on a free loopback port, prints ``PORT <n>`` and runs until
its standard input is closed (the bench closes it), so that none outlives
the bench. Fan-out servers wait for ``--viewers`` WebSocket connections,
write ``--rounds`` times one frame to every connection, and print one JSON
line: frames written, wall seconds and CPU seconds of that loop alone.

    raw-fanout        accepts the handshake itself and writes one pre-built
                      frame to each connection's transport: the fastest
                      Python path
    raw-reach         the same loop, one round per line read from standard
                      input, each a room frame of one fullscreen gift stamped
                      with the time of its first write: the floor for a big
                      gift's reach in Python
    broadcast-fanout  the ``websockets`` library's server and ``broadcast()``
    idle-websockets   the bare ``websockets`` server holding idle connections,
                      compression off or permessage-deflate on
    idle-uvicorn      uvicorn's default WebSocket implementation (with its
                      default permessage-deflate) holding idle connections

    python scripts/bench_servers.py raw-fanout --viewers 10000 --rounds 30 --cpu 0
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import json
import os
import resource
import socket
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import msgpack
from websockets.asyncio.server import ServerConnection, broadcast, serve

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
HOST = "127.0.0.1"
# Let readers take their handshake answers before the clock starts.
SETTLE_SECONDS = 0.5


def prepare_process(cpu: int | None) -> None:
    """As many descriptors as allowed; pinned to one core if asked."""
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})


def payload_bytes(size: int) -> bytes:
    return bytes(ord("a") + i % 26 for i in range(size))


def binary_frame(payload: bytes) -> bytes:
    """An unmasked binary frame (server to client); payloads here are short."""
    if len(payload) > 125:
        raise ValueError("payloads up to 125 bytes")
    return bytes((0x82, len(payload))) + payload


def report(frames: int, wall: float, cpu: float) -> None:
    line = {"frames": frames, "failed": 0, "seconds": wall, "cpu_seconds": cpu}
    print(json.dumps(line), flush=True)


async def until_stdin_closes() -> None:
    await asyncio.to_thread(sys.stdin.buffer.read)


def timed(rounds: Callable[[], int]) -> None:
    wall, cpu = time.perf_counter(), time.process_time()
    frames = rounds()
    report(frames, time.perf_counter() - wall, time.process_time() - cpu)


# ---------------------------------------------------------------- raw fan-out


class RawHandshake(asyncio.Protocol):
    """Answers the opening handshake, then only holds the transport."""

    def __init__(self, opened: list[asyncio.Transport], on_open: Callable[[], None]) -> None:
        self.opened = opened
        self.on_open = on_open
        self.request = b""
        self.handshaken = False
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        if self.handshaken or self.transport is None:
            return  # a client frame after the handshake: nothing to do
        self.request += data
        if b"\r\n\r\n" not in self.request:
            return
        key = b""
        for line in self.request.split(b"\r\n"):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"sec-websocket-key":
                key = value.strip()
        accept = base64.b64encode(hashlib.sha1(key + GUID).digest())
        self.transport.write(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n"
        )
        self.handshaken = True
        self.request = b""
        self.opened.append(self.transport)
        self.on_open()


async def raw_server(
    viewers: int,
) -> tuple[asyncio.Server, list[asyncio.Transport], asyncio.Event]:
    """A listening raw server (its port printed), its transports as they open,
    and an event set once ``viewers`` are open."""
    loop = asyncio.get_running_loop()
    transports: list[asyncio.Transport] = []
    everyone = asyncio.Event()

    def on_open() -> None:
        if len(transports) >= viewers:
            everyone.set()

    server = await loop.create_server(
        lambda: RawHandshake(transports, on_open), HOST, 0, backlog=4096
    )
    print(f"PORT {server.sockets[0].getsockname()[1]}", flush=True)
    return server, transports, everyone


async def raw_fanout(viewers: int, rounds: int, payload: int) -> None:
    server, transports, everyone = await raw_server(viewers)
    frame = binary_frame(payload_bytes(payload))

    def write_rounds() -> int:
        for _ in range(rounds):
            for transport in transports:
                transport.write(frame)
        return rounds * len(transports)

    await _wait_then(everyone, lambda: timed(write_rounds))
    server.close()


def reach_frame(seq: int, payload: int) -> bytes:
    """A room frame of one fullscreen gift, ``ts`` now, padded to ``payload`` bytes."""
    event: dict[str, Any] = {"seq": seq, "tier": "fullscreen", "ts": int(time.time() * 1000)}
    event["pad"] = ""
    bare = len(msgpack.packb({"type": "events", "events": [event]}))
    event["pad"] = "a" * max(0, payload - bare - 1)  # str8 from 32 bytes: one more
    return binary_frame(msgpack.packb({"type": "events", "events": [event]}))


async def raw_reach(viewers: int, rounds: int, payload: int) -> None:
    """``raw-fanout``'s loop, one stamped round per line on standard input."""
    server, transports, everyone = await raw_server(viewers)
    await everyone.wait()
    wall, cpu = time.perf_counter(), time.process_time()
    written = 0
    for seq in range(1, rounds + 1):
        if not await asyncio.to_thread(sys.stdin.buffer.readline):
            break
        frame = reach_frame(seq, payload)
        for transport in transports:
            transport.write(frame)
        written += len(transports)
    report(written, time.perf_counter() - wall, time.process_time() - cpu)
    while await asyncio.to_thread(sys.stdin.buffer.readline):
        pass
    server.close()


async def _wait_then(everyone: asyncio.Event, run: Callable[[], None]) -> None:
    waiting = asyncio.ensure_future(everyone.wait())
    closed = asyncio.ensure_future(until_stdin_closes())
    done, _ = await asyncio.wait({waiting, closed}, return_when=asyncio.FIRST_COMPLETED)
    if waiting in done:
        await asyncio.sleep(SETTLE_SECONDS)
        run()
        await closed
    waiting.cancel()


# ---------------------------------------------------------------- websockets


async def broadcast_fanout(viewers: int, rounds: int, payload: int) -> None:
    connections: set[ServerConnection] = set()
    everyone = asyncio.Event()

    async def handler(connection: ServerConnection) -> None:
        connections.add(connection)
        if len(connections) >= viewers:
            everyone.set()
        await connection.wait_closed()

    message = payload_bytes(payload)

    def broadcast_rounds() -> int:
        for _ in range(rounds):
            broadcast(connections, message)
        return rounds * len(connections)

    async with serve(handler, HOST, 0, compression=None, ping_interval=None, backlog=4096) as srv:
        print(f"PORT {_port(srv.sockets)}", flush=True)
        await _wait_then(everyone, lambda: timed(broadcast_rounds))


def _port(sockets: Any) -> int:
    port: int = next(iter(sockets)).getsockname()[1]
    return port


async def idle_websockets(compression: str) -> None:
    async def handler(connection: ServerConnection) -> None:
        await connection.wait_closed()

    chosen = None if compression == "off" else "deflate"
    async with serve(handler, HOST, 0, compression=chosen, ping_interval=None, backlog=4096) as srv:
        print(f"PORT {_port(srv.sockets)}", flush=True)
        await until_stdin_closes()


# ---------------------------------------------------------------- uvicorn


async def idle_app(scope: dict[str, Any], receive: Callable[[], Awaitable[Any]], send: Any) -> None:
    """An ASGI app that accepts every WebSocket and waits for it to close."""
    if scope["type"] != "websocket":
        return
    while True:
        message = await receive()
        if message["type"] == "websocket.connect":
            await send({"type": "websocket.accept"})
        elif message["type"] == "websocket.disconnect":
            return


async def idle_uvicorn() -> None:
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((HOST, 0))
    # uvicorn's defaults (ws="auto", permessage-deflate on), minus its logs.
    config = uvicorn.Config(idle_app, lifespan="off", log_level="warning", backlog=4096)
    server = uvicorn.Server(config)
    serving = asyncio.ensure_future(server.serve(sockets=[sock]))
    while not server.started:  # noqa: ASYNC110 (uvicorn offers no event for this)
        await asyncio.sleep(0.02)
    print(f"PORT {sock.getsockname()[1]}", flush=True)
    await until_stdin_closes()
    server.should_exit = True
    server.force_exit = True
    await serving


# ---------------------------------------------------------------- command line


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "kind",
        choices=["raw-fanout", "raw-reach", "broadcast-fanout", "idle-websockets", "idle-uvicorn"],
    )
    parser.add_argument("--viewers", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--payload", type=int, default=120, help="frame payload bytes (<126)")
    parser.add_argument("--compression", choices=["off", "deflate"], default="off")
    parser.add_argument("--cpu", type=int, default=None, help="pin to this core")
    args = parser.parse_args()
    prepare_process(args.cpu)
    if args.kind == "raw-fanout":
        asyncio.run(raw_fanout(args.viewers, args.rounds, args.payload))
    elif args.kind == "raw-reach":
        asyncio.run(raw_reach(args.viewers, args.rounds, args.payload))
    elif args.kind == "broadcast-fanout":
        asyncio.run(broadcast_fanout(args.viewers, args.rounds, args.payload))
    elif args.kind == "idle-websockets":
        asyncio.run(idle_websockets(args.compression))
    else:
        asyncio.run(idle_uvicorn())


if __name__ == "__main__":
    main()
