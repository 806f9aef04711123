"""Creators and whether their rooms take gifts.

A room is one creator's live stream and its id is the creator's user id.
Gifting is on for a creator who switched it on and has enough followers
(``min_creator_followers``: 1,000 by default). The gift script runs on the sender's shard
and cannot read the creator's keys, so the server checks this just before
it, from a profile cached for a second: a creator who switches gifts off
stops receiving them within that second.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

from server.core.keys import WalletKeys
from server.errors import GiftsDisabled
from server.store.calls import guarded

CACHE_SECONDS = 1.0
# Why a room does not take gifts, as the HTTP API names it to pages.
NOT_A_CREATOR = "not_a_creator"  # no creator profile for the room
GIFTING_OFF = "gifting_off"  # the creator has not switched gifting on
FOLLOWERS_BELOW_MINIMUM = "followers_below_minimum"


@dataclass(frozen=True, slots=True)
class CreatorProfile:
    user: str
    gifts_enabled: bool
    followers: int

    def accepts_gifts(self, min_followers: int) -> bool:
        return self.gifts_enabled and self.followers >= min_followers

    def eligibility_reasons(self, min_followers: int) -> list[str]:
        """Why the creator may not switch gifting on: codes, empty when eligible."""
        return [] if self.followers >= min_followers else [FOLLOWERS_BELOW_MINIMUM]

    def refusal_reasons(self, min_followers: int) -> list[str]:
        """Why a gift to this creator would be refused: codes, empty when it would not."""
        switched = [] if self.gifts_enabled else [GIFTING_OFF]
        return switched + self.eligibility_reasons(min_followers)


class Creators:
    def __init__(self, redis: Redis, key_prefix: str, min_followers: int) -> None:
        self._redis = redis
        self._prefix = key_prefix
        self._min_followers = min_followers
        self._cache: dict[str, tuple[float, CreatorProfile | None]] = {}
        self._loading: dict[str, asyncio.Future[CreatorProfile | None]] = {}
        # Bumped by every save: a read that started before it must not be cached.
        self._saves = 0

    def _key(self, user: str) -> str:
        return WalletKeys(self._prefix, user).creator

    async def save(self, profile: CreatorProfile) -> None:
        mapping: dict[Any, Any] = {
            "gifts_enabled": int(profile.gifts_enabled),
            "followers": profile.followers,
        }
        await guarded(self._redis.hset(self._key(profile.user), mapping=mapping))
        self._saves += 1
        self._cache.pop(profile.user, None)
        self._loading.pop(profile.user, None)

    async def load(self, user: str) -> CreatorProfile | None:
        cached = self._cache.get(user)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        # In a storm thousands of gifts find the cache expired at once: one
        # read serves them all.
        loading = self._loading.get(user)
        if loading is None:
            loading = asyncio.ensure_future(self._fetch(user))
            self._loading[user] = loading
            loading.add_done_callback(lambda done: self._forget_load(user, done))
        return await asyncio.shield(loading)

    def _forget_load(self, user: str, done: asyncio.Future[CreatorProfile | None]) -> None:
        if self._loading.get(user) is done:
            del self._loading[user]
        if not done.cancelled():
            done.exception()  # its awaiters got it; do not report it as lost

    async def _fetch(self, user: str) -> CreatorProfile | None:
        saves = self._saves
        raw = await guarded(self._redis.hgetall(self._key(user)))
        profile = None
        if raw:
            profile = CreatorProfile(
                user=user,
                gifts_enabled=raw.get(b"gifts_enabled") == b"1",
                followers=int(raw.get(b"followers", b"0")),
            )
        if saves == self._saves:
            self._cache[user] = (time.monotonic() + CACHE_SECONDS, profile)
        return profile

    @property
    def min_followers(self) -> int:
        return self._min_followers

    async def refusal_reasons(self, room: str) -> list[str]:
        """Why a gift to ``room`` would be refused now: codes, empty when it would not."""
        profile = await self.load(room)
        if profile is None:
            return [NOT_A_CREATOR]
        return profile.refusal_reasons(self._min_followers)

    async def require_accepting(self, room: str) -> CreatorProfile:
        profile = await self.load(room)
        if profile is None or not profile.accepts_gifts(self._min_followers):
            raise GiftsDisabled(f"the creator of room {room!r} does not accept gifts")
        return profile
