"""Creators: who may switch gifting on, and whether their rooms take gifts.

A room is one creator's live stream and its id is the creator's user id.
A creator is **eligible** for gifts with at least ``min_creator_followers``
followers (1,000 by default), 18 or older (``creators_must_be_adult``) and
not suspended; only an eligible creator may switch gifting on.

A room takes a gift while its creator's gifting is on, the creator still
has the followers, is not suspended and is not known to be a minor. Age
is checked in full when gifting is switched on: a creator whose age is
merely unknown now (a profile from before ages were kept) goes on
receiving. The gift script runs on the sender's shard and cannot read the
creator's keys, so the server checks this just before it, from a profile
cached for a second: a creator who switches gifts off stops receiving them
within that second.

A creator's age is the operator's word when given (``age``: adult, minor or
unknown), else what the creator's own token said (``adult_claimed``, kept
whenever the creator uses their profile).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

from server.core.auth import Identity
from server.core.keys import WalletKeys
from server.errors import (
    GiftError,
    GiftingOff,
    GiftsDisabled,
    NotEligible,
    RoomOffline,
    Suspended,
)
from server.store.calls import as_text, guarded
from server.store.scripts import ScriptCall
from server.tuning.fresh_enough import FreshEnough

CACHE_SECONDS = 1.0
# Why a room does not take gifts, or a creator may not switch them on, as
# the HTTP API names it to pages.
NOT_A_CREATOR = "not_a_creator"  # no creator profile for the room
GIFTING_OFF = "gifting_off"  # the creator has not switched gifting on
FOLLOWERS_BELOW_MINIMUM = "followers_below_minimum"
NOT_ADULT = "not_adult"
SUSPENDED = "suspended"
OPERATOR_REFUSED = "operator_refused"  # the operator forced the creator ineligible
ROOM_OFFLINE = "room_offline"  # the creator is not live

ADULT, MINOR, UNKNOWN = "adult", "minor", "unknown"


@dataclass(frozen=True, slots=True)
class Eligibility:
    """The rules a creator is held to (settings)."""

    min_followers: int
    must_be_adult: bool = True


@dataclass(frozen=True, slots=True)
class CreatorProfile:
    user: str
    gifts_enabled: bool
    followers: int
    # adult, minor or unknown: the operator's word, else the creator's token's.
    age: str = UNKNOWN
    suspended: bool = False
    # The operator's override of the rules: True eligible whatever the
    # followers and age, False never; None, the rules decide.
    forced: bool | None = None
    # The live stream's id (streams.py); None while the creator is not live.
    stream_id: str | None = None

    def _rule_reasons(self, rules: Eligibility, age_unknown_counts: bool) -> list[str]:
        if self.forced is True:
            return []
        if self.forced is False:
            return [OPERATOR_REFUSED]
        reasons = []
        if self.followers < rules.min_followers:
            reasons.append(FOLLOWERS_BELOW_MINIMUM)
        if rules.must_be_adult and (
            self.age == MINOR or (age_unknown_counts and self.age != ADULT)
        ):
            reasons.append(NOT_ADULT)
        return reasons

    def eligibility_reasons(self, rules: Eligibility) -> list[str]:
        """Why the creator may not switch gifting on: codes, empty when eligible."""
        return self._rule_reasons(rules, True) + ([SUSPENDED] if self.suspended else [])

    def refusal_reasons(self, rules: Eligibility) -> list[str]:
        """Why a gift to this creator would be refused: codes, empty when it would not."""
        reasons = [] if self.gifts_enabled else [GIFTING_OFF]
        reasons += self._rule_reasons(rules, False)
        reasons += [SUSPENDED] if self.suspended else []
        return reasons + ([ROOM_OFFLINE] if self.stream_id is None else [])


def profile_from(user: str, raw: dict[Any, Any]) -> CreatorProfile:
    fields = {as_text(k): as_text(v) for k, v in raw.items()}
    age = fields.get("age")
    if age not in (ADULT, MINOR, UNKNOWN):
        age = ADULT if fields.get("adult_claimed") == "1" else UNKNOWN
    forced = {"1": True, "0": False}.get(fields.get("eligibility_forced", ""))
    return CreatorProfile(
        user=user,
        gifts_enabled=fields.get("gifts_enabled") == "1",
        followers=int(fields.get("followers") or 0),
        age=age,
        suspended=fields.get("suspended") == "1",
        forced=forced,
        stream_id=fields.get("stream_id") or None,
    )


def operator_ages_key(prefix: str) -> str:
    """user -> adult, minor or unknown: the operator's word, for every user given one."""
    return f"{prefix}:ages"


class Creators:
    def __init__(
        self,
        redis: Redis,
        key_prefix: str,
        rules: Eligibility,
        follow_script: ScriptCall | None = None,
    ) -> None:
        self._redis = redis
        self._prefix = key_prefix
        self.rules = rules
        self._follow = follow_script
        # Each creator's profile, read at most once a second however many
        # gifts (FreshEnough): a storm's gifts do not wait for the read.
        self._profiles: dict[str, FreshEnough[CreatorProfile | None]] = {}
        # room -> the profile last judged and its verdict, so that a storm's
        # gifts judge a cached profile once, not once a gift.
        self._verdicts: dict[str, tuple[CreatorProfile | None, Verdict]] = {}

    def _key(self, user: str) -> str:
        return WalletKeys(self._prefix, user).creator

    async def save(self, profile: CreatorProfile, *, only_new: bool = False) -> None:
        """Write the profile's fields; with ``only_new``, only those not held yet
        (the demo's seed: a restart keeps the follows and switches made since)."""
        mapping: dict[Any, Any] = {
            "gifts_enabled": int(profile.gifts_enabled),
            "followers": profile.followers,
            "suspended": int(profile.suspended),
        }
        if profile.age != UNKNOWN:  # else the creator's token decides
            mapping["age"] = profile.age
        key = self._key(profile.user)
        if only_new:
            async with self._redis.pipeline(transaction=True) as pipe:
                for name, value in mapping.items():
                    pipe.hsetnx(key, name, value)
                await guarded(pipe.execute())
        else:
            await guarded(self._redis.hset(key, mapping=mapping))
        self._changed(profile.user)

    def forget(self, user: str) -> None:
        """Read ``user``'s profile afresh next time (another module changed it)."""
        self._changed(user)

    async def force_eligibility(self, user: str, force: bool | None) -> None:
        """The operator's override: eligible (True), never (False), or the rules (None)."""
        key = self._key(user)
        if force is None:
            await guarded(self._redis.hdel(key, "eligibility_forced"))
        else:
            await guarded(self._redis.hset(key, "eligibility_forced", int(force)))
        self._changed(user)

    async def set_age(self, user: str, age: str) -> None:
        """The operator's word on the user's age, over what their token says: in
        the profile (a creator's eligibility reads it) and in the map of every
        user the operator has spoken of (``ages.py``: what each gift checks)."""
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.hset(self._key(user), "age", age)
            pipe.hset(operator_ages_key(self._prefix), user, age)
            await guarded(pipe.execute())
        self._changed(user)

    def _changed(self, user: str) -> None:
        # A read that started before the change is not kept (FreshEnough.forget).
        profile = self._profiles.get(user)
        if profile is not None:
            profile.forget()
        self._verdicts.pop(user, None)

    async def fresh(self, user: str) -> CreatorProfile:
        """The profile as Redis holds it now (an empty one for a user who has none)."""
        return profile_from(user, await guarded(self._redis.hgetall(self._key(user))))

    async def note_identity(self, identity: Identity) -> None:
        """Keep what the creator's token says of their age (the operator's word, if
        any, still decides)."""
        if identity.user is not None and identity.adult:
            await guarded(self._redis.hset(self._key(identity.user), "adult_claimed", 1))
            self._changed(identity.user)

    async def set_gifting(self, user: str, enabled: bool) -> CreatorProfile:
        """Switch gifting on (only when eligible: else ``NotEligible`` with the
        reasons) or off (always)."""
        if enabled:
            reasons = (await self.fresh(user)).eligibility_reasons(self.rules)
            if reasons:
                raise NotEligible(
                    "not eligible to take gifts: " + ", ".join(reasons), reasons=reasons
                )
        await guarded(self._redis.hset(self._key(user), "gifts_enabled", int(enabled)))
        self._changed(user)
        return await self.fresh(user)

    async def follow(self, follower: str, creator: str, following: bool) -> tuple[int, bool]:
        """Follow (or stop following) ``creator``: their follower count now, and
        whether this call changed it (a repeat does not)."""
        if self._follow is None:
            raise RuntimeError("creators made without the follow script")
        keys = WalletKeys(self._prefix, creator)
        count, changed = await guarded(
            self._follow(keys=[keys.followers, keys.creator], args=[follower, int(following)])
        )
        self._changed(creator)
        return int(count), bool(int(changed))

    async def load(self, user: str) -> CreatorProfile | None:
        profile = self._profiles.get(user)
        if profile is None:
            profile = FreshEnough(lambda: self._fetch(user), CACHE_SECONDS)
            self._profiles[user] = profile
        return await profile.get()

    async def _fetch(self, user: str) -> CreatorProfile | None:
        raw = await guarded(self._redis.hgetall(self._key(user)))
        return profile_from(user, raw) if raw else None

    def cached_stream(self, room: str) -> str | None:
        """The room's live stream as last read (None when not live, or not read)."""
        held = self._profiles.get(room)
        profile = held.peek() if held is not None else None
        return profile.stream_id if profile is not None else None

    @property
    def min_followers(self) -> int:
        return self.rules.min_followers

    async def refusal_reasons(self, room: str) -> list[str]:
        """Why a gift to ``room`` would be refused now: codes, empty when it would not."""
        profile = await self.load(room)
        if profile is None:
            return [NOT_A_CREATOR]
        return profile.refusal_reasons(self.rules)

    async def require_accepting(self, room: str) -> CreatorProfile:
        """The room's creator's profile, if the room takes gifts now; else, in
        this order: ``Suspended``, ``GiftingOff`` (switched off),
        ``GiftsDisabled`` (any other reason of the creator's) or
        ``RoomOffline`` (not live)."""
        profile = await self.load(room)
        judged = self._verdicts.get(room)
        if judged is None or judged[0] is not profile:
            judged = (profile, verdict(room, profile, self.rules))
            self._verdicts[room] = judged
        refusal = judged[1]
        if refusal is not None:
            kind, message = refusal
            raise kind(message)
        assert profile is not None
        return profile


# Why a room refuses gifts: the error to raise and its message; None when it takes them.
Verdict = tuple[type[GiftError], str] | None


def verdict(room: str, profile: CreatorProfile | None, rules: Eligibility) -> Verdict:
    if profile is not None and profile.suspended:
        return Suspended, f"the creator of room {room!r} is suspended"
    if profile is not None and not profile.gifts_enabled:
        return GiftingOff, f"the creator of room {room!r} has switched gifts off"
    if profile is None or profile.refusal_reasons(rules) not in ([], [ROOM_OFFLINE]):
        return GiftsDisabled, f"the creator of room {room!r} does not accept gifts"
    if profile.stream_id is None:
        return RoomOffline, f"room {room!r} is not live; gifts wait for the next stream"
    return None
