"""What a run of a creator's credit entries adds to their earnings reports. Pure.

The reports (``earnings_keys.py``) are counted from the credit entries that
``settle.lua`` writes in the creator's ledger, in ledger order, by
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

from collections.abc import Mapping
from dataclasses import dataclass, field

from server.core.earnings_keys import DAY_MS, HOUR_MS, RETENTION_SECONDS, day_of


@dataclass(frozen=True, slots=True)
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

    def _count(self, scope: Scope, credit: Credit) -> dict[str, int]:
        totals = self.totals.setdefault(scope, {})
        for name, amount in (
            ("sends", 1),
            ("count", credit.count),
            ("coins", credit.coins),
            ("diamonds", credit.diamonds),
        ):
            totals[name] = totals.get(name, 0) + amount
        if credit.gift:
            for measure, amount in (
                ("count", credit.count),
                ("coins", credit.coins),
                ("diamonds", credit.diamonds),
            ):
                name = f"g:{credit.gift}:{measure}"
                totals[name] = totals.get(name, 0) + amount
        ranks = self.supporters.setdefault(scope, {"coins": {}, "diamonds": {}})
        for measure, amount in (("coins", credit.coins), ("diamonds", credit.diamonds)):
            by_user = ranks[measure]
            by_user[credit.sender] = by_user.get(credit.sender, 0) + amount
        return totals

    def add(self, credit: Credit) -> None:
        """Count one more credit, the next in ledger order."""
        self.credits += 1
        paid = credit.paid_ms
        day = day_of(paid)
        expires = (day + 1) * DAY_MS + RETENTION_SECONDS * 1000
        day_totals = self._count(day, credit)
        hour = (paid % DAY_MS) // HOUR_MS
        for measure, amount in (("coins", credit.coins), ("diamonds", credit.diamonds)):
            name = f"h:{hour}:{measure}"
            day_totals[name] = day_totals.get(name, 0) + amount
        self.expiry_ms[day] = expires
        self._count("all", credit)
        if credit.stream:
            scope = stream_scope(credit.stream)
            stream_totals = self._count(scope, credit)
            for measure, amount in (("coins", credit.coins), ("diamonds", credit.diamonds)):
                name = f"d:{day}:{measure}"
                stream_totals[name] = stream_totals.get(name, 0) + amount
            self.expiry_ms[scope] = max(expires, self.expiry_ms.get(scope, 0))
