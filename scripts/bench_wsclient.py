"""Lean WebSocket clients for ``scripts/bench``: viewers that count, senders that gift.

A bench must not be limited by its own clients, so these speak just enough
RFC 6455 on bare asyncio protocols: an opening handshake (offering
permessage-deflate like a browser when asked), unmasked server frames parsed
by their headers only (a compressed one inflated as RFC 7692 says, the
server having agreed to no context takeover), pongs for the server's pings,
and masked client frames (with an all-zero mask key: the payload goes out
unchanged).

Every viewer of a giftstream room receives the same frames, so a room frame
is decoded once per process and its event count and ``seq`` range cached by
its bytes; each viewer still checks that the seqs it gets have no gap.

The connections live in worker processes (``ClientPool``), pinned to the
clients' core, driven by the bench over a pipe. Where the bench times the
server to within milliseconds (acks, and a big gift's reach to every viewer)
its clients are ``scripts/bench_clients.c`` instead, which keeps the same
``Tally``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import gc
import math
import multiprocessing
import os
import resource
import time
import zlib
from dataclasses import asdict, dataclass, field
from multiprocessing.connection import Connection
from typing import Any

import msgpack

DEFLATE_OFFER = "permessage-deflate; client_max_window_bits"
OPEN_CONCURRENCY = 50
OPEN_ATTEMPTS = 3
OPEN_TIMEOUT = 60.0
CACHE_LIMIT = 4096
# Gifts that take the whole screen and must reach everyone (the catalogue's tiers).
BIG_TIERS = frozenset({"large", "fullscreen"})
_PONG = 0x8A
_CLOSE = 0x8
# A compressed message's first frame (RFC 7692 section 6), and the tail its
# sender left off.
_RSV1 = 0x40
_SYNC_FLUSH_TAIL = b"\x00\x00\xff\xff"


@dataclass
class Tally:
    """What one worker's connections saw while counting was on."""

    opened: int = 0
    failed: int = 0
    closed: int = 0
    frames: int = 0
    events: int = 0
    gaps: int = 0
    acks: int = 0
    # Handshakes whose answer agreed to permessage-deflate.
    deflated: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    # Big gifts: milliseconds from the event's ``ts`` to each viewer's read of
    # it (one clock: everything runs on this machine), as a histogram.
    reach_ms: dict[int, int] = field(default_factory=dict)
    # Acks: tenths of a millisecond from a gift's send to its ack, as a histogram.
    ack_tenths_ms: dict[int, int] = field(default_factory=dict)
    # Paced sending (the money section's C senders, scripts/bench_clients.c):
    # how late the pacer woke for each 5 ms slice, in tenths
    # of a millisecond. This process's own delay, which is in every ack it timed.
    pace_lag_tenths_ms: dict[int, int] = field(default_factory=dict)
    seconds: float = 0.0

    def error(self, name: str, count: int = 1) -> None:
        self.errors[name] = self.errors.get(name, 0) + count

    def merge(self, other: dict[str, Any]) -> None:
        for name in ("opened", "failed", "closed", "frames", "events", "gaps", "acks", "deflated"):
            setattr(self, name, getattr(self, name) + other[name])
        for name, count in other["errors"].items():
            self.error(name, count)
        for mine, theirs in (
            (self.reach_ms, other["reach_ms"]),
            (self.ack_tenths_ms, other["ack_tenths_ms"]),
            (self.pace_lag_tenths_ms, other["pace_lag_tenths_ms"]),
        ):
            for value, count in theirs.items():
                mine[int(value)] = mine.get(int(value), 0) + count
        self.seconds = max(self.seconds, other["seconds"])


def reach_bucket(elapsed_ms: float) -> int:
    """A reach's histogram bucket: whole milliseconds rounded up, at least 1.

    Truncating would put every sub-millisecond reach (a small room on
    loopback) in bucket 0 and report a p99 of 0 ms, which is no measurement:
    rounded up, a bucket is an upper bound at the histogram's 1 ms resolution.
    """
    return max(1, math.ceil(elapsed_ms))


def percentile(histogram: dict[int, int], fraction: float) -> float | None:
    """The value below which ``fraction`` of a histogram's samples fall; None if empty."""
    total = sum(histogram.values())
    if not total:
        return None
    wanted, seen = fraction * total, 0
    for value in sorted(histogram):
        seen += histogram[value]
        if seen >= wanted:
            return float(value)
    return float(max(histogram))


@dataclass(frozen=True)
class Target:
    host: str
    port: int
    path: str
    subprotocol: str | None = None
    deflate: bool = False
    # Room frames to decode: False for baselines, whose frames carry no events.
    events: bool = False
    # Wait for the first frame (giftstream's welcome) before counting a socket open.
    welcome: bool = False


def handshake_request(target: Target, query: str = "") -> bytes:
    key = base64.b64encode(os.urandom(16)).decode()
    lines = [
        f"GET {target.path}{query} HTTP/1.1",
        f"Host: {target.host}:{target.port}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {key}",
        "Sec-WebSocket-Version: 13",
    ]
    if target.subprotocol:
        lines.append(f"Sec-WebSocket-Protocol: {target.subprotocol}")
    if target.deflate:
        lines.append(f"Sec-WebSocket-Extensions: {DEFLATE_OFFER}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def client_frame(opcode: int, payload: bytes) -> bytes:
    """A masked frame with a zero mask key (RFC 6455 5.3 allows any key)."""
    length = len(payload)
    if length < 126:
        header = bytes((0x80 | opcode, 0x80 | length))
    else:
        header = bytes((0x80 | opcode, 0x80 | 126)) + length.to_bytes(2, "big")
    return header + b"\0\0\0\0" + payload


# A room frame's events, first and last seq, and the ``ts`` of its big gifts.
RoomDigest = tuple[int, int, int, tuple[int, ...]]


class Shared:
    """Per-process state: the tally, the counting switch, the room-frame cache."""

    def __init__(self) -> None:
        self.tally = Tally()
        self.counting = False
        self.started = 0.0
        self.cache: dict[bytes, RoomDigest] = {}

    def room_frame(self, payload: bytes, compressed: bool = False) -> RoomDigest | None:
        """(events, first seq, last seq, big gifts' ts) of a room frame; None for the rest."""
        known = self.cache.get(payload)
        if known is not None:
            return known
        # A message ends with a sync flush, not the stream's end, which
        # zlib.decompress would insist on.
        data = (
            zlib.decompressobj(-15).decompress(payload + _SYNC_FLUSH_TAIL)
            if compressed
            else payload
        )
        message = msgpack.unpackb(data, raw=False)
        kind = message.get("type")
        if kind == "events":
            events = message["events"]
        elif kind in ("gift", "combo_end"):
            events = [message]
        else:
            return None
        big = tuple(e["ts"] for e in events if e.get("tier") in BIG_TIERS)
        known = (len(events), events[0]["seq"], events[-1]["seq"], big)
        if len(self.cache) >= CACHE_LIMIT:
            self.cache.clear()
        self.cache[payload] = known
        return known


class Viewer(asyncio.Protocol):
    """Counts the frames it gets; for giftstream, events too, and seq gaps."""

    def __init__(self, shared: Shared, target: Target, request: bytes) -> None:
        self.shared = shared
        self.target = target
        self.request = request
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.transport: asyncio.Transport | None = None
        self.upgraded = False
        self.head = b""
        self.buffer = b""
        self.last_seq = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.write(self.request)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.ready.done():
            self.ready.set_exception(ConnectionError("closed during the handshake"))

    def data_received(self, data: bytes) -> None:
        if not self.upgraded:
            self.head += data
            end = self.head.find(b"\r\n\r\n")
            if end < 0:
                return
            if not self.head.startswith(b"HTTP/1.1 101"):
                status = self.head.split(b"\r\n", 1)[0].decode(errors="replace")
                self.ready.set_exception(ConnectionError(f"handshake refused: {status}"))
                return
            self.upgraded = True
            if b"permessage-deflate" in self.head[:end].lower():
                self.shared.tally.deflated += 1
            data, self.head = self.head[end + 4 :], b""
            if not self.target.welcome:
                self.ready.set_result(None)
        buffer = self.buffer + data if self.buffer else data
        self.buffer = buffer[self._parse(buffer) :]

    def _parse(self, buffer: bytes) -> int:
        """Handles every complete frame in ``buffer``; returns where the rest starts."""
        position, size = 0, len(buffer)
        while size - position >= 2:
            length = buffer[position + 1] & 0x7F
            start = position + 2
            if length == 126:
                if size - position < 4:
                    break
                length = int.from_bytes(buffer[start : start + 2], "big")
                start += 2
            elif length == 127:
                if size - position < 10:
                    break
                length = int.from_bytes(buffer[start : start + 8], "big")
                start += 8
            end = start + length
            if end > size:
                break
            self.on_frame(buffer[position], buffer, start, end)
            position = end
        return position

    def on_frame(self, first_byte: int, buffer: bytes, start: int, end: int) -> None:
        opcode = first_byte & 0x0F
        if opcode == 0x9:  # ping: answer at once, as browsers do
            assert self.transport is not None
            self.transport.write(client_frame(_PONG & 0x0F, buffer[start:end]))
            return
        if opcode == _CLOSE:
            self.shared.tally.closed += 1
            assert self.transport is not None
            self.transport.close()
            return
        if not self.ready.done():
            self.ready.set_result(None)  # the welcome
            return
        shared = self.shared
        if shared.counting:
            shared.tally.frames += 1
        if self.target.events:
            self.on_message(buffer[start:end], bool(first_byte & _RSV1))

    def on_message(self, payload: bytes, compressed: bool = False) -> None:
        room = self.shared.room_frame(payload, compressed)
        if room is not None:
            self.on_events(*room)

    def on_events(self, count: int, first: int, last: int, big: tuple[int, ...]) -> None:
        fresh = last > self.last_seq
        if self.last_seq and first != self.last_seq + 1 and first > self.last_seq:
            self.shared.tally.gaps += 1
        self.last_seq = max(self.last_seq, last)
        if self.shared.counting:
            self.shared.tally.events += count
            if big and fresh:
                now_ms = time.time() * 1000
                reach = self.shared.tally.reach_ms
                for ts in big:
                    ms = reach_bucket(now_ms - ts)
                    reach[ms] = reach.get(ms, 0) + 1

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(client_frame(_CLOSE, (1000).to_bytes(2, "big")))
            self.transport.close()


class Sender(Viewer):
    """A viewer who sends rose gifts, counts the acks and times each one.

    With a ``window`` it keeps that many in flight (each ack sends the next:
    the most the server can take); with none it sends nothing. (The money
    section's senders, paced too, are ``scripts/bench_clients.c``.)
    """

    def __init__(self, shared: Shared, target: Target, request: bytes, name: str) -> None:
        super().__init__(shared, target, request)
        self.name = name
        self.sent = 0
        self.sending = False
        self.closed_loop = False
        self.sent_at: dict[str, float] = {}

    def go(self, window: int) -> None:
        self.sending = True
        self.closed_loop = window > 0
        for _ in range(window):
            self.send_gift()

    def send_gift(self) -> None:
        if not self.sending or self.transport is None or self.transport.is_closing():
            return
        self.sent += 1
        request_id = f"{self.name}-{self.sent}"
        gift = {"type": "gift", "id": request_id, "gift": "rose", "count": 1}
        self.sent_at[request_id] = time.perf_counter()
        self.transport.write(client_frame(0x2, msgpack.packb(gift)))

    def on_message(self, payload: bytes, compressed: bool = False) -> None:
        room = self.shared.room_frame(payload, compressed)
        if room is not None:
            self.on_events(*room)
            return
        # Answers to this socket alone (acks, errors) go uncompressed.
        message = msgpack.unpackb(payload, raw=False)
        kind = message.get("type")
        tally = self.shared.tally
        if kind == "ack":
            sent_at = self.sent_at.pop(message.get("id"), None)
            if self.shared.counting:
                tally.acks += 1
                if sent_at is not None:
                    tenths = int((time.perf_counter() - sent_at) * 10_000)
                    tally.ack_tenths_ms[tenths] = tally.ack_tenths_ms.get(tenths, 0) + 1
            if self.closed_loop:
                self.send_gift()
        elif kind == "error":
            self.sent_at.pop(message.get("id"), None)
            tally.error(str(message.get("code")))
            if message.get("temporary") and self.closed_loop:
                asyncio.get_running_loop().call_later(0.05, self.send_gift)


# ---------------------------------------------------------------- worker process


def _same(protocol: Viewer) -> Viewer:
    return protocol


def prepare_process(cpu: int | None) -> None:
    """Many sockets: the hard descriptor limit; pinned to the clients' core."""
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})


class Worker:
    """One process's connections, driven by commands from the bench."""

    def __init__(self) -> None:
        self.shared = Shared()
        self.viewers: list[Viewer] = []
        self.senders: list[Sender] = []

    async def open(self, target: Target, queries: list[str], senders: bool) -> dict[str, Any]:
        """One socket per query string; what this call opened (not the total)."""
        loop = asyncio.get_running_loop()
        gate = asyncio.Semaphore(OPEN_CONCURRENCY)
        tally = self.shared.tally
        outcome = Tally()

        async def one(index: int, query: str) -> None:
            for attempt in range(1, OPEN_ATTEMPTS + 1):
                protocol = make(index, query)
                async with gate:
                    try:
                        await loop.create_connection(
                            functools.partial(_same, protocol), target.host, target.port
                        )
                        await asyncio.wait_for(protocol.ready, OPEN_TIMEOUT)
                    except (OSError, TimeoutError) as exc:
                        # A busy server may drop a handshake, as a browser
                        # would see; like a browser, try again.
                        tally.error(f"open, attempt {attempt}: {exc}"[:80])
                        protocol.close()
                        continue
                outcome.opened += 1
                if isinstance(protocol, Sender):
                    self.senders.append(protocol)
                else:
                    self.viewers.append(protocol)
                return
            outcome.failed += 1

        def make(index: int, query: str) -> Viewer:
            request = handshake_request(target, query)
            if senders:
                return Sender(self.shared, target, request, f"p{os.getpid()}s{index}")
            return Viewer(self.shared, target, request)

        deflated = tally.deflated
        await asyncio.gather(*(one(i, q) for i, q in enumerate(queries)))
        # The sockets live until the phase ends: no collection need walk them
        # again, and a full one here (half a second with 5,000 sockets) would
        # count as the server's latency.
        gc.collect()
        gc.freeze()
        return {
            "opened": outcome.opened,
            "failed": outcome.failed,
            "deflated": self.shared.tally.deflated - deflated,
            "errors": dict(tally.errors),
        }

    def start(self, window: int) -> None:
        """Count from now; senders keep ``window`` gifts in flight."""
        self.shared.tally = Tally(deflated=self.shared.tally.deflated)
        self.shared.counting = True
        self.shared.started = time.perf_counter()
        for sender in self.senders:
            sender.go(window)

    def stop(self) -> dict[str, Any]:
        shared = self.shared
        shared.counting = False
        for sender in self.senders:
            sender.sending = False
        shared.tally.seconds = time.perf_counter() - shared.started
        return asdict(shared.tally)

    def peek(self) -> dict[str, Any]:
        return asdict(self.shared.tally)

    def close(self) -> None:
        gc.unfreeze()
        for protocol in [*self.viewers, *self.senders]:
            protocol.close()
        self.viewers.clear()
        self.senders.clear()
        # Sockets still closing report into the old state, not the next phase's.
        self.shared = Shared()


async def _serve_commands(pipe: Connection) -> None:
    loop = asyncio.get_running_loop()
    worker = Worker()
    ready = asyncio.Event()
    loop.add_reader(pipe.fileno(), ready.set)
    while True:
        await ready.wait()
        ready.clear()
        while pipe.poll():
            command, arguments = pipe.recv()
            if command == "exit":
                worker.close()
                await asyncio.sleep(0.2)  # let the close frames go out
                pipe.send(None)
                return
            pipe.send(await _run(worker, command, arguments))


async def _run(worker: Worker, command: str, arguments: dict[str, Any]) -> Any:
    if command == "open":
        return await worker.open(
            Target(**arguments["target"]), arguments["queries"], arguments["senders"]
        )
    if command == "start":
        worker.start(arguments.get("window", 0))
        return None
    if command == "stop":
        return worker.stop()
    if command == "peek":
        return worker.peek()
    if command == "close":
        worker.close()
        await asyncio.sleep(0.2)
        return None
    raise ValueError(f"unknown command {command!r}")


def worker_main(pipe: Connection, cpu: int | None) -> None:
    prepare_process(cpu)
    asyncio.run(_serve_commands(pipe))


class ClientPool:
    """K worker processes holding the bench's client sockets."""

    def __init__(self, processes: int, cpu: int | None) -> None:
        context = multiprocessing.get_context("spawn")
        self.pipes: list[Connection] = []
        self.processes: list[Any] = []
        for _ in range(processes):
            ours, theirs = context.Pipe()
            process = context.Process(target=worker_main, args=(theirs, cpu), daemon=True)
            process.start()
            self.pipes.append(ours)
            self.processes.append(process)

    async def _all(self, command: str, per_worker: list[dict[str, Any]]) -> list[Any]:
        for pipe, arguments in zip(self.pipes, per_worker, strict=True):
            pipe.send((command, arguments))
        return [await asyncio.to_thread(pipe.recv) for pipe in self.pipes]

    async def open(self, target: Target, queries: list[str], senders: bool = False) -> Tally:
        """Open one socket per query string, spread over the workers."""
        k = len(self.pipes)
        shares = [
            {"target": asdict(target), "queries": queries[i::k], "senders": senders}
            for i in range(k)
        ]
        results = await self._all("open", shares)
        total = Tally()
        for result in results:
            total.opened += result["opened"]
            total.failed += result["failed"]
            total.deflated += result["deflated"]
            for name, count in result["errors"].items():
                total.error(name, count)
        return total

    async def start(self, window: int = 0) -> None:
        """Count from now; senders keep ``window`` gifts in flight each."""
        share = {"window": window}
        await self._all("start", [share] * len(self.pipes))

    async def stop(self) -> Tally:
        total = Tally()
        for result in await self._all("stop", [{}] * len(self.pipes)):
            total.merge(result)
        return total

    async def peek(self) -> Tally:
        total = Tally()
        for result in await self._all("peek", [{}] * len(self.pipes)):
            total.merge(result)
        return total

    async def close_sockets(self) -> None:
        await self._all("close", [{}] * len(self.pipes))

    async def shutdown(self) -> None:
        with contextlib.suppress(OSError, EOFError):
            await self._all("exit", [{}] * len(self.pipes))
        for process in self.processes:
            await asyncio.to_thread(process.join, 5)
            if process.is_alive():
                process.kill()
