"""Amounts and sequence numbers past 10^14 are written with every digit.

Lua's ``..`` writes a number with "%.14g": a balance of 10^14 became
"1e+14" in the request record, which a retry could no longer parse. These
run the real scripts on the real Valkey with balances and room sequences
past that, by writing the wallet and the room's counter directly (these
keys then break the books on purpose, so no test here reconciles them).
"""

from __future__ import annotations

import pytest
from redis.asyncio import Redis

from server.core.catalog import Gift, Tier
from server.core.keys import RoomKeys, WalletKeys
from server.money.wallet import GiftOrder
from server.rooms.room_log import event_payload
from server.store.calls import as_text
from tests.test_room_batches import messages, subscribed
from tests.test_room_gifts import NOW, Parts

# The largest price and count the gift script takes (nine digits each).
SHIP = Gift(id="ship", name="Ship", coins=999_999_999, tier=Tier.LARGE, streakable=False)
BALANCE = 2 * 10**14 + 123_456_789  # exact in a double: far below 2^53


async def test_a_gift_from_a_wallet_past_10_14_records_and_replays_every_digit(
    redis: Redis, key_prefix: str
) -> None:
    parts = Parts(redis, key_prefix)
    keys = WalletKeys(key_prefix, "whale")
    await redis.hset(keys.wallet, "coins", BALANCE)
    order = GiftOrder("whale", "w-1", SHIP, 99, "carol", "carol", NOW)
    cost = 99 * 999_999_999
    try:
        first = await parts.wallets.send_gift(order)
        assert (first.balance, first.cost, first.duplicate) == (BALANCE - cost, cost, False)
        record = await redis.get(keys.request("w-1"))
        assert record is not None
        assert as_text(record).startswith(f"{BALANCE - cost}|{cost}|")
        outbox = list((await redis.hgetall(keys.outbox)).values())
        assert [as_text(entry).split("|")[1] for entry in outbox] == [str(cost)]
        # A retry reads the record back: with "2e+14" in it, it could not.
        again = await parts.wallets.send_gift(order)
        assert (again.balance, again.cost, again.duplicate) == (BALANCE - cost, cost, True)
    finally:
        await parts.pipeline.close()


async def test_a_room_past_seq_10_14_publishes_the_next_seq_exactly(
    redis: Redis, key_prefix: str
) -> None:
    parts = Parts(redis, key_prefix)
    await redis.set(RoomKeys(key_prefix, "busy").seq, 10**14)
    await parts.wallets.grant_coins("fan", 10, "welcome", NOW)
    pubsub = await subscribed(redis, parts.room_log.keys("busy").channel)
    try:
        sent = await parts.send("fan", "f-1")
        assert sent.seq == 10**14 + 1
        (heard,) = await messages(pubsub, 1)
        assert heard["seq"] == 10**14 + 1
    finally:
        await pubsub.aclose()
        await parts.pipeline.close()


async def test_the_costliest_gift_credits_its_share_to_the_hundredth(
    redis: Redis, key_prefix: str
) -> None:
    """Shares are counted in hundredths (coins x 100), so a gift may cost at
    most 10^13 coins: below it, every digit of the creator's share and of the
    platform's arrives; above it, the gift is refused and nothing moves."""
    parts = Parts(redis, key_prefix, max_gift_count=99_999)
    keys = WalletKeys(key_prefix, "whale")
    await redis.hset(keys.wallet, "coins", BALANCE)
    try:
        cost = 9_999 * 999_999_999  # odd: half a diamond is carried
        payload = event_payload({"type": "gift"})
        order = GiftOrder("whale", "w-1", SHIP, 9_999, "busy", "busy", NOW)
        sent = await parts.gifts.send(order, payload)
        assert (sent.outcome.cost, sent.outcome.duplicate) == (cost, False)
        creator = await parts.wallets.balances("busy")
        assert creator["diamonds"] == cost // 2
        assert (creator["carry_hundredths"], creator["platform_hundredths"]) == (50, cost * 50)
        too_costly = GiftOrder("whale", "w-2", SHIP, 10_001, "busy", "busy", NOW)
        with pytest.raises(RuntimeError, match="bad_argument"):
            await parts.gifts.send(too_costly, payload)
        assert int(await redis.hget(keys.wallet, "coins") or 0) == BALANCE - cost
    finally:
        await parts.pipeline.close()
