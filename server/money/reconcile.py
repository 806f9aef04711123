"""Check the books: the invariants of docs/money.md, read straight from Redis.

For every wallet (found by SCAN, so this is an operator's tool, not a hot
path) the stored balances are compared with each other and with its ledger
replayed from the start; then the whole economy is summed: every coin spent
is either credited to a creator (diamonds, the creator's carry and the
platform's share, exactly: docs/money.md) or still waiting
in an outbox. ``check`` returns the breaches found; an empty list is clean.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from redis.asyncio import Redis

from server.core.credit_entries import CREDIT, CREDITS, BadCredits, credit_fields
from server.core.ledger_chain import chain_breach, exact_text
from server.core.wording import plural
from server.money.fanclub import FAN_CLUB_GIFT_ID
from server.store.calls import as_text

WALLET_FIELDS = (
    "coins",
    "spent",
    "recharged",
    "bonus",
    # Promotional coins the operator granted (promo.lua).
    "promo",
    # Coins a refund or chargeback took back (clawback.lua), and what it
    # could not, having been spent already (the shortfall).
    "refunded",
    "shortfall",
    "diamonds",
    "diamonds_earned",
    "received",
    # Before shares were counted in hundredths, the platform's share of a
    # gift was kept in whole coins here: still counted, never written now.
    "platform",
    "platform_hundredths",
    "carry_hundredths",
    # Diamonds on their way out (withdraw.lua), and paid out (payout.lua).
    "reserved",
    "paid_out",
)


@dataclass
class Report:
    wallets: int = 0
    gifts: int = 0
    coins_spent: int = 0
    coins_received: int = 0
    coins_pending: int = 0
    breaches: list[str] = field(default_factory=list)
    # gift key -> coins, gathered across wallets to match debits with credits.
    debits: dict[str, int] = field(default_factory=dict)
    credits: dict[str, int] = field(default_factory=dict)
    pending: dict[str, int] = field(default_factory=dict)

    @property
    def clean(self) -> bool:
        return not self.breaches

    def to_dict(self) -> dict[str, Any]:
        return {
            "clean": self.clean,
            "wallets": self.wallets,
            "gifts": self.gifts,
            "coins_spent": self.coins_spent,
            "coins_received": self.coins_received,
            "coins_pending": self.coins_pending,
            "breaches": self.breaches,
        }

    def describe(self) -> str:
        lines = [
            f"wallets checked: {self.wallets}",
            f"gifts in ledgers: {self.gifts}",
            f"coins spent on gifts: {self.coins_spent}",
            f"  credited to creators: {self.coins_received}",
            f"  waiting for settlement: {self.coins_pending}",
        ]
        if self.clean:
            return "\n".join([*lines, "books balance: no breach"])
        return "\n".join(
            [*lines, f"BREACHES ({len(self.breaches)}):", *(f"  - {b}" for b in self.breaches)]
        )


def _fields(raw: dict[Any, Any]) -> dict[str, int]:
    # Only the money fields: a wallet also holds text that is not money (a
    # user's own spending limits).
    values = {as_text(k): v for k, v in raw.items()}
    return {name: int(values.get(name, 0)) for name in WALLET_FIELDS}


def _check_balances(user: str, w: dict[str, int], report: Report) -> None:
    for name, value in w.items():
        if value < 0:
            report.breaches.append(f"{user}: {name} is negative ({value})")
    credited = w["recharged"] + w["bonus"] + w["promo"]
    held = w["coins"] + w["spent"] + w["refunded"]
    if credited != held:
        report.breaches.append(
            f"{user}: coins credited {credited} != held + spent + refunded {held}"
        )
    shared = 100 * (w["diamonds_earned"] + w["platform"]) + w["carry_hundredths"]
    shared += w["platform_hundredths"]
    if 100 * w["received"] != shared:
        report.breaches.append(
            f"{user}: coins received {w['received']} != diamonds earned "
            f"{w['diamonds_earned']} + carry {w['carry_hundredths']}/100 + platform "
            f"{w['platform']} + {w['platform_hundredths']}/100"
        )
    held = w["diamonds"] + w["reserved"] + w["paid_out"]
    if w["diamonds_earned"] != held:
        report.breaches.append(
            f"{user}: diamonds earned {w['diamonds_earned']} != held + reserved + paid out {held}"
        )
    if w["carry_hundredths"] > 99:
        report.breaches.append(f"{user}: carry_hundredths {w['carry_hundredths']} is over 99")


def _check_ledger(user: str, w: dict[str, int], entries: Any, report: Report) -> None:
    sums: Counter[str] = Counter()
    requests: Counter[str] = Counter()
    credited_gifts: Counter[str] = Counter()
    recharged_orders: dict[str, int] = {}
    clawed: Counter[str] = Counter()
    carry = 0  # the creator's, in hundredths of a diamond, entry after entry
    for _, raw in entries:
        e = {as_text(k): as_text(v) for k, v in raw.items()}
        kind = e.get("kind")
        if kind == "recharge":
            sums["credited"] += int(e["amount"])
            recharged_orders[e.get("order", "")] = int(e["amount"])
        elif kind in CLAWBACK_KINDS:
            taken, shortfall = -int(e["amount"]), int(e.get("shortfall", 0))
            sums["refunded"] += taken
            sums["shortfall"] += shortfall
            order = e.get("order", "")
            clawed[order] += 1
            if recharged_orders.get(order) != taken + shortfall:
                report.breaches.append(
                    f"{user}: {kind} of order {order} took {taken} + short {shortfall}, "
                    f"the order credited {recharged_orders.get(order)}"
                )
        elif kind == "promo":
            sums["promo"] += int(e["amount"])
        elif kind == "gift":
            sums["spent"] -= int(e["amount"])
            requests[e["req"]] += 1
            report.debits[f"{user}:{e['req']}"] = -int(e["amount"])
        elif kind in WITHDRAWAL_KINDS:
            sums[kind] += int(e["diamonds"])
        elif kind in (CREDIT, CREDITS):
            try:
                credits = credit_fields(e)
            except BadCredits as bad:
                report.breaches.append(f"{user}: {bad}")
                continue
            for credit in credits:
                coins, diamonds = int(credit["coins"]), int(credit["diamonds"])
                if not _credit_balances(credit, carry):
                    report.breaches.append(f"{user}: credit {credit['gift_key']} does not balance")
                carry = int(credit.get("carry_hundredths", carry))
                sums["platform_hundredths"] += int(credit.get("platform_hundredths", 0))
                sums["received"] += coins
                sums["diamonds"] += diamonds
                credited_gifts[credit["gift_key"]] += 1
                report.credits[credit["gift_key"]] = coins
    report.gifts += sum(requests.values())
    for request_id, times in requests.items():
        if times > 1:
            report.breaches.append(f"{user}: request {request_id} debited {times} times")
    for gift, times in credited_gifts.items():
        if times > 1:
            report.breaches.append(f"{user}: gift {gift} credited {times} times")
    for order, times in clawed.items():
        if times > 1:
            report.breaches.append(f"{user}: order {order} taken back {times} times")
    expected = {
        "credited": w["recharged"] + w["bonus"],
        "promo": w["promo"],
        "refunded": w["refunded"],
        "shortfall": w["shortfall"],
        "spent": w["spent"],
        "received": w["received"],
        "diamonds": w["diamonds_earned"],
        "platform_hundredths": w["platform_hundredths"],
        "carry": w["carry_hundredths"],
        "reserved": w["reserved"],
        "paid_out": w["paid_out"],
    }
    sums["carry"] = carry
    sums["reserved"] = sums["withdraw"] - sums["payout"] - sums["payout_failed"]
    sums["paid_out"] = sums["payout"]
    for name, stored in expected.items():
        if sums[name] != stored:
            report.breaches.append(f"{user}: ledger says {name} {sums[name]}, wallet says {stored}")


def _check_fan_clubs(user: str, wallet: dict[Any, Any], entries: Any, report: Report) -> None:
    """Each fan club membership was paid once (a ``gift`` entry of gift
    ``fan_club``), and counts exactly the coins of the gifts to that creator
    from the join on (fanclub.lua, lib_gift.lua); no membership unpaid."""
    joined: dict[str, str] = {}  # creator -> the join entry's ts
    counted: Counter[str] = Counter()
    joins: Counter[str] = Counter()
    for _, raw in entries:
        e = {as_text(k): as_text(v) for k, v in raw.items()}
        if e.get("kind") != "gift":
            continue
        creator = e.get("to", "")
        if e.get("gift") == FAN_CLUB_GIFT_ID:
            joins[creator] += 1
            joined.setdefault(creator, e.get("ts", ""))
        if creator in joined:
            counted[creator] += -int(e["amount"])
    fields = {
        as_text(k).removeprefix("fan:"): as_text(v)
        for k, v in wallet.items()
        if as_text(k).startswith("fan:")
    }
    for creator, times in joins.items():
        if times > 1:
            report.breaches.append(f"{user}: joined {creator}'s fan club {times} times")
    for creator in joined.keys() | fields.keys():
        expected = f"{joined[creator]}|{counted[creator]}" if creator in joined else None
        if fields.get(creator) != expected:
            report.breaches.append(
                f"{user}: fan club of {creator}: the wallet says {fields.get(creator)!r}, "
                f"the ledger {expected!r}"
            )


def _check_chain(user: str, wallet: dict[Any, Any], entries: Any, report: Report) -> None:
    """The ledger's hash chain (lib_chain.lua) is whole and ends at the
    wallet's ``chain``: no entry edited, removed, added or moved."""
    head = next((exact_text(v) for k, v in wallet.items() if as_text(k) == "chain"), "")
    read = [
        (exact_text(entry_id), [(exact_text(k), exact_text(v)) for k, v in fields.items()])
        for entry_id, fields in entries
    ]
    breach = chain_breach(read, head)
    if breach is not None:
        report.breaches.append(f"{user}: ledger chain broken: {breach}")


# A paid order's coins taken back (clawback.lua).
CLAWBACK_KINDS = ("refund", "chargeback")
# A creator's ledger entries for a withdrawal: its diamonds reserved, then
# paid out or returned (withdraw.lua, payout.lua).
WITHDRAWAL_KINDS = ("withdraw", "payout", "payout_failed")


async def _check_withdrawals(
    redis: Redis, base: str, user: str, w: dict[str, int], report: Report
) -> None:
    """Each withdrawal record against the wallet: the pending ones hold what is
    reserved, the paid ones what was paid out."""
    ids = await redis.zrange(f"{base}:withdrawals", 0, -1)
    by_status: Counter[str] = Counter()
    for withdrawal_id in ids:
        record = {
            as_text(k): as_text(v)
            for k, v in (await redis.hgetall(f"{base}:wd:{as_text(withdrawal_id)}")).items()
        }
        if not record:
            report.breaches.append(f"{user}: withdrawal {as_text(withdrawal_id)} has no record")
            continue
        by_status[record.get("status", "?")] += int(record.get("diamonds", 0))
    unknown = set(by_status) - {"pending", "paid", "failed"}
    if unknown:
        report.breaches.append(f"{user}: withdrawals in unknown states {sorted(unknown)}")
    if by_status["pending"] != w["reserved"]:
        report.breaches.append(
            f"{user}: pending withdrawals hold {by_status['pending']}, "
            f"wallet reserves {w['reserved']}"
        )
    if by_status["paid"] != w["paid_out"]:
        report.breaches.append(
            f"{user}: paid withdrawals {by_status['paid']}, wallet paid out {w['paid_out']}"
        )


def _credit_balances(entry: dict[str, str], carry_before: int) -> bool:
    """Whether a credit entry adds up: its coins split exactly between the
    creator (whole diamonds, and the carry from the entry before to this
    one) and the platform, all in hundredths (lib_credit.lua). An entry from
    before the carry has diamonds + platform = coins, in whole coins."""
    coins, diamonds = int(entry["coins"]), int(entry["diamonds"])
    if "carry_hundredths" not in entry:
        return coins == diamonds + int(entry["platform"])
    share, carry = int(entry["share"]), int(entry["carry_hundredths"])
    platform = int(entry["platform_hundredths"])
    return (
        0 <= carry <= 99
        and carry_before + coins * share == 100 * diamonds + carry
        and 100 * coins == coins * share + platform
    )


async def _pending(redis: Redis, outbox_key: str) -> dict[str, int]:
    entries = await redis.hgetall(outbox_key)
    return {as_text(k): int(as_text(v).split("|")[1]) for k, v in entries.items()}


def _match_debits_with_credits(report: Report) -> None:
    """Every gift paid is credited once or still pending, for the coins paid."""
    for key, coins in report.debits.items():
        if key in report.credits and key in report.pending:
            report.breaches.append(f"gift {key}: credited and still pending")
        owed = report.credits.get(key, report.pending.get(key))
        if owed is None:
            report.breaches.append(f"gift {key}: paid {plural(coins, 'coin')}, never credited")
        elif owed != coins:
            report.breaches.append(f"gift {key}: paid {plural(coins, 'coin')}, credited {owed:,}")
    for key in (report.credits.keys() | report.pending.keys()) - report.debits.keys():
        report.breaches.append(f"gift {key}: credited or pending with no debit")


async def check(redis: Redis, key_prefix: str, *, expect_settled: bool = False) -> Report:
    report = Report()
    start = len(key_prefix) + len(":{w:")
    async for key in redis.scan_iter(match=f"{key_prefix}:{{w:*}}:wallet", count=1000):
        text = as_text(key)
        user = text[start : text.index("}", start)]
        base = text[: -len(":wallet")]
        raw = await redis.hgetall(key)
        w = _fields(raw)
        report.wallets += 1
        report.coins_spent += w["spent"]
        report.coins_received += w["received"]
        _check_balances(user, w, report)
        entries = await _whole_stream(redis, f"{base}:ledger")
        _check_ledger(user, w, entries, report)
        _check_chain(user, raw, entries, report)
        _check_fan_clubs(user, raw, entries, report)
        await _check_withdrawals(redis, base, user, w, report)
        pending = await _pending(redis, f"{base}:outbox")
        report.pending.update(pending)
        report.coins_pending += sum(pending.values())
    _match_debits_with_credits(report)
    if report.coins_spent != report.coins_received + report.coins_pending:
        report.breaches.append(
            f"economy: coins spent {report.coins_spent} != received {report.coins_received}"
            f" + pending {report.coins_pending}"
        )
    if expect_settled and report.coins_pending:
        report.breaches.append(f"economy: {plural(report.coins_pending, 'coin')} still pending")
    return report


LEDGER_PAGE = 1000


async def _whole_stream(redis: Redis, key: str) -> list[Any]:
    """Every entry of a stream, read a page at a time: one XRANGE of a big
    ledger can outlast the client's timeout on a busy server."""
    entries: list[Any] = []
    start = "-"
    while True:
        page: list[Any] = await redis.xrange(key, min=start, count=LEDGER_PAGE) or []
        entries.extend(page)
        if len(page) < LEDGER_PAGE:
            return entries
        last = page[-1][0]
        last_id = last.decode() if isinstance(last, bytes) else str(last)
        start = "(" + last_id  # exclusive: after the last one read
