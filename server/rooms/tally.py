"""Counts that span processes: a room's viewers, a user's open sockets.

Each process keeps its own count of a thing (a room, a user) in one field of
that thing's hash, with the time it last said so: ``"<count>|<ms>"``. The
total is the sum of the fields that are fresh. A process refreshes its
fields every third of the time-to-live, so the fields of a process that died
without saying goodbye go stale within the time-to-live, stop counting, and
are deleted by whoever counts next.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable

from redis.asyncio import Redis

from server.errors import Unavailable
from server.store.calls import as_text, guarded
from server.store.scripts import ScriptCall

log = logging.getLogger(__name__)


def _now_ms() -> int:
    return int(time.time() * 1000)


class ProcessTally:
    """One process's share of per-thing counts, and the totals over all processes."""

    def __init__(
        self,
        redis: Redis,
        key_of: Callable[[str], str],
        process_id: str,
        ttl_seconds: float,
        admit_script: ScriptCall | None = None,
    ) -> None:
        self._redis = redis
        self._admit_script = admit_script
        self._key = key_of
        self.process_id = process_id
        self._ttl_ms = int(ttl_seconds * 1000)
        self._local: dict[str, int] = {}
        # Writes of one thing's count go one at a time, each with the latest
        # value: two writes in flight on two connections could land in
        # either order and leave an old count behind.
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}  # lock, its users
        self._dirty: set[str] = set()

    async def _write(self, thing: str, count: int) -> None:
        key = self._key(thing)
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.hset(key, self.process_id, f"{count}|{_now_ms()}")
            # The hash goes by itself once no live process writes it: the
            # fields of a process that died no longer hold it up.
            pipe.pexpire(key, 3 * self._ttl_ms)
            await guarded(pipe.execute())

    async def admit(self, thing: str, cap: int) -> int | None:
        """Count one more of ``thing`` if the total over every process stays
        within ``cap``: None when counted, else the total already held.

        The check and the count are one script call (``tally_admit.lua``), so
        that handshakes racing on one process or several cannot overshoot.
        """
        if self._admit_script is None:
            raise RuntimeError("this tally was made without the admission script")
        async with self._locked(thing):
            count = self._local.get(thing, 0) + 1
            admitted, total = await guarded(
                self._admit_script(
                    keys=[self._key(thing)],
                    args=[self.process_id, count, _now_ms(), self._ttl_ms, cap],
                )
            )
            if not admitted:
                return int(total)
            self._local[thing] = count
            return None

    async def change(self, thing: str, delta: int) -> None:
        count = self._local.get(thing, 0) + delta
        if count > 0:
            self._local[thing] = count
        else:
            self._local.pop(thing, None)
        self._dirty.add(thing)
        await self._publish(thing)

    @contextlib.asynccontextmanager
    async def _locked(self, thing: str) -> AsyncIterator[None]:
        """Holds ``thing``'s lock: its writes and admissions go one at a time."""
        lock, users = self._locks.get(thing) or (asyncio.Lock(), 0)
        self._locks[thing] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[thing]
            if users == 1:
                del self._locks[thing]  # nobody else holds or awaits it
            else:
                self._locks[thing] = (lock, users - 1)

    async def _publish(self, thing: str) -> None:
        """Write this process's latest count of ``thing``, unless a write since did."""
        async with self._locked(thing):
            if thing not in self._dirty:
                return  # the write before ours carried our change too
            self._dirty.discard(thing)
            count = self._local.get(thing, 0)
            try:
                if count > 0:
                    await self._write(thing, count)
                else:
                    await guarded(self._redis.hdel(self._key(thing), self.process_id))
            except BaseException:
                self._dirty.add(thing)  # the next change or refresh writes it
                raise

    async def count(self, thing: str) -> int:
        fields = await guarded(self._redis.hgetall(self._key(thing)))
        fresh_after = _now_ms() - self._ttl_ms
        total, stale = 0, []
        for process, value in fields.items():
            count, _, seen_ms = as_text(value).partition("|")
            if seen_ms.isdigit() and int(seen_ms) >= fresh_after:
                total += int(count)
            else:
                stale.append(process)
        if stale:
            await guarded(self._redis.hdel(self._key(thing), *stale))
        return total

    async def refresh_forever(self) -> None:
        """Say every third of the time-to-live that this process is still here."""
        while True:
            await asyncio.sleep(self._ttl_ms / 3000)
            try:
                for thing in list(self._local):
                    self._dirty.add(thing)
                    await self._publish(thing)
            except Unavailable:
                log.warning("presence not refreshed; Redis unavailable")

    async def clear(self) -> None:
        for thing in list(self._local):
            await guarded(self._redis.hdel(self._key(thing), self.process_id))
        self._local.clear()
