"""What a sender sends next: streaks of small gifts, now and then a big one, retries.

Pure: a seeded ``random.Random`` and the catalogue in, decisions out; the
sockets live in ``clients``. The shape follows a live room in a gift storm:
a viewer taps the same small gift again and again (a streak, shown as one
combo counter), sometimes as a x10 batch, switches gift, and once in a
while sends a big gift that takes the whole screen. A few requests are
retried with the same id, as a client does when an answer is slow; they
must come back ``duplicate: true``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

# Big gifts beyond this price would empty a test wallet in a few sends.
BIG_GIFT_MAX_COINS = 5000
MEAN_STREAK_TAPS = 8
BATCH_COUNT = 10
BATCH_FRACTION = 0.1


@dataclass(frozen=True, slots=True)
class CatalogGift:
    id: str
    coins: int
    tier: str
    streakable: bool


@dataclass(frozen=True, slots=True)
class GiftMix:
    """The gifts a sender picks from."""

    small: tuple[CatalogGift, ...]
    big: tuple[CatalogGift, ...]

    @classmethod
    def from_catalog(cls, catalog: dict[str, Any]) -> GiftMix:
        gifts = [
            CatalogGift(g["id"], int(g["coins"]), g["tier"], bool(g.get("streakable")))
            for g in catalog["gifts"]
        ]
        small = tuple(g for g in gifts if g.streakable and g.tier == "small")
        big = tuple(
            g for g in gifts if g.tier in ("large", "fullscreen") and g.coins <= BIG_GIFT_MAX_COINS
        )
        if not small:
            raise ValueError("the catalogue has no small streakable gift to send")
        return cls(small=small, big=big)

    def expected_coins(self, big_fraction: float) -> float:
        """Mean coins per send, to know how many coins a sender must buy."""
        mean_count = 1 + BATCH_FRACTION * (BATCH_COUNT - 1)
        small = sum(g.coins for g in self.small) / len(self.small) * mean_count
        if not self.big:
            return small
        big = sum(g.coins for g in self.big) / len(self.big)
        return (1 - big_fraction) * small + big_fraction * big


@dataclass(frozen=True, slots=True)
class Send:
    gift: str
    count: int
    coins: int


@dataclass(frozen=True, slots=True)
class Retry:
    """Send an acknowledged request again, same id, gift and count."""


Action = Send | Retry


class SenderPattern:
    def __init__(
        self,
        rng: random.Random,
        mix: GiftMix,
        big_fraction: float,
        retry_fraction: float,
    ) -> None:
        self._rng = rng
        self._mix = mix
        self._big_fraction = big_fraction if mix.big else 0.0
        self._retry_fraction = retry_fraction
        self._streak_gift = rng.choice(mix.small)
        self._streak_left = 0

    def interval(self, rate: float) -> float:
        """Seconds to the next send: a Poisson process at ``rate`` sends per second."""
        return self._rng.expovariate(rate)

    def next(self, spendable: int, can_retry: bool) -> Action | None:
        """The next request; None when ``spendable`` coins buy nothing."""
        roll = self._rng.random()
        if can_retry and roll < self._retry_fraction:
            return Retry()
        if self._rng.random() < self._big_fraction:
            affordable = [g for g in self._mix.big if g.coins <= spendable]
            if affordable:
                gift = self._rng.choice(affordable)
                return Send(gift.id, 1, gift.coins)
        return self._small(spendable)

    def _small(self, spendable: int) -> Send | None:
        if self._streak_left <= 0:
            self._streak_gift = self._rng.choice(self._mix.small)
            self._streak_left = 1 + int(self._rng.expovariate(1 / (MEAN_STREAK_TAPS - 1)))
        self._streak_left -= 1
        count = BATCH_COUNT if self._rng.random() < BATCH_FRACTION else 1
        cheapest = min(self._mix.small, key=lambda g: g.coins)
        # Too few coins for the streak's gift: a single one, else the cheapest.
        for gift, n in ((self._streak_gift, count), (self._streak_gift, 1), (cheapest, 1)):
            if gift.coins * n <= spendable:
                return Send(gift.id, n, gift.coins * n)
        return None
