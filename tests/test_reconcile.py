"""`giftstream reconcile` catches every kind of broken books it claims to check.

Each test builds a small economy with the real Lua scripts (recharges, gifts,
settlements), breaks it in one way, and expects a breach naming it.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from redis.asyncio import Redis

from server.core.catalog import load_catalog
from server.core.credit_entries import RECORD_FIELDS
from server.core.keys import WalletKeys
from server.money import reconcile
from server.money.wallet import GiftOrder, Wallets
from server.settings import Settings
from server.store.scripts import Scripts

NOW_MS = 1_767_225_600_000
Corruption = Callable[[Redis, str], Awaitable[None]]


async def build_economy(redis: Redis, prefix: str, settle: bool = True) -> Wallets:
    """ann and ben buy coins and send carol gifts; all settled unless told otherwise."""
    wallets = Wallets(redis, Scripts.register(redis), Settings(key_prefix=prefix))
    catalog = load_catalog()
    await wallets.recharge("ann", "pay-1", "order-1", 330, 0, NOW_MS)
    await wallets.recharge("ben", "pay-2", "order-2", 65, 10, NOW_MS)
    sends = [("ann", "a1", "rose", 7), ("ann", "a2", "corgi", 1), ("ben", "b1", "doughnut", 2)]
    for sender, request_id, gift, count in sends:
        order = GiftOrder(sender, request_id, catalog.gift(gift), count, "carol", "carol", NOW_MS)
        await wallets.send_gift(order)
    if settle:
        for sender in ("ann", "ben"):
            for credit in await wallets.pending_credits(sender):
                await wallets.settle(credit, NOW_MS)
    return wallets


def keys(prefix: str, user: str) -> WalletKeys:
    return WalletKeys(prefix, user)


async def entries(redis: Redis, ledger: str) -> list[tuple[bytes, dict[Any, Any]]]:
    found: Any = await redis.xrange(ledger)
    return list(found)


async def nudge_balance(redis: Redis, prefix: str) -> None:
    await redis.hincrby(keys(prefix, "ann").wallet, "coins", 1)


async def nudge_diamonds(redis: Redis, prefix: str) -> None:
    await redis.hincrby(keys(prefix, "carol").wallet, "diamonds_earned", 5)


async def negative_balance(redis: Redis, prefix: str) -> None:
    wallet = keys(prefix, "ben").wallet
    await redis.hincrby(wallet, "coins", -100)
    await redis.hincrby(wallet, "spent", 100)


async def remove_a_gift_entry(redis: Redis, prefix: str) -> None:
    ledger = keys(prefix, "ann").ledger
    for entry_id, fields in await entries(redis, ledger):
        if fields[b"kind"] == b"gift":
            await redis.xdel(ledger, entry_id)
            return


async def duplicate_a_gift_entry(redis: Redis, prefix: str) -> None:
    ledger = keys(prefix, "ben").ledger
    for _, fields in await entries(redis, ledger):
        if fields[b"kind"] == b"gift":
            await redis.xadd(ledger, fields)
            return


async def remove_a_recharge_entry(redis: Redis, prefix: str) -> None:
    ledger = keys(prefix, "ben").ledger
    for entry_id, fields in await entries(redis, ledger):
        if fields[b"kind"] == b"recharge":
            await redis.xdel(ledger, entry_id)
            return


async def skip_a_settlement(redis: Redis, prefix: str) -> None:
    """The outbox entry vanishes without the creator ever being credited."""
    await redis.hdel(keys(prefix, "ann").outbox, "ann:a2")


async def credit_twice(redis: Redis, prefix: str) -> None:
    ledger = keys(prefix, "carol").ledger
    _, fields = (await entries(redis, ledger))[0]
    await redis.xadd(ledger, fields)
    wallet = keys(prefix, "carol").wallet
    coins, diamonds = int(fields[b"coins"]), int(fields[b"diamonds"])
    await redis.hincrby(wallet, "received", coins)
    await redis.hincrby(wallet, "diamonds_earned", diamonds)
    await redis.hincrby(wallet, "diamonds", diamonds)
    await redis.hincrby(wallet, "platform", coins - diamonds)


async def unbalanced_credit(redis: Redis, prefix: str) -> None:
    """A credit entry whose diamonds and platform share do not add up to its coins."""
    await redis.xadd(keys(prefix, "carol").ledger, {
        "kind": "credit", "gift_key": "ann:a1", "coins": 7, "diamonds": 7, "platform": 3,
        "ts": NOW_MS,
    })  # fmt: skip


async def carry_out_of_step(redis: Redis, prefix: str) -> None:
    """A credit whose carry does not follow from the entry before it: half a
    diamond of a one-coin gift gone, as rounding down per gift lost it."""
    await redis.xadd(keys(prefix, "carol").ledger, {
        "kind": "credit", "gift_key": "ann:a9", "coins": 1, "share": 50, "diamonds": 0,
        "carry_hundredths": 0, "platform_hundredths": 50, "ts": NOW_MS,
    })  # fmt: skip


async def credits_record_out_of_step(redis: Redis, prefix: str) -> None:
    """A room call's credits entry (a record a gift) whose second record keeps a
    carry that does not follow from the first's."""
    await redis.xadd(keys(prefix, "carol").ledger, {
        "kind": "credits", "n": 2, "ts": NOW_MS,
        "d": f"ann:z1|1|50|0|50|50|{NOW_MS}|rose|1|;ann:z2|1|50|0|50|50|{NOW_MS}|rose|1|",
    })  # fmt: skip


async def credits_entry_damaged(redis: Redis, prefix: str) -> None:
    await redis.xadd(keys(prefix, "carol").ledger, {
        "kind": "credits", "n": 3, "ts": NOW_MS, "d": f"ann:z1|1|50|0|50|50|{NOW_MS}|rose|1|",
    })  # fmt: skip


async def credited_again_in_a_credits_entry(redis: Redis, prefix: str) -> None:
    """A gift credited by a credit entry and again as a record of a credits entry."""
    _, fields = (await entries(redis, keys(prefix, "carol").ledger))[0]
    record = "|".join(fields.get(name.encode(), b"").decode() for name in RECORD_FIELDS)
    await redis.xadd(keys(prefix, "carol").ledger, {
        "kind": "credits", "n": 1, "ts": NOW_MS, "d": record,
    })  # fmt: skip


async def carry_nudged(redis: Redis, prefix: str) -> None:
    await redis.hincrby(keys(prefix, "carol").wallet, "carry_hundredths", 1)


async def carry_past_a_diamond(redis: Redis, prefix: str) -> None:
    """A whole diamond kept as carry: the sum still adds up, the carry may not."""
    wallet = keys(prefix, "carol").wallet
    await redis.hincrby(wallet, "carry_hundredths", 100)
    await redis.hincrby(wallet, "diamonds_earned", -1)


async def diamonds_reserved_for_nothing(redis: Redis, prefix: str) -> None:
    """Diamonds moved to reserved with no withdrawal behind them: the sum still
    holds, the withdrawal records and the ledger do not."""
    wallet = keys(prefix, "carol").wallet
    await redis.hincrby(wallet, "diamonds", -5)
    await redis.hincrby(wallet, "reserved", 5)


async def promo_without_its_entry(redis: Redis, prefix: str) -> None:
    """Promotional coins in the wallet that no promo entry of the ledger gave."""
    wallet = keys(prefix, "ben").wallet
    await redis.hincrby(wallet, "promo", 40)
    await redis.hincrby(wallet, "coins", 40)


async def spent_field_changed(redis: Redis, prefix: str) -> None:
    wallet = keys(prefix, "ann").wallet
    await redis.hincrby(wallet, "spent", -7)
    await redis.hincrby(wallet, "coins", 7)


async def pending_entry_changed(redis: Redis, prefix: str) -> None:
    """Unsettled books: a pending credit that now claims more than was paid."""
    outbox = keys(prefix, "ben").outbox
    await redis.hset(outbox, "ben:b1", "carol|600|50|0|carol")


CORRUPTIONS: dict[str, tuple[Corruption, str, bool]] = {
    "balance nudged": (nudge_balance, "ann: coins credited", True),
    "diamonds nudged": (nudge_diamonds, "carol: coins received", True),
    "negative balance": (negative_balance, "ben: coins is negative", True),
    "gift entry removed": (remove_a_gift_entry, "ann: ledger says spent", True),
    "gift entry duplicated": (duplicate_a_gift_entry, "debited 2 times", True),
    "recharge entry removed": (remove_a_recharge_entry, "ben: ledger says credited", True),
    "settlement skipped": (skip_a_settlement, "never credited", False),
    "gift credited twice": (credit_twice, "credited 2 times", True),
    "credit does not balance": (unbalanced_credit, "does not balance", True),
    "diamonds reserved for nothing": (
        diamonds_reserved_for_nothing,
        "carol: pending withdrawals hold 0, wallet reserves 5",
        True,
    ),
    "promo without its entry": (promo_without_its_entry, "ben: ledger says promo 0", True),
    "carry out of step": (carry_out_of_step, "credit ann:a9 does not balance", True),
    "credits record out of step": (
        credits_record_out_of_step,
        "credit ann:z2 does not balance",
        True,
    ),
    "credits entry damaged": (credits_entry_damaged, "a credits entry says n='3', holds 1", True),
    "gift credited again in a credits entry": (
        credited_again_in_a_credits_entry,
        "credited 2 times",
        True,
    ),
    "carry nudged": (
        carry_nudged,
        "carol: coins received 366 != diamonds earned 183 + carry 1/100",
        True,
    ),
    "carry past a diamond": (carry_past_a_diamond, "carol: carry_hundredths 100 is over 99", True),
    "spent changed with coins": (spent_field_changed, "ann: ledger says spent", True),
    "pending credit altered": (pending_entry_changed, "paid 60 coins, credited 600", False),
}


async def test_clean_books_have_no_breach(redis: Redis, key_prefix: str) -> None:
    await build_economy(redis, key_prefix)
    report = await reconcile.check(redis, key_prefix, expect_settled=True)
    assert report.breaches == []
    assert (report.wallets, report.gifts) == (3, 3)
    assert report.coins_spent == report.coins_received == 7 + 299 + 60


async def test_pending_credits_are_counted_and_reported_when_settlement_is_expected(
    redis: Redis, key_prefix: str
) -> None:
    await build_economy(redis, key_prefix, settle=False)
    relaxed = await reconcile.check(redis, key_prefix)
    assert relaxed.breaches == []
    assert relaxed.coins_pending == 366
    strict = await reconcile.check(redis, key_prefix, expect_settled=True)
    assert strict.breaches == ["economy: 366 coins still pending"]


@pytest.mark.parametrize("name", list(CORRUPTIONS))
async def test_each_corruption_is_caught(redis: Redis, key_prefix: str, name: str) -> None:
    corrupt, expected, settled = CORRUPTIONS[name]
    await build_economy(redis, key_prefix, settle=settled)
    assert (await reconcile.check(redis, key_prefix)).clean
    await corrupt(redis, key_prefix)
    report = await reconcile.check(redis, key_prefix)
    assert not report.clean
    assert any(expected in breach for breach in report.breaches), report.breaches


async def run_command(redis_url: str, prefix: str) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "server", "reconcile", "--redis-url", redis_url,
        "--key-prefix", prefix,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    output, _ = await process.communicate()
    assert process.returncode is not None
    return process.returncode, output.decode()


async def test_the_command_reports_and_exits_nonzero_on_a_breach(
    redis: Redis, redis_url: str, key_prefix: str
) -> None:
    await build_economy(redis, key_prefix)
    status, output = await run_command(redis_url, key_prefix)
    assert status == 0, output
    assert "books balance: no breach" in output
    await nudge_balance(redis, key_prefix)
    status, output = await run_command(redis_url, key_prefix)
    assert status == 1
    assert "BREACHES (1)" in output
    assert "ann: coins credited 330 != held + spent + refunded 331" in output
