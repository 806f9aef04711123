"""Moving committed gifts' coins to creators' diamonds, exactly once.

The fast path: right after a gift commits, its pending credit is queued here
and a worker settles it within milliseconds. The queue is bounded; when it is
full, or when the process dies before settling, the entry simply stays in
the sender's outbox in Redis, and the sweeper settles it later. Settling
twice is harmless (``settle.lua`` is idempotent by gift key), so neither path
needs to know about the other.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from redis.exceptions import RedisError

from server.errors import Unavailable
from server.money.wallet import PendingCredit, Wallets
from server.store.calls import FailureTally

log = logging.getLogger(__name__)
QUEUE_LIMIT = 10_000
# Credits per settle.lua call while settlement keeps up. Redis runs nothing
# else during a call (about 110 us a credit here), and gifts' calls wait
# behind it: at half the maximum rate, calls of 16 against 64 took the ack
# p99 from 41-54 ms to 29-36 ms (docs/benchmarks.md).
WORKER_BATCH = 16
# ...and when this many wait, settlement is falling behind (one call is out
# at a time): fewer, larger calls then, since each has a fixed cost.
CATCH_UP_BATCH = 64
# The most of the time the sweeper may spend sweeping. A sweep SCANs the
# whole key space, which the idempotency records make large (about three
# keys per gift for a week): 0.5 to 0.8 s a sweep at a million keys here
# (scripts/bench_sweep.py).
# Past the point where the configured interval would give it more, the
# interval stretches instead.
SWEEP_DUTY = 0.05
# ...but a credit left behind waits at most about this long for a sweep.
MAX_SWEEP_DELAY = 300.0


def next_sweep_delay(interval: float, last_sweep_seconds: float) -> float:
    """Seconds to wait before the next sweep: ``interval``, or longer if the
    last sweep took more than ``SWEEP_DUTY`` of that (up to ``MAX_SWEEP_DELAY``)."""
    stretched = min(MAX_SWEEP_DELAY, last_sweep_seconds * (1 - SWEEP_DUTY) / SWEEP_DUTY)
    return max(interval, stretched)


def now_ms() -> int:
    return int(time.time() * 1000)


class Settler:
    def __init__(self, wallets: Wallets, sweep_interval: float, sweep_min_age: float) -> None:
        self._wallets = wallets
        self._queue: asyncio.Queue[PendingCredit] = asyncio.Queue(QUEUE_LIMIT)
        self._sweep_interval = sweep_interval
        self._sweep_min_age_ms = int(sweep_min_age * 1000)
        self.settled = 0

    def queued(self) -> int:
        """Credits waiting for the worker (not those left to the sweeper)."""
        return self._queue.qsize()

    def submit(self, credit: PendingCredit) -> None:
        """Settle soon; if the queue is full the sweeper will find it in Redis."""
        with contextlib.suppress(asyncio.QueueFull):
            self._queue.put_nowait(credit)

    async def _settle_batch(self, credits: list[PendingCredit]) -> None:
        """Settle what the queue holds at once: a room's credits share script calls."""
        try:
            outcomes = await self._wallets.settle_many(credits, now_ms())
        except Exception:  # never let one bad batch stop the worker
            log.exception("settlement failed", extra={"gifts": len(credits)})
            return
        for credit, outcome in zip(credits, outcomes, strict=True):
            if isinstance(outcome, Unavailable):
                log.warning("settlement deferred to the sweeper", extra={"gift": credit.gift_key})
            elif isinstance(outcome, Exception):
                log.error("settlement failed: %s", outcome, extra={"gift": credit.gift_key})
            else:
                self.settled += 1

    async def run_worker(self) -> None:
        while True:
            batch = [await self._queue.get()]
            size = CATCH_UP_BATCH if self._queue.qsize() >= CATCH_UP_BATCH else WORKER_BATCH
            while len(batch) < size and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            await self._settle_batch(batch)

    async def sweep_once(self, min_age_ms: int | None = None) -> int:
        """Settle every outbox entry older than ``min_age_ms``. Returns how many."""
        cutoff = now_ms() - (self._sweep_min_age_ms if min_age_ms is None else min_age_ms)
        done = 0
        async for sender in self._wallets.senders_with_pending_credits():
            try:
                credits = await self._wallets.pending_credits(sender)
            except ValueError:  # a malformed entry: leave it, sweep the others
                log.error("unreadable outbox entry", extra={"sender": sender})
                continue
            due = [credit for credit in credits if credit.ts_ms <= cutoff]
            if due:
                await self._settle_batch(due)
                done += len(due)
        return done

    async def run_sweeper(self) -> None:
        took = 0.0
        while True:
            await asyncio.sleep(next_sweep_delay(self._sweep_interval, took))
            began = time.monotonic()
            try:
                swept = await self.sweep_once()
            except (Unavailable, RedisError):
                FailureTally.count += 1
                log.warning("sweeper could not reach Redis; will retry")
                continue
            except Exception:  # a malformed entry must not stop the sweeping
                log.exception("sweep failed; will retry")
                continue
            finally:
                took = time.monotonic() - began
            if swept:
                log.info("sweeper settled pending credits", extra={"count": swept})
