"""Minors: who may buy coins and send gifts, by age status and the platform's policy.

A user's age status is the operator's word when given (``PUT
/api/admin/users/{id}/age``), else what their token says (its ``age`` or
``adult`` claim), else ``unknown``, which counts as ``unknown_age_as`` says
(adult by default). The operator's words are few and change rarely, while
every gift asks: each process reads them all (one ``HGETALL`` of
``{prefix}:ages``) at most once a second, as it does the suspended users,
so that a gift costs no read of its own. For a minor, ``minor_policy``
decides:

- ``blocked`` (the default, as on TikTok): no recharge and no gift, each
  refused with ``age_restricted``;
- ``limited``: both allowed, gifts within ``minor_daily_limit_coins`` a UTC
  day. That limit is the user's own daily budget, held at most at the
  policy's (lowered at once before a minor's gift when it is higher or
  absent), so that the gift script enforces it atomically like any budget.
"""

from __future__ import annotations

from redis.asyncio import Redis

from server.core.auth import Identity
from server.errors import AgeRestricted
from server.money.budgets import Budgets
from server.money.creators import MINOR, UNKNOWN, operator_ages_key
from server.store.calls import as_text, guarded
from server.tuning.fresh_enough import FreshEnough

BLOCKED, LIMITED = "blocked", "limited"
POLICIES = (BLOCKED, LIMITED)
CACHE_SECONDS = 1.0


class Ages:
    def __init__(
        self,
        redis: Redis,
        key_prefix: str,
        budgets: Budgets,
        minor_policy: str,
        minor_daily_limit: int,
        unknown_age_as: str,
    ) -> None:
        self._redis = redis
        self._key = operator_ages_key(key_prefix)
        self._budgets = budgets
        self.minor_policy = minor_policy
        self.minor_daily_limit = minor_daily_limit
        self.unknown_age_as = unknown_age_as
        # One HGETALL a second however many gifts (FreshEnough).
        self._words = FreshEnough(self._read, CACHE_SECONDS)

    async def _operator_words(self) -> dict[str, str]:
        return await self._words.get()

    async def _read(self) -> dict[str, str]:
        raw = await guarded(self._redis.hgetall(self._key))
        return {as_text(user): as_text(age) for user, age in raw.items()}

    def forget(self) -> None:
        """Read the operator's words afresh next time (this process changed one)."""
        self._words.forget()

    async def status(self, identity: Identity) -> str:
        """adult or minor, as the rules count the user now."""
        assert identity.user is not None
        age = (await self._operator_words()).get(identity.user, UNKNOWN)
        if age == UNKNOWN:
            age = identity.age
        return self.unknown_age_as if age == UNKNOWN else age

    async def require_may_recharge(self, identity: Identity) -> None:
        if identity.user is None:
            return
        if await self.status(identity) == MINOR and self.minor_policy == BLOCKED:
            raise AgeRestricted("minors may not buy coins here")

    async def require_may_send(self, identity: Identity, now_ms: int) -> None:
        """Refuse a minor's gift, or hold their daily limit to the policy's."""
        assert identity.user is not None
        if await self.status(identity) != MINOR:
            return
        if self.minor_policy == BLOCKED:
            raise AgeRestricted("minors may not send gifts here")
        await self._budgets.hold_daily_at_most(identity.user, self.minor_daily_limit, now_ms)
