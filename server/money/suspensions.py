"""Users the operator has suspended: they may not send, receive or withdraw.

The set of suspended users is small and changes rarely, while the check
runs on every gift: each process reads the whole set at most once a second
(one ``SMEMBERS`` however many gifts), so a suspension takes hold within a
second, as a creator's switch does (``creators.py``). The flag is also in
the user's profile hash (``suspended``), which the creator's side reads.
"""

from __future__ import annotations

import asyncio
import time

from redis.asyncio import Redis

from server.core.keys import WalletKeys
from server.errors import Suspended
from server.store.calls import as_text, guarded

CACHE_SECONDS = 1.0


class Suspensions:
    def __init__(self, redis: Redis, key_prefix: str) -> None:
        self._redis = redis
        self._prefix = key_prefix
        self._key = f"{key_prefix}:suspended"
        self._users: frozenset[str] = frozenset()
        self._fresh_until = 0.0
        self._loading: asyncio.Future[frozenset[str]] | None = None

    async def _current(self) -> frozenset[str]:
        if time.monotonic() < self._fresh_until:
            return self._users
        if self._loading is None:  # one read serves every gift that finds the set stale
            self._loading = asyncio.ensure_future(self._read())
            self._loading.add_done_callback(self._loaded)
        return await asyncio.shield(self._loading)

    async def _read(self) -> frozenset[str]:
        members = await guarded(self._redis.smembers(self._key))
        return frozenset(as_text(member) for member in members)

    def _loaded(self, done: asyncio.Future[frozenset[str]]) -> None:
        self._loading = None
        if not done.cancelled() and done.exception() is None:
            self._users = done.result()
            self._fresh_until = time.monotonic() + CACHE_SECONDS

    async def require_not_suspended(self, user: str) -> None:
        if user in await self._current():
            raise Suspended(f"{user} is suspended")

    async def set(self, user: str, suspended: bool) -> None:
        """Suspend or reinstate ``user``: the set gifts read, and the profile field."""
        profile = WalletKeys(self._prefix, user).creator
        async with self._redis.pipeline(transaction=False) as pipe:
            if suspended:
                pipe.sadd(self._key, user)
            else:
                pipe.srem(self._key, user)
            pipe.hset(profile, "suspended", int(suspended))
            await guarded(pipe.execute())
        self._fresh_until = 0.0  # this process sees it at once

    async def is_suspended(self, user: str) -> bool:
        return user in await self._current()
