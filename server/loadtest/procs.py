"""``--processes K``: the sockets split over K worker processes, stats merged.

One Python process tops out at a few thousand busy sockets, so a big room
needs several. Workers are spawned (not forked: the parent has threads),
each runs ``worker.run_share`` on its share, and they start sending at one
common monotonic time (the clock is the same for every process on a Linux
machine). Each worker publishes its running totals in shared memory for the
progress line, and sends its ``Stats`` back as a dict at the end.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import queue
import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from multiprocessing.context import SpawnContext, SpawnProcess
from typing import Any

from server.loadtest.config import LoadConfig
from server.loadtest.patterns import GiftMix
from server.loadtest.population import SocketSpec
from server.loadtest.stats import Stats
from server.loadtest.worker import run_share

# connected, acks, events, errors: one slot each per worker.
FIELDS = 4
PUBLISH_SECONDS = 0.25
# The start is set this far ahead, so that every worker has woken up by then.
START_LEAD_SECONDS = 0.5


def totals_of(stats: Stats) -> tuple[int, int, int, int]:
    return (stats.connected, stats.gifts["acked"], stats.events, sum(stats.errors.values()))


@dataclass
class Shared:
    """What the parent and its workers share."""

    totals: Any  # multiprocessing Array of FIELDS int64 per worker
    start_at: Any  # multiprocessing Value (double): the common start
    go: Any  # multiprocessing Event: start_at is set
    results: Any  # multiprocessing Queue: ("ready" | "done" | "failed", index, payload)


class WorkerCoordinator:
    def __init__(self, index: int, shared: Shared) -> None:
        self.index = index
        self.shared = shared

    async def ready(self, stats: Stats) -> float:
        self.shared.results.put(("ready", self.index, stats.connected))
        await asyncio.to_thread(self.shared.go.wait)
        return float(self.shared.start_at.value)


def worker_main(
    index: int, config: LoadConfig, mix: GiftMix, specs: list[SocketSpec], shared: Shared
) -> None:
    """The entry point of a worker process."""
    try:
        stats = asyncio.run(_worker(index, config, mix, specs, shared))
    except BaseException:
        shared.results.put(("failed", index, traceback.format_exc()))
        raise
    shared.results.put(("done", index, stats.to_dict()))


async def _worker(
    index: int, config: LoadConfig, mix: GiftMix, specs: list[SocketSpec], shared: Shared
) -> Stats:
    stats = Stats()

    async def publish() -> None:
        # Running totals for the parent's progress line, connecting included.
        while True:
            for offset, value in enumerate(totals_of(stats)):
                shared.totals[index * FIELDS + offset] = value
            await asyncio.sleep(PUBLISH_SECONDS)

    publisher = asyncio.create_task(publish())
    try:
        await run_share(config, mix, specs, WorkerCoordinator(index, shared), stats)
    finally:
        publisher.cancel()
    for offset, value in enumerate(totals_of(stats)):
        shared.totals[index * FIELDS + offset] = value
    return stats


class WorkerPool:
    """The parent's side: start the workers, release them together, merge their stats."""

    def __init__(
        self, config: LoadConfig, mix: GiftMix, shares: Sequence[list[SocketSpec]]
    ) -> None:
        self.context: SpawnContext = multiprocessing.get_context("spawn")
        self.count = len(shares)
        self.shared = Shared(
            totals=self.context.Array("q", self.count * FIELDS, lock=False),
            start_at=self.context.Value("d", 0.0, lock=False),
            go=self.context.Event(),
            results=self.context.Queue(),
        )
        self.processes: list[SpawnProcess] = [
            self.context.Process(
                target=worker_main,
                args=(i, config, mix, share, self.shared),
                name=f"giftstream-loadtest-{i}",
                daemon=True,
            )
            for i, share in enumerate(shares)
        ]

    def start(self) -> None:
        for process in self.processes:
            process.start()

    def totals(self) -> tuple[int, int, int, int]:
        sums = [0] * FIELDS
        for i in range(self.count * FIELDS):
            sums[i % FIELDS] += int(self.shared.totals[i])
        return (sums[0], sums[1], sums[2], sums[3])

    async def wait_ready(self) -> None:
        await self._collect("ready")

    def release(self) -> float:
        start = time.monotonic() + START_LEAD_SECONDS
        self.shared.start_at.value = start
        self.shared.go.set()
        return start

    async def results(self) -> Stats:
        merged = Stats()
        for payload in await self._collect("done"):
            merged.merge(Stats.from_dict(payload))
        return merged

    async def _collect(self, kind: str) -> list[Any]:
        got: dict[int, Any] = {}
        while len(got) < self.count:
            try:
                message = await asyncio.to_thread(self.shared.results.get, True, 0.5)
            except queue.Empty:
                self._check_alive(got)
                continue
            what, index, payload = message
            if what == "failed":
                raise RuntimeError(f"load-test worker {index} failed:\n{payload}")
            if what == kind:
                got[index] = payload
        return [got[i] for i in range(self.count)]

    def _check_alive(self, answered: dict[int, Any]) -> None:
        for index, process in enumerate(self.processes):
            if index not in answered and not process.is_alive():
                raise RuntimeError(
                    f"load-test worker {index} exited (code {process.exitcode}) without a result"
                )

    def stop(self) -> None:
        for process in self.processes:
            process.join(timeout=5)
            if process.is_alive():
                process.terminate()
