"""Promotions: bonus coins a recharge package carries for a period. Pure.

Set by ``GIFTSTREAM_PROMOTIONS`` as ``<package id>:<bonus coins>:<from>:<to>``
items separated by ``;``, the days in UTC as YYYY-MM-DD, both included:
``cny_98:98:2026-12-01:2026-12-31`` gives Douyin's 98-yuan pack 98 coins
more all December. An order takes the bonus of the moment it is made, and
keeps it whenever it is paid (``server/money/orders.py``).
"""

from __future__ import annotations

from collections.abc import Iterable

from server.core.earnings_keys import DAY_MS
from server.settings import Promotion, parse_promotions

__all__ = ["Promotion", "Promotions", "parse_promotions"]


class Promotions:
    def __init__(self, items: Iterable[Promotion]) -> None:
        self.items = tuple(items)

    def bonus(self, package_id: str, now_ms: int) -> int:
        """The bonus coins promotions add to a package now."""
        day = now_ms // DAY_MS
        return sum(
            p.bonus
            for p in self.items
            if p.package == package_id and p.first_day <= day <= p.last_day
        )

    def current(self, now_ms: int) -> dict[str, int]:
        """Package id -> the bonus promotions add now, for packages that have one."""
        packages = {p.package for p in self.items}
        return {pk: bonus for pk in packages if (bonus := self.bonus(pk, now_ms))}
