"""Where a creator's earnings reports live in Redis, and for how long. Pure.

Every credit in a creator's ledger is counted (``report.lua``, after
``settle.lua`` wrote it) into three sets of report keys, all under the
creator's wallet tag ``{w:<creator>}``, on the ledger's shard: the gift's
UTC day, all time, and the stream it was sent in. Each set is a hash of totals and
two sorted sets of supporters (by coins and by diamonds). A cursor says how
far into the ledger the reports have counted. These are reports: no balance
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

    def stream(self, stream_id: str) -> ReportKeys:
        """One stream's: totals (with ``d:<day>:coins`` and ``:diamonds``) and supporters."""
        return ReportKeys(f"{self._base}:s:{stream_id}")

    def scope(self, scope: int | str) -> ReportKeys:
        """A day's keys (a day number) or a stream's (``s:<stream id>``)."""
        if isinstance(scope, int):
            return self.day(scope)
        return self.stream(scope.removeprefix("s:"))

    @property
    def cursor(self) -> str:
        """The id of the last ledger entry the reports have counted."""
        return f"{self._base}:cursor"

    @property
    def run(self) -> str:
        """The progress of a run being written in chunks (report.lua)."""
        return f"{self._base}:run"

    def for_report(self, scopes: Sequence[int | str]) -> list[str]:
        """The keys of a ``report.lua`` call: the cursor, the run's progress,
        all time, then each of ``scopes`` (days and streams)."""
        keys = [self.cursor, self.run, *self.all_time.all()]
        for scope in scopes:
            keys += self.scope(scope).all()
        return keys


def reports_pending_key(prefix: str) -> str:
    """The creators whose ledgers hold credits the reports may not have counted yet."""
    return f"{prefix}:reports:pending"
