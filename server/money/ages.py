"""Minors: who may buy coins and send gifts, by age status and the platform's policy.

A user's age status is the operator's word when given (``PUT
/api/admin/users/{id}/age``), else what their token says (its ``age`` or
``adult`` claim), else ``unknown``, which counts as ``unknown_age_as`` says
(adult by default). For a minor, ``minor_policy`` decides:

- ``blocked`` (the default, as on TikTok): no recharge and no gift, each
  refused with ``age_restricted``;
- ``limited``: both allowed, gifts within ``minor_daily_limit_coins`` a UTC
  day. That limit is the user's own daily budget, held at most at the
  policy's (lowered at once before a minor's gift when it is higher or
  absent), so that the gift script enforces it atomically like any budget.
"""

from __future__ import annotations

from server.core.auth import Identity
from server.errors import AgeRestricted
from server.money.budgets import Budgets
from server.money.creators import ADULT, MINOR, UNKNOWN, Creators

BLOCKED, LIMITED = "blocked", "limited"
POLICIES = (BLOCKED, LIMITED)


class Ages:
    def __init__(
        self,
        creators: Creators,
        budgets: Budgets,
        minor_policy: str,
        minor_daily_limit: int,
        unknown_age_as: str,
    ) -> None:
        self._creators = creators
        self._budgets = budgets
        self.minor_policy = minor_policy
        self.minor_daily_limit = minor_daily_limit
        self.unknown_age_as = unknown_age_as

    async def status(self, identity: Identity) -> str:
        """adult or minor, as the rules count the user now."""
        assert identity.user is not None
        profile = await self._creators.load(identity.user)
        age = profile.operator_age if profile is not None else None
        if age is None or age == UNKNOWN:
            age = identity.age
        if age == UNKNOWN and profile is not None and profile.age == ADULT:
            age = ADULT  # an adult claim kept from an earlier token
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
