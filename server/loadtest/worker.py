"""One asyncio loop running its share of the sockets, start to end.

The phases: open every socket (a bounded number of handshakes at a time),
tell the coordinator and wait for the common start, send for the run's
duration, then drain: wait for the senders' last answers, close the
senders, wait until the rooms are quiet and every combo seen has ended (a
combo window after its last gift), and close the watchers. The same code
runs in the main process or in each worker process; only the
``Coordinator`` differs.
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Callable, Sequence
from typing import Protocol

from server.loadtest.clients import Context, RoomSocket, Sender
from server.loadtest.config import LoadConfig
from server.loadtest.patterns import GiftMix
from server.loadtest.population import SocketSpec
from server.loadtest.stats import Stats

# The generator's own loop is timed by sleeps this long while it sends.
LAG_PROBE_SECONDS = 0.005
# The rooms count as drained when no event came for this long.
QUIET_SECONDS = 1.0
POLL_SECONDS = 0.05


class Coordinator(Protocol):
    async def ready(self, stats: Stats) -> float:
        """Report this share connected; the monotonic time at which sending starts."""


async def run_share(
    config: LoadConfig,
    mix: GiftMix,
    specs: Sequence[SocketSpec],
    coordinator: Coordinator,
    stats: Stats,
) -> Stats:
    """Run ``specs``' sockets through every phase, measuring into ``stats``."""
    ctx = Context(config=config, mix=mix, stats=stats)
    sockets = [Sender(s, ctx) if s.kind == "sender" else RoomSocket(s, ctx) for s in specs]
    opened = await _open_all(ctx, sockets)
    # What the open sockets hold lives to the end of the run: kept out of the
    # collector's full passes, which took 40-55 ms with the sockets in them
    # and held back this share's sends and reads alike.
    gc.collect()
    gc.freeze()
    try:
        return await _run_opened(config, ctx, opened, coordinator)
    finally:
        gc.unfreeze()


async def _run_opened(
    config: LoadConfig, ctx: Context, opened: list[RoomSocket], coordinator: Coordinator
) -> Stats:
    start = await coordinator.ready(ctx.stats)
    ctx.t0 = start
    end = start + config.duration
    senders = [s for s in opened if isinstance(s, Sender)]
    watchers = [s for s in opened if not isinstance(s, Sender)]
    rate = config.rate / config.senders if config.senders else 0.0
    cpu_before = time.process_time()
    probe = asyncio.create_task(_time_own_loop(ctx.stats, start, end))
    await asyncio.gather(*(s.send_loop(start, end, rate) for s in senders))
    # Watchers only: no send loop to wait for, the window still has to pass.
    await asyncio.sleep(max(0.0, end - time.monotonic()))
    await probe
    ctx.stats.cpu_seconds = time.process_time() - cpu_before
    drain_deadline = end + config.drain_seconds
    await _until(lambda: all(s.settled for s in senders), drain_deadline)
    await asyncio.gather(*(s.close() for s in senders))
    ctx.last_event = max(ctx.last_event, time.monotonic())
    await _until(
        lambda: time.monotonic() - ctx.last_event >= QUIET_SECONDS and not ctx.cache.combos_open,
        drain_deadline,
    )
    await asyncio.gather(*(s.close() for s in watchers))
    for socket in opened:
        socket.contribute()
    return ctx.stats


async def _time_own_loop(stats: Stats, start: float, end: float) -> None:
    """How late this loop wakes from short sleeps from ``start`` to ``end``:
    when it is late, so is every send and every read, and the latencies
    measured here are partly the generator's."""
    await asyncio.sleep(max(0.0, start - time.monotonic()))
    while (now := time.monotonic()) < end:
        await asyncio.sleep(LAG_PROBE_SECONDS)
        stats.loop_lag.add(max(0.0, time.monotonic() - now - LAG_PROBE_SECONDS))


async def _open_all(ctx: Context, sockets: list[RoomSocket]) -> list[RoomSocket]:
    # A bounded number of handshakes at once: a burst of thousands of SYNs
    # overflows the server's accept queue and measures retransmits instead.
    slots = asyncio.Semaphore(ctx.config.connect_concurrency)
    began = time.monotonic()

    async def open_one(socket: RoomSocket) -> bool:
        async with slots:
            ok = await socket.open()
        if ok:
            ctx.stats.connected += 1
        else:
            ctx.stats.connect_failed += 1
        return ok

    results = await asyncio.gather(*(open_one(s) for s in sockets))
    ctx.stats.connect_seconds = time.monotonic() - began
    return [s for s, ok in zip(sockets, results, strict=True) if ok]


async def _until(condition: Callable[[], bool], deadline: float) -> None:
    # Polled: the conditions span many sockets and the clock, no one event says it.
    while True:
        if condition() or time.monotonic() >= deadline:
            return
        await asyncio.sleep(POLL_SECONDS)


class InProcess:
    """The coordinator when everything runs in the main process: start at once."""

    def __init__(self) -> None:
        self.started = asyncio.get_running_loop().create_future()

    async def ready(self, stats: Stats) -> float:
        start = time.monotonic()
        self.started.set_result(start)
        return start
