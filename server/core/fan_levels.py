"""Fan club levels: what a member's coins in a creator's rooms make them. Pure.

A viewer joins a creator's fan club by paying its price in coins (a gift
to the creator, ``fanclub.lua``). From then on every coin they spend on
gifts in that creator's rooms counts toward their fan level, the price
included. The wallet keeps, per club, ``fan:<creator>`` =
``<joined ms>|<coins counted>`` (``lib_gift.lua`` adds each gift's cost).

Levels are set by ``GIFTSTREAM_FAN_LEVEL_COINS``: ascending thresholds of
coins, the first 0; a member's level is how many thresholds their coins
reach (so a new member is level 1). Not a member: level 0.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass

from server.settings import parse_fan_thresholds

__all__ = ["Membership", "level_for", "membership_field", "parse_fan_thresholds"]


def level_for(coins: int, thresholds: Sequence[int]) -> int:
    """A member's level for their coins counted (1 at joining)."""
    return bisect_right(thresholds, coins)


@dataclass(frozen=True, slots=True)
class Membership:
    joined_ms: int
    coins: int

    @classmethod
    def parse(cls, text: str | None) -> Membership | None:
        """The wallet's ``fan:<creator>`` field; None for not a member."""
        if not text:
            return None
        joined, _, coins = text.partition("|")
        return cls(int(joined), int(coins or 0))


def membership_field(creator: str) -> str:
    return f"fan:{creator}"
