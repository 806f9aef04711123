"""Where a creator's earnings reports live in Redis, and for how long. Pure.

``settle.lua`` counts every settled gift into three sets of report keys,
all under the creator's wallet tag ``{w:<creator>}`` so that they are written
by the same script call as the credit, on the same shard: the gift's UTC day,
all time, and the current stream. Each set is a hash of totals and two sorted
sets of supporters (by coins and by diamonds). These are reports: no balance
is ever read from them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from server.core.keys import WalletKeys

DAY_MS = 86_400_000
HOUR_MS = 3_600_000
# Day reports are kept this long after their day ends: a year and a month,
# so that a creator can compare a month with the same month last year.
RETENTION_SECONDS = 400 * 86_400
# A stream is a run of gifts with no quiet gap longer than this (see docs/money.md).
STREAM_GAP_MS = 30 * 60 * 1000


def day_of(ts_ms: int) -> int:
    """The UTC day number (days since 1970-01-01) of a time in ms."""
    return ts_ms // DAY_MS


@dataclass(frozen=True, slots=True)
class ReportKeys:
    """One set of report keys: a totals hash and supporters by coins and by diamonds."""

    totals: str

    @property
    def by_coins(self) -> str:
        return f"{self.totals}:coins"

    @property
    def by_diamonds(self) -> str:
        return f"{self.totals}:diamonds"

    def all(self) -> list[str]:
        return [self.totals, self.by_coins, self.by_diamonds]


@dataclass(frozen=True, slots=True)
class EarningsKeys:
    prefix: str
    creator: str

    @property
    def _base(self) -> str:
        # The wallet's base, so the reports share its hash tag (and shard).
        return WalletKeys(self.prefix, self.creator).wallet.removesuffix(":wallet") + ":earn"

    def day(self, day: int) -> ReportKeys:
        return ReportKeys(f"{self._base}:d:{day}")

    @property
    def all_time(self) -> ReportKeys:
        return ReportKeys(f"{self._base}:all")

    @property
    def stream(self) -> ReportKeys:
        return ReportKeys(f"{self._base}:stream")

    def for_settlement(self, paid_at_ms: Sequence[int]) -> tuple[list[str], list[int]]:
        """The report keys of a ``settle.lua`` call (KEYS[3..8+3D]) for gifts paid
        at these times: all time, the stream, then each of their D days once;
        and each gift's day's place among those days (1-based)."""
        days: dict[int, int] = {}
        places = [days.setdefault(day_of(ts), len(days) + 1) for ts in paid_at_ms]
        keys = [*self.all_time.all(), *self.stream.all()]
        for day in days:
            keys += self.day(day).all()
        return keys, places
