"""A creator's earnings, read from the report keys that ``report.lua`` counts.

The reports (see ``earnings_keys.py``) count each credit in the creator's
ledger exactly once (``reports.py``), a run of credits at a time; a read
first counts what is left, so the reports are never behind the wallet.
This module reads and sums them: totals, a series over time for a
chart, earnings by gift and the top supporters, for a period and for the
latest stream; and for a selection (a stream, or a range of days) the rows
``totals``, ``by_stream``, ``by_gift``, ``by_supporter`` and ``by_day``,
which ``selection_csv`` also writes as CSV. Nothing here is a balance: the
diamonds balance is the wallet's.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from collections import Counter
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

from server.core.catalog import Catalog
from server.core.earnings_keys import (
    DAY_MS,
    HOUR_MS,
    RETENTION_SECONDS,
    EarningsKeys,
    ReportKeys,
    day_of,
)
from server.core.keys import WalletKeys
from server.errors import BadField, UnknownStream
from server.money.reports import Reports
from server.money.streams import StreamInfo, Streams
from server.store.calls import as_text, guarded
from server.store.scripts import Scripts

# period -> how many UTC days it spans, today included (None: all time).
PERIODS: dict[str, int | None] = {"day": 1, "week": 7, "month": 30, "all": None}
DEFAULT_PERIOD = "week"
TOP_SUPPORTERS = 10
# Supporters in a selection's by_supporter (and its CSV): the most coins first.
SELECTION_SUPPORTERS = 100
DATE = re.compile(r"^\d{4}-\d{2}-\d{2}\Z")
TOTAL_FIELDS = ("sends", "count", "coins", "diamonds")
RETAINED_DAYS = RETENTION_SECONDS // 86_400


def check_period(value: str | None) -> str:
    if value is None or value == "":
        return DEFAULT_PERIOD
    if value not in PERIODS:
        raise BadField(f"period must be one of {', '.join(PERIODS)}")
    return value


# ---------------------------------------------------------------- pure shaping


def _ints(raw: dict[Any, Any]) -> Counter[str]:
    return Counter({as_text(k): int(v) for k, v in raw.items()})


def totals_of(fields: Counter[str]) -> dict[str, int]:
    return {name: fields[name] for name in TOTAL_FIELDS}


def by_gift(fields: Counter[str], catalog: Catalog) -> list[dict[str, Any]]:
    """``g:<gift>:<measure>`` fields as rows, the most diamonds first."""
    rows: dict[str, dict[str, Any]] = {}
    for name, value in fields.items():
        kind, _, rest = name.partition(":")
        gift, _, measure = rest.rpartition(":")
        if kind != "g" or not gift or measure not in ("count", "coins", "diamonds"):
            continue
        known = catalog.gifts.get(gift)
        row = rows.setdefault(
            gift,
            {
                "gift": gift,
                "name": known.name if known else gift,
                "tier": str(known.tier) if known else None,
                "count": 0,
                "coins": 0,
                "diamonds": 0,
            },
        )
        row[measure] += value
    return sorted(rows.values(), key=lambda r: (-r["diamonds"], -r["coins"], r["gift"]))


def supporters(
    coins: dict[str, int], diamonds: dict[str, int], most: int = TOP_SUPPORTERS
) -> list[dict[str, Any]]:
    """The top supporters by coins given, with the diamonds those earned."""
    ranked = sorted(coins.items(), key=lambda item: (-item[1], item[0]))[:most]
    return [{"user": user, "coins": c, "diamonds": diamonds.get(user, 0)} for user, c in ranked]


def month_start(day: int) -> int:
    """The UTC day number of the first of ``day``'s month."""
    date = dt.date(1970, 1, 1) + dt.timedelta(days=day)
    return (date.replace(day=1) - dt.date(1970, 1, 1)).days


def monthly(days: list[int], values: list[Counter[str]]) -> list[dict[str, int]]:
    """Day totals summed by calendar month, from the first month with earnings."""
    months: dict[int, Counter[str]] = {}
    for day, fields in zip(days, values, strict=True):
        months.setdefault(month_start(day), Counter()).update(fields)
    points = [
        {"start": start * DAY_MS, "coins": f["coins"], "diamonds": f["diamonds"]}
        for start, f in sorted(months.items())
    ]
    while len(points) > 1 and not points[0]["coins"]:
        points.pop(0)
    return points


def hourly(day: int, fields: Counter[str]) -> list[dict[str, int]]:
    return [
        {
            "start": day * DAY_MS + hour * HOUR_MS,
            "coins": fields[f"h:{hour}:coins"],
            "diamonds": fields[f"h:{hour}:diamonds"],
        }
        for hour in range(24)
    ]


def parse_time(value: str | None, name: str, end_of_day: bool = False) -> int | None:
    """A ``from``/``to`` query value: ms since the epoch, or a UTC date
    (YYYY-MM-DD; as ``to``, the end of that day). None when not given."""
    if value is None or value == "":
        return None
    if value.isdigit() and len(value) <= 15:
        return int(value)
    if DATE.match(value):
        try:
            day = (dt.date.fromisoformat(value) - dt.date(1970, 1, 1)).days
        except ValueError:
            raise BadField(f"{name} is not a date") from None
        return (day + 1) * DAY_MS - 1 if end_of_day else day * DAY_MS
    raise BadField(f"{name} must be ms since 1970 or a date, YYYY-MM-DD")


def date_text(day: int) -> str:
    return (dt.date(1970, 1, 1) + dt.timedelta(days=day)).isoformat()


def stream_days(fields: Counter[str]) -> list[dict[str, Any]]:
    """A stream's ``d:<day>:<measure>`` fields as by_day rows, in day order."""
    days: dict[int, dict[str, Any]] = {}
    for name, value in fields.items():
        kind, _, rest = name.partition(":")
        day_text, _, measure = rest.partition(":")
        if kind != "d" or not day_text.isdigit() or measure not in ("coins", "diamonds"):
            continue
        day = int(day_text)
        row = days.setdefault(
            day, {"day": date_text(day), "start": day * DAY_MS, "coins": 0, "diamonds": 0}
        )
        row[measure] += value
    return [days[day] for day in sorted(days)]


CSV_COLUMNS = ("section", "key", "label", "count", "coins", "diamonds")


def selection_csv(selection: dict[str, Any]) -> str:
    """A selection's rows as CSV: one table, the ``section`` column says which rows."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    totals = selection["totals"]
    writer.writerow(["total", "", "", totals["count"], totals["coins"], totals["diamonds"]])
    for row in selection["by_stream"]:
        writer.writerow(
            [
                "stream",
                row["stream_id"],
                row["started"],
                row["count"],
                row["coins"],
                row["diamonds"],
            ]
        )
    for row in selection["by_gift"]:
        writer.writerow(
            ["gift", row["gift"], row["name"], row["count"], row["coins"], row["diamonds"]]
        )
    for row in selection["by_supporter"]:
        writer.writerow(["supporter", row["user"], "", "", row["coins"], row["diamonds"]])
    for row in selection["by_day"]:
        writer.writerow(["day", row["day"], "", "", row["coins"], row["diamonds"]])
    return out.getvalue()


# ---------------------------------------------------------------- reading


@dataclass(frozen=True, slots=True)
class Section:
    """What one set of report keys says: totals, by gift, top supporters."""

    fields: Counter[str]
    coins_by_user: dict[str, int]
    diamonds_by_user: dict[str, int]

    def to_dict(self, catalog: Catalog) -> dict[str, Any]:
        return {
            "totals": totals_of(self.fields),
            "by_gift": by_gift(self.fields, catalog),
            "top_supporters": supporters(self.coins_by_user, self.diamonds_by_user),
        }


class Earnings:
    def __init__(
        self,
        redis: Redis,
        key_prefix: str,
        catalog: Catalog,
        streams: Streams,
        reports: Reports | None = None,
    ) -> None:
        self._redis = redis
        self._prefix = key_prefix
        self._catalog = catalog
        self._streams = streams
        self._reports = reports or Reports(redis, Scripts.register(redis), key_prefix)

    async def report(
        self,
        creator: str,
        period: str,
        now_ms: int,
        *,
        stream_id: str | None = None,
        from_ms: int | None = None,
        to_ms: int | None = None,
    ) -> dict[str, Any]:
        """The creator's diamonds, the period's earnings, the latest stream's,
        and the selection's rows: a stream (``stream_id``), else the days from
        ``from_ms`` to ``to_ms`` (by default the period's)."""
        await self._reports.catch_up(creator)
        keys = EarningsKeys(self._prefix, creator)
        held = await guarded(
            self._redis.hmget(
                WalletKeys(self._prefix, creator).wallet,
                ["diamonds", "diamonds_earned", "received"],
            )
        )
        wallet = Counter(
            {
                name: int(value or 0)
                for name, value in zip(
                    ("diamonds", "diamonds_earned", "received"), held, strict=True
                )
            }
        )
        chosen = await self._period(keys, period, now_ms)
        if stream_id:
            selection = await self._stream_selection(creator, keys, stream_id, now_ms)
        else:
            start = chosen["from"] if from_ms is None else from_ms
            selection = await self._days_selection(
                creator, keys, start, now_ms if to_ms is None else to_ms
            )
        return {
            "creator": creator,
            "now": now_ms,
            "diamonds": wallet["diamonds"],
            "diamonds_earned": wallet["diamonds_earned"],
            "received": wallet["received"],
            "period": chosen,
            "stream": await self._latest_stream(creator, keys),
        } | selection

    async def _period(self, keys: EarningsKeys, period: str, now_ms: int) -> dict[str, Any]:
        today = day_of(now_ms)
        span = PERIODS[period]
        if span is None:
            section = await self._single(keys.all_time)
            days = list(range(today - RETAINED_DAYS + 1, today + 1))
            series = monthly(days, await self._day_totals(keys, days))
            start, unit = series[0]["start"], "month"
        else:
            days = list(range(today - span + 1, today + 1))
            section = await self._many([keys.day(day) for day in days])
            if span == 1:
                series, unit = hourly(today, section.fields), "hour"
            else:
                values = await self._day_totals(keys, days)
                series = [
                    {"start": day * DAY_MS, "coins": v["coins"], "diamonds": v["diamonds"]}
                    for day, v in zip(days, values, strict=True)
                ]
                unit = "day"
            start = days[0] * DAY_MS
        return {"name": period, "from": start, "to": now_ms, "unit": unit, "series": series} | (
            section.to_dict(self._catalog)
        )

    async def _latest_stream(self, creator: str, keys: EarningsKeys) -> dict[str, Any] | None:
        """The live stream, else the last one, with its earnings."""
        latest = await self._streams.latest(creator)
        if latest is None:
            return None
        section = await self._single(keys.stream(latest.id))
        return latest.to_dict() | section.to_dict(self._catalog)

    async def _stream_rows(
        self, keys: EarningsKeys, streams: list[StreamInfo]
    ) -> list[dict[str, Any]]:
        """Each stream with its totals, read in one round trip."""
        pipe = self._redis.pipeline(transaction=False)
        for info in streams:
            pipe.hmget(keys.stream(info.id).totals, ["count", "coins", "diamonds"])
        totals: list[Any] = await guarded(pipe.execute())
        return [
            info.to_dict()
            | {"count": int(count or 0), "coins": int(coins or 0), "diamonds": int(diamonds or 0)}
            for info, (count, coins, diamonds) in zip(streams, totals, strict=True)
        ]

    async def _stream_selection(
        self, creator: str, keys: EarningsKeys, stream_id: str, now_ms: int
    ) -> dict[str, Any]:
        info = await self._streams.get(creator, stream_id)
        if info is None:
            raise UnknownStream(f"no stream {stream_id!r}")
        section = await self._single(keys.stream(stream_id), SELECTION_SUPPORTERS)
        return {
            "selection": {
                "stream_id": stream_id,
                "from": info.started,
                "to": info.ended if info.ended is not None else now_ms,
            },
            "totals": totals_of(section.fields),
            "by_stream": await self._stream_rows(keys, [info]),
            "by_gift": by_gift(section.fields, self._catalog),
            "by_supporter": supporters(
                section.coins_by_user, section.diamonds_by_user, SELECTION_SUPPORTERS
            ),
            "by_day": stream_days(section.fields),
        }

    async def _days_selection(
        self, creator: str, keys: EarningsKeys, from_ms: int, to_ms: int
    ) -> dict[str, Any]:
        if to_ms < from_ms:
            raise BadField("from must not be after to")
        last = day_of(to_ms)
        first = max(day_of(from_ms), last - RETAINED_DAYS + 1)
        days = list(range(first, last + 1))
        section = await self._many([keys.day(day) for day in days])
        values = await self._day_totals(keys, days)
        streams = await self._streams.between(creator, from_ms, to_ms)
        return {
            "selection": {"stream_id": None, "from": first * DAY_MS, "to": to_ms},
            "totals": totals_of(section.fields),
            "by_stream": await self._stream_rows(keys, streams[::-1]),
            "by_gift": by_gift(section.fields, self._catalog),
            "by_supporter": supporters(
                section.coins_by_user, section.diamonds_by_user, SELECTION_SUPPORTERS
            ),
            "by_day": [
                {
                    "day": date_text(day),
                    "start": day * DAY_MS,
                    "coins": value["coins"],
                    "diamonds": value["diamonds"],
                }
                for day, value in zip(days, values, strict=True)
            ],
        }

    async def _day_totals(self, keys: EarningsKeys, days: list[int]) -> list[Counter[str]]:
        pipe = self._redis.pipeline(transaction=False)
        for day in days:
            pipe.hmget(keys.day(day).totals, ["coins", "diamonds"])
        rows: list[list[Any]] = await guarded(pipe.execute())
        return [Counter({"coins": int(c or 0), "diamonds": int(d or 0)}) for c, d in rows]

    async def _single(self, report: ReportKeys, most: int = TOP_SUPPORTERS) -> Section:
        """One set of keys: the top supporters come straight from the sorted set."""
        pipe = self._redis.pipeline(transaction=False)
        pipe.hgetall(report.totals)
        pipe.zrevrange(report.by_coins, 0, most - 1, withscores=True)
        fields_raw, top = await guarded(pipe.execute())
        coins = {as_text(user): int(score) for user, score in top}
        diamonds: dict[str, int] = {}
        if coins:
            scores = await guarded(self._redis.zmscore(report.by_diamonds, list(coins)))
            diamonds = {u: int(s or 0) for u, s in zip(coins, scores, strict=True)}
        return Section(_ints(fields_raw), coins, diamonds)

    async def _many(self, reports: list[ReportKeys]) -> Section:
        """Several days summed. Reads every supporter of the period (ZUNION)."""
        pipe = self._redis.pipeline(transaction=False)
        for report in reports:
            pipe.hgetall(report.totals)
        pipe.zunion([r.by_coins for r in reports], withscores=True)
        pipe.zunion([r.by_diamonds for r in reports], withscores=True)
        *hashes, coins_raw, diamonds_raw = await guarded(pipe.execute())
        fields: Counter[str] = Counter()
        for raw in hashes:
            fields.update(_ints(raw))
        coins = {as_text(user): int(score) for user, score in coins_raw}
        diamonds = {as_text(user): int(score) for user, score in diamonds_raw}
        return Section(fields, coins, diamonds)
