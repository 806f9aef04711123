"""One line a second while the run goes: elapsed, acks/s, events/s, errors, memory."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from server.loadtest.memory import MemoryLog

# connected, acks, events, errors: running totals over every process.
Totals = Callable[[], tuple[int, int, int, int]]


class Progress:
    def __init__(
        self,
        totals: Totals,
        sockets: int,
        memory: MemoryLog,
        say: Callable[[str], None],
        enabled: bool,
    ) -> None:
        self.totals = totals
        self.sockets = sockets
        self.memory = memory
        self.say = say
        self.enabled = enabled
        self.start: float | None = None
        self.end: float | None = None

    async def run(self) -> None:
        previous = self.totals()
        then = time.monotonic()
        while True:
            await asyncio.sleep(1.0)
            current, now = self.totals(), time.monotonic()
            self._tick(previous, current, now - then, now)
            previous, then = current, now

    def _tick(
        self,
        previous: tuple[int, int, int, int],
        current: tuple[int, int, int, int],
        interval: float,
        now: float,
    ) -> None:
        connected, acks, events, errors = current
        if self.start is None or now < self.start:
            if self.enabled:
                self.say(f"connecting  {connected:,}/{self.sockets:,} sockets open")
            return
        elapsed = now - self.start
        rss = self.memory.sample(int(elapsed))
        if not self.enabled:
            return
        phase = "draining " if self.end is not None and now > self.end else ""
        memory = f"  server RSS {rss / 2**20:,.0f} MB" if rss else ""
        self.say(
            f"{phase}{elapsed:6.1f} s  acks/s {(acks - previous[1]) / interval:8,.0f}"
            f"  events/s {(events - previous[2]) / interval:10,.0f}"
            f"  errors {errors:,}{memory}"
        )
