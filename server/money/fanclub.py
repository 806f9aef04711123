"""Fan clubs: a viewer joins a creator's club with coins, and their level grows.

Joining is a money movement like a gift (``fanclub.lua``): the club's price
is paid as a gift of ``fan_club`` to the creator, credited to them at their
share by the settlement like any gift paid through ``gift.lua``, and the
wallet records the membership in the same call. A member's level comes
from the coins counted in that field (``server/core/fan_levels.py``).

The gift path shows the sender's level on every gift event and checks a
gift's ``fan_level_required``. It takes the level from a per-process cache
that each paid gift's script reply refreshes (the script returns the
member's coins after the gift), so a storm's gifts cost no extra Redis
read; a sender unseen for ``LEVEL_CACHE_SECONDS`` is read once. A level can
only rise, so a stale level is never too high, and a refusal is checked
again afresh.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from redis.asyncio import Redis

from server.core.catalog import Gift, Tier
from server.core.fan_levels import Membership, level_for, membership_field
from server.core.keys import WalletKeys
from server.errors import AlreadyMember, BadField
from server.money.settlement import Settler
from server.money.wallet import GiftOrder, PendingCredit, Wallets
from server.store.calls import as_text, guarded
from server.store.scripts import Scripts

FAN_CLUB_GIFT_ID = "fan_club"
# How long a process trusts a level it read or was told by a gift's reply
# (levels only rise): a sender's own gifts keep it fresh, so it is read from
# Redis only after this long without one.
LEVEL_CACHE_SECONDS = 10.0
# Entries the cache holds before it is emptied (a bound, not a tuning).
LEVEL_CACHE_MOST = 100_000


class FanClubs:
    def __init__(
        self,
        redis: Redis,
        scripts: Scripts,
        wallets: Wallets,
        settler: Settler,
        prefix: str,
        price_coins: int,
        thresholds: Sequence[int],
        share_percent: int,
    ) -> None:
        self._redis = redis
        self._scripts = scripts
        self._wallets = wallets
        self._settler = settler
        self._prefix = prefix
        self.price_coins = price_coins
        self.thresholds = tuple(thresholds)
        self._share = share_percent
        self._cache: dict[tuple[str, str], tuple[float, int]] = {}

    def level_of(self, membership: Membership | None) -> int:
        return 0 if membership is None else level_for(membership.coins, self.thresholds)

    async def join(
        self, user: str, creator: str, request_id: str, stream_id: str, now_ms: int
    ) -> dict[str, Any]:
        """Pay the price and join, once per request id; AlreadyMember for a
        member's new request (nothing paid)."""
        fee = Gift(FAN_CLUB_GIFT_ID, "Fan club", self.price_coins, Tier.SMALL, False)
        order = GiftOrder(user, request_id, fee, 1, creator, creator, now_ms, stream_id)
        keys, args = self._wallets.gift_call(order)
        reply = await guarded(self._scripts.fanclub(keys=keys, args=args))
        status = as_text(reply[0])
        if status == "already_member":
            raise AlreadyMember(f"already a member of {creator}'s fan club")
        if status == "request_id_taken":
            raise BadField("that request_id paid for a gift: a join needs its own")
        outcome = self._wallets.gift_outcome(order, reply)
        if not outcome.duplicate:
            credit = PendingCredit.of(user, creator, outcome, self._share, now_ms, stream_id)
            self._settler.submit(credit)
        membership = await self.membership(user, creator)
        level = self.level_of(membership)
        self._cache[(user, creator)] = (time.monotonic(), level)
        return {
            "room": creator,
            "member": membership is not None,
            "joined": membership.joined_ms if membership else None,
            "fan_level": level,
            "fan_coins": membership.coins if membership else 0,
            "coins": outcome.cost,
            "balance": outcome.balance,
            "duplicate": outcome.duplicate,
        }

    async def membership(self, user: str, creator: str) -> Membership | None:
        raw = await guarded(
            self._redis.hget(WalletKeys(self._prefix, user).wallet, membership_field(creator))
        )
        return Membership.parse(as_text(raw) if raw is not None else None)

    async def level(self, user: str, creator: str, *, fresh: bool = False) -> int:
        """The user's level in the creator's club, through the cache unless ``fresh``."""
        key = (user, creator)
        cached = self._cache.get(key)
        now = time.monotonic()
        if cached is not None and not fresh and now - cached[0] < LEVEL_CACHE_SECONDS:
            return cached[1]
        level = self.level_of(await self.membership(user, creator))
        if len(self._cache) >= LEVEL_CACHE_MOST:
            self._cache.clear()
        self._cache[key] = (now, level)
        return level

    async def levels(self, creator: str, users: Sequence[str]) -> list[int]:
        """Several users' levels in one creator's club, read afresh."""
        if not users:
            return []
        pipe = self._redis.pipeline(transaction=False)
        for user in users:
            pipe.hget(WalletKeys(self._prefix, user).wallet, membership_field(creator))
        raw: list[Any] = await guarded(pipe.execute())
        return [self.level_of(Membership.parse(as_text(r) if r is not None else None)) for r in raw]

    def counted(self, user: str, creator: str, fan_coins: int | None) -> None:
        """A paid gift's reply: the sender's coins in the creator's club now
        (None: not a member), so that their next gift shows the level unread."""
        level = 0 if fan_coins is None else level_for(fan_coins, self.thresholds)
        self._cache[(user, creator)] = (time.monotonic(), level)
