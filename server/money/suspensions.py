"""Users the operator has suspended: they may not send, receive or withdraw.

The set of suspended users is small and changes rarely, while the check
runs on every gift: each process reads the whole set at most once a second
(one ``SMEMBERS`` however many gifts, ``FreshEnough``), so a suspension
takes hold within a second and a read, as a creator's switch does
(``creators.py``). The flag is also in
the user's profile hash (``suspended``), which the creator's side reads.
"""

from __future__ import annotations

from redis.asyncio import Redis

from server.core.keys import WalletKeys
from server.errors import Suspended
from server.store.calls import as_text, guarded
from server.tuning.fresh_enough import FreshEnough

CACHE_SECONDS = 1.0


class Suspensions:
    def __init__(self, redis: Redis, key_prefix: str) -> None:
        self._redis = redis
        self._prefix = key_prefix
        self._key = f"{key_prefix}:suspended"
        self._users = FreshEnough(self._read, CACHE_SECONDS)

    async def _current(self) -> frozenset[str]:
        return await self._users.get()

    async def _read(self) -> frozenset[str]:
        members = await guarded(self._redis.smembers(self._key))
        return frozenset(as_text(member) for member in members)

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
        self._users.forget()  # this process sees it at once

    async def is_suspended(self, user: str) -> bool:
        return user in await self._current()
