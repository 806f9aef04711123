"""What a run of a creator's credit entries adds to their earnings reports. Pure.

The reports (``earnings_keys.py``) are counted from the credit entries that
``settle.lua`` writes in the creator's ledger, in ledger order, by
``server/money/reports.py``; ``report.lua`` writes what is summed here, once
per field or supporter per run, where counting them gift by gift inside the
settlement cost Redis about thirty commands a gift.

Each credit counts in its UTC day (and hour), in all time, and in the
current stream: a run of gifts with no quiet gap longer than
``STREAM_GAP_MS``. A gift paid before the current stream began (settled
late) counts in its day but not in the stream.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from server.core.earnings_keys import DAY_MS, HOUR_MS, RETENTION_SECONDS, STREAM_GAP_MS, day_of


@dataclass(frozen=True, slots=True)
class Credit:
    """One credit entry of a creator's ledger, as the reports count it."""

    sender: str
    gift: str
    count: int
    coins: int
    diamonds: int
    paid_ms: int

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
        )


@dataclass(frozen=True, slots=True)
class StreamState:
    """The current stream, as its report hash says: ms of its first and latest gift."""

    started: int | None = None
    last: int | None = None


# A set of report keys, by where it counts: "all", "stream", or a day number.
Scope = str | int


@dataclass(slots=True)
class ReportSums:
    """What to add to each report, for one run of credits."""

    # scope -> totals field -> amount to add, in first-seen order.
    totals: dict[Scope, dict[str, int]] = field(default_factory=dict)
    # scope -> "coins" or "diamonds" -> supporter -> amount to add.
    supporters: dict[Scope, dict[str, dict[str, int]]] = field(default_factory=dict)
    # A new stream began: the old stream's reports are cleared first.
    stream_reset: bool = False
    stream: StreamState = field(default_factory=StreamState)
    stream_changed: bool = False
    # day -> when its reports expire (ms): the retention after the day ends.
    day_expiry_ms: dict[int, int] = field(default_factory=dict)
    credits: int = 0

    def _count(self, scope: Scope, credit: Credit) -> None:
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

    def _forget(self, scope: Scope) -> None:
        self.totals.pop(scope, None)
        self.supporters.pop(scope, None)

    def add(self, credit: Credit) -> None:
        """Count one more credit, the next in ledger order."""
        self.credits += 1
        paid = credit.paid_ms
        day = day_of(paid)
        self._count(day, credit)
        hour = (paid % DAY_MS) // HOUR_MS
        day_totals = self.totals[day]
        for measure, amount in (("coins", credit.coins), ("diamonds", credit.diamonds)):
            name = f"h:{hour}:{measure}"
            day_totals[name] = day_totals.get(name, 0) + amount
        self.day_expiry_ms[day] = (day + 1) * DAY_MS + RETENTION_SECONDS * 1000
        self._count("all", credit)

        started, last = self.stream.started, self.stream.last
        if last is None or paid > last + STREAM_GAP_MS:
            # A new stream begins with this gift: what this run counted in
            # the old one goes with it.
            self.stream_reset = True
            self._forget("stream")
            started, last = paid, paid
            self.stream_changed = True
        assert started is not None
        if paid >= started:
            if paid > last:
                last = paid
                self.stream_changed = True
            self._count("stream", credit)
        self.stream = StreamState(started, last)
