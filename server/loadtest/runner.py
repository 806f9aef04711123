"""A whole run: set up, connect, send, drain, and the report.

With ``--processes 1`` everything runs in this process's asyncio loop;
otherwise the sockets are split over worker processes (``procs``) and this
process only sets up, shows progress, samples the server's memory and
merges the results.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from server.loadtest import report as reporting
from server.loadtest.config import LoadConfig
from server.loadtest.memory import MemoryLog
from server.loadtest.patterns import GiftMix
from server.loadtest.population import Population, prepare
from server.loadtest.procs import WorkerPool, totals_of
from server.loadtest.progress import Progress
from server.loadtest.serverproc import find_server_pid
from server.loadtest.stats import Stats
from server.loadtest.worker import InProcess, run_share
from server.ops.socket_faults import raise_file_limit


async def run(config: LoadConfig, say: Callable[[str], None]) -> dict[str, Any]:
    """Run the load test that ``config`` describes; the report (see ``report.build``)."""
    # Each socket is a file.
    limit = raise_file_limit()
    population = await prepare(config, say)
    sockets = len(population.sockets)
    if sockets + 64 > limit:
        say(f"warning: {sockets:,} sockets and only {limit:,} open files allowed")
    mix = GiftMix.from_catalog(population.catalog)
    memory = MemoryLog(pid=config.server_pid or find_server_pid(config.base_url))
    memory.before = memory.read()
    say(
        f"connecting {sockets:,} sockets"
        + (f" from {config.processes} processes" if config.processes > 1 else "")
    )
    if config.processes == 1:
        stats = await _in_process(config, mix, population, memory, say)
    else:
        stats = await _in_workers(config, mix, population, memory, say)
    return reporting.build(config, stats, memory, sockets)


def _progress(
    config: LoadConfig, totals: Any, sockets: int, memory: MemoryLog, say: Callable[[str], None]
) -> Progress:
    return Progress(totals, sockets, memory, say, enabled=config.progress)


async def _in_process(
    config: LoadConfig,
    mix: GiftMix,
    population: Population,
    memory: MemoryLog,
    say: Callable[[str], None],
) -> Stats:
    stats = Stats()
    progress = _progress(config, lambda: totals_of(stats), len(population.sockets), memory, say)
    coordinator = InProcess()
    share = asyncio.create_task(run_share(config, mix, population.sockets, coordinator, stats))
    ticker = asyncio.create_task(progress.run())
    try:
        await asyncio.wait({coordinator.started, share}, return_when=asyncio.FIRST_COMPLETED)
        if coordinator.started.done():
            _started(config, coordinator.started.result(), progress, memory)
        await share
        memory.end = memory.read()
    finally:
        ticker.cancel()
        share.cancel()
    return stats


def _started(config: LoadConfig, start: float, progress: Progress, memory: MemoryLog) -> None:
    memory.connected = memory.read()
    progress.start = start
    progress.end = start + config.duration


async def _in_workers(
    config: LoadConfig,
    mix: GiftMix,
    population: Population,
    memory: MemoryLog,
    say: Callable[[str], None],
) -> Stats:
    pool = WorkerPool(config, mix, population.split(config.processes))
    progress = _progress(config, pool.totals, len(population.sockets), memory, say)
    ticker = asyncio.create_task(progress.run())
    pool.start()
    try:
        await pool.wait_ready()
        start = pool.release()
        _started(config, start, progress, memory)
        await asyncio.sleep(max(0.0, start + config.duration - time.monotonic()))
        stats = await pool.results()
        memory.end = memory.read()
    finally:
        ticker.cancel()
        pool.stop()
    return stats
