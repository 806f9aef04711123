"""What a run of a creator's credit entries adds to their earnings reports. Pure.

The reports (``earnings_keys.py``) are counted from the credits of the
creator's ledger (``credit`` entries, and the records of ``credits``
entries: ``credit_entries.py``), in ledger order, by
``server/money/reports.py``; ``report.lua`` writes what is summed here, once
per field or supporter per run, where counting them gift by gift inside the
settlement cost Redis about thirty commands a gift.

Each credit counts in its UTC day (and hour), in all time, and in the
stream it was sent in (the credit entry's ``stream``, written with the
gift: ``server/money/streams.py``), where it also counts in the stream's
own day totals (``d:<day>:coins`` and ``:diamonds``), for a stream's
earnings by day. A credit from before streams were kept counts in its day
and all time only.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from server.core.credit_entries import RECORD_FIELDS, BadCredits, credit_records
from server.core.earnings_keys import DAY_MS, HOUR_MS, RETENTION_SECONDS, day_of
from server.core.value_class import value_class

# Where a credits record holds what a report counts (credit_entries.py).
_GIFT_KEY, _COINS, _DIAMONDS, _PAID, _GIFT, _COUNT, _STREAM = (
    RECORD_FIELDS.index(name)
    for name in ("gift_key", "coins", "diamonds", "paid", "gift", "count", "stream")
)


@value_class
class Credit:
    """One credit entry of a creator's ledger, as the reports count it."""

    sender: str
    gift: str
    count: int
    coins: int
    diamonds: int
    paid_ms: int
    # The stream it was sent in; "" when none (or before streams were kept).
    stream: str = ""

    @classmethod
    def from_entry(cls, fields: Mapping[bytes, bytes]) -> Credit | None:
        """The credit a ledger entry records (its fields as Redis returns them);
        None for any other kind of entry.

        Read straight from the bytes: a storm's second is thousands of
        entries, read by the process that acks gifts. Entries written before
        credits carried the sender, gift, count and time paid count under no
        gift, paid when they were settled.
        """
        if fields.get(b"kind") != b"credit":
            return None
        sender = fields.get(b"sender") or fields.get(b"gift_key", b"").partition(b":")[0]
        return cls(
            sender=sender.decode(),
            gift=fields.get(b"gift", b"").decode(),
            count=int(fields.get(b"count") or 0),
            coins=int(fields[b"coins"]),
            diamonds=int(fields[b"diamonds"]),
            paid_ms=int(fields.get(b"paid") or fields[b"ts"]),
            stream=fields.get(b"stream", b"").decode(),
        )

    @classmethod
    def all_from_entry(cls, fields: Mapping[bytes, bytes]) -> list[Credit]:
        """The credits a ledger entry records: one for a ``credit`` entry, each of a
        ``credits`` entry's records (read by ``credit_entries.py``, as every
        reader of credits reads them), none for any other kind or for a
        ``credits`` entry that does not read (reconcile names it)."""
        kind = fields.get(b"kind")
        if kind == b"credit":
            credit = cls.from_entry(fields)
            return [] if credit is None else [credit]
        if kind != b"credits":
            return []
        try:
            # Only the records are decoded, each read by position: a page of
            # a storm's ledger is hundreds of credits.
            n = fields.get(b"n")
            records = credit_records(
                fields.get(b"d", b"").decode(), None if n is None else n.decode()
            )
        except (BadCredits, UnicodeDecodeError):
            return []
        return [
            cls(
                sender=values[_GIFT_KEY].partition(":")[0],
                gift=values[_GIFT],
                count=int(values[_COUNT]),
                coins=int(values[_COINS]),
                diamonds=int(values[_DIAMONDS]),
                paid_ms=int(values[_PAID]),
                stream=values[_STREAM],
            )
            for values in records
        ]


# A set of report keys, by where it counts: "all", a day number, or
# "s:<stream id>".
Scope = str | int


def stream_scope(stream_id: str) -> str:
    return f"s:{stream_id}"


@dataclass(slots=True)
class ReportSums:
    """What to add to each report, for one run of credits."""

    # scope -> totals field -> amount to add, in first-seen order.
    totals: dict[Scope, dict[str, int]] = field(default_factory=dict)
    # scope -> "coins" or "diamonds" -> supporter -> amount to add.
    supporters: dict[Scope, dict[str, dict[str, int]]] = field(default_factory=dict)
    # day or stream scope -> when its reports expire (ms): the retention
    # after the (last) day it counts.
    expiry_ms: dict[Scope, int] = field(default_factory=dict)
    credits: int = 0

    def add(self, credit: Credit) -> None:
        """Count one more credit, the next in ledger order."""
        self.add_all((credit,))

    def add_all(self, credits: Iterable[Credit]) -> None:
        """Count credits, the next in ledger order, as ``add`` would one by one.

        A storm's credits are mostly alike (one gift, one stream, one hour):
        their totals are summed by (hour, stream, gift) first and added once a
        kind, where adding each credit's to every field of its three scopes
        was most of the report worker's time, in the process that acks
        gifts. Supporters are summed by (day, stream, sender) first the same
        way, and a storm's page holds a sender's credits several times. Each
        dict keeps first-seen order as one by one would (a field first comes
        with the first credit of its kind).
        """
        kinds: dict[tuple[int, str, str], list[int]] = {}
        # (day, stream, sender) -> coins, diamonds: a sender's credits of a
        # page, added to each of their scopes once rather than credit by credit.
        support: dict[tuple[int, str, str], list[int]] = {}
        for credit in credits:
            self.credits += 1
            paid = credit.paid_ms
            kind = (paid // HOUR_MS, credit.stream, credit.gift)
            sums = kinds.get(kind)
            if sums is None:
                kinds[kind] = [1, credit.count, credit.coins, credit.diamonds]
            else:
                sums[0] += 1
                sums[1] += credit.count
                sums[2] += credit.coins
                sums[3] += credit.diamonds
            supporter = (day_of(paid), credit.stream, credit.sender)
            given = support.get(supporter)
            if given is None:
                support[supporter] = [credit.coins, credit.diamonds]
            else:
                given[0] += credit.coins
                given[1] += credit.diamonds
        # In first-seen order, so that every dict gets its keys in the order
        # credit-by-credit counting would give them.
        for (day, stream, sender), (coins, diamonds) in support.items():
            expires = (day + 1) * DAY_MS + RETENTION_SECONDS * 1000
            self._support(day, sender, coins, diamonds)
            self.expiry_ms[day] = expires
            self._support("all", sender, coins, diamonds)
            if stream:
                scope = stream_scope(stream)
                self._support(scope, sender, coins, diamonds)
                self.expiry_ms[scope] = max(expires, self.expiry_ms.get(scope, 0))
        for (hour_number, stream, gift), amounts in kinds.items():
            self._add_kind(hour_number * HOUR_MS, stream, gift, amounts)

    def _add_kind(self, paid: int, stream: str, gift: str, amounts: list[int]) -> None:
        """The totals of credits of one hour, stream and gift."""
        coins, diamonds = amounts[2], amounts[3]
        day = day_of(paid)
        day_totals = self._totals(day, gift, amounts)
        hour = (paid % DAY_MS) // HOUR_MS
        for measure, amount in (("coins", coins), ("diamonds", diamonds)):
            name = f"h:{hour}:{measure}"
            day_totals[name] = day_totals.get(name, 0) + amount
        self._totals("all", gift, amounts)
        if stream:
            stream_totals = self._totals(stream_scope(stream), gift, amounts)
            for measure, amount in (("coins", coins), ("diamonds", diamonds)):
                name = f"d:{day}:{measure}"
                stream_totals[name] = stream_totals.get(name, 0) + amount

    def _totals(self, scope: Scope, gift: str, amounts: list[int]) -> dict[str, int]:
        """Add ``amounts`` (sends, count, coins, diamonds) of ``gift`` to ``scope``."""
        totals = self.totals.setdefault(scope, {})
        sends, count, coins, diamonds = amounts
        for name, amount in (
            ("sends", sends),
            ("count", count),
            ("coins", coins),
            ("diamonds", diamonds),
        ):
            totals[name] = totals.get(name, 0) + amount
        if gift:
            for measure, amount in (("count", count), ("coins", coins), ("diamonds", diamonds)):
                name = f"g:{gift}:{measure}"
                totals[name] = totals.get(name, 0) + amount
        return totals

    def _support(self, scope: Scope, sender: str, coins: int, diamonds: int) -> None:
        ranks = self.supporters.get(scope)
        if ranks is None:
            ranks = self.supporters[scope] = {"coins": {}, "diamonds": {}}
        by_coins, by_diamonds = ranks["coins"], ranks["diamonds"]
        by_coins[sender] = by_coins.get(sender, 0) + coins
        by_diamonds[sender] = by_diamonds.get(sender, 0) + diamonds
