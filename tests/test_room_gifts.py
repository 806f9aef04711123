"""On one node a gift's debit, credit and announcement are one call (room_gifts.lua).

These hold ``RoomGifts`` to what ``gift.lua``, ``room_event.lua`` and
``settle.lua`` did, on the real scripts and the real Valkey: each gift
debited and credited once, shown once, in order; a refused gift or a
retry shown not at all by the call; a call that fails half way moves no
money twice when its gifts are retried. The last test is the viewer's
side: a combo counts only the gifts that went through.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from redis.asyncio import Redis

from server.core.catalog import Gift, Tier
from server.core.credit_entries import credit_fields_of_bytes
from server.errors import InsufficientCoins, Unavailable
from server.money.room_gifts import GIFTS_PER_CALL, RoomGifts, SentGift
from server.money.wallet import GiftOrder, Wallets
from server.rooms.room_log import RoomLog, event_payload
from server.settings import Settings
from server.store.scripts import Scripts, source
from server.tuning.pipelining import AutoPipeline
from tests.client import Api, RoomClient
from tests.test_room_batches import messages, subscribed

ROSE = Gift(id="rose", name="Rose", coins=1, tier=Tier.SMALL, streakable=True)
NOW = 1_767_225_600_000


class Parts:
    def __init__(self, redis: Redis, key_prefix: str, max_gift_count: int = 99) -> None:
        self.settings = Settings(key_prefix=key_prefix, max_gift_count=max_gift_count)
        self.pipeline = AutoPipeline(redis)
        scripts = Scripts.register(redis, self.pipeline)
        self.wallets = Wallets(redis, scripts, self.settings, self.pipeline)
        self.room_log = RoomLog(redis, scripts, self.settings, self.pipeline)
        self.gifts = RoomGifts(self.wallets, self.room_log, scripts, self.pipeline)

    async def send(
        self, sender: str, request_id: str, count: int = 1, room: str = "busy"
    ) -> SentGift:
        payload = event_payload({"type": "gift", "sender": sender, "req": request_id})
        order = GiftOrder(sender, request_id, ROSE, count, room, room, NOW)
        return await self.gifts.send(order, payload)


@pytest.fixture
async def parts(redis: Redis, key_prefix: str) -> Any:
    made = Parts(redis, key_prefix)
    # Loaded already, so that no call is counted twice for a NOSCRIPT retry.
    await redis.script_load(source("room_gifts"))
    yield made
    await made.pipeline.close()


async def test_a_rooms_gifts_sent_together_share_calls_and_are_each_paid_and_shown_once(
    redis: Redis, parts: Parts
) -> None:
    senders = [f"s{n}" for n in range(GIFTS_PER_CALL + 8)]
    for sender in senders:
        await parts.wallets.grant_coins(sender, 10, "welcome", NOW)
    pubsub = await subscribed(redis, parts.room_log.keys("busy").channel)
    calls_before = parts.pipeline.calls
    sent = await asyncio.gather(*(parts.send(sender, "r1", count=3) for sender in senders))
    # Two calls: a full one, then the rest.
    assert parts.pipeline.calls - calls_before == 2
    assert [gift.seq for gift in sent] == list(range(1, len(senders) + 1))
    assert {(gift.outcome.balance, gift.outcome.cost, gift.outcome.duplicate) for gift in sent} == {
        (7, 3, False)
    }
    heard = await messages(pubsub, len(senders))
    assert [(event["seq"], event["sender"]) for event in heard] == [
        (n + 1, sender) for n, sender in enumerate(senders)
    ]
    # Paid for as gift.lua pays (the ledger entry), and credited to the room's
    # creator in the same call: nothing waits in an outbox.
    for sender in senders:
        keys = parts.wallets.keys(sender)
        assert await redis.xlen(keys.ledger) == 2  # the grant, the gift
        assert await redis.hget(keys.outbox, f"{sender}:r1") is None
    creator = await parts.wallets.balances("busy")
    # 1.5 diamonds a gift: the halves are carried, not rounded away.
    assert (creator["received"], creator["diamonds"]) == (3 * len(senders), 3 * len(senders) // 2)
    # One `credits` entry a call, a record a gift, in the order paid.
    entries: list[Any] = await redis.xrange(parts.wallets.keys("busy").ledger) or []
    assert [(fields[b"kind"], fields[b"n"]) for _, fields in entries] == [
        (b"credits", str(GIFTS_PER_CALL).encode()),
        (b"credits", b"8"),
    ]
    credits = [c for _, fields in entries for c in credit_fields_of_bytes(fields)]
    assert [c["gift_key"] for c in credits] == [f"{sender}:r1" for sender in senders]
    assert [(c["coins"], c["share"], c["diamonds"], c["carry_hundredths"]) for c in credits] == [
        ("3", "50", "1" if n % 2 == 0 else "2", "50" if n % 2 == 0 else "0")
        for n in range(len(senders))
    ]
    view = await parts.room_log.view("busy", 0)
    assert [event["seq"] for event in view.missed] == list(range(1, len(senders) + 1))
    await pubsub.aclose()


async def test_only_a_gift_paid_now_is_shown_by_the_call(redis: Redis, parts: Parts) -> None:
    await parts.wallets.grant_coins("rich", 50, "welcome", NOW)
    first = await parts.send("rich", "once")
    calls_before = parts.pipeline.calls
    pubsub = await subscribed(redis, parts.room_log.keys("busy").channel)
    # One call: a new gift, a retry, one the sender cannot pay, one the
    # rules refuse (a count over the maximum), and another new gift.
    results = await asyncio.gather(
        parts.send("rich", "new-1"),
        parts.send("rich", "once"),
        parts.send("poor", "wish"),
        parts.send("rich", "too-many", count=100),
        parts.send("rich", "new-2", count=2),
        return_exceptions=True,
    )
    assert parts.pipeline.calls - calls_before == 1
    new_1, retry, poor, too_many, new_2 = results
    assert isinstance(new_1, SentGift)
    assert isinstance(retry, SentGift)
    assert isinstance(new_2, SentGift)
    assert (new_1.seq, new_1.outcome.balance) == (2, 48)
    # The retry is answered with the first outcome, its seq included (kept in
    # the request's record), and not shown again.
    assert (retry.seq, retry.published, retry.outcome.duplicate) == (1, False, True)
    assert retry.outcome.balance == 49
    assert first.seq == 1
    assert isinstance(poor, InsufficientCoins)
    assert isinstance(too_many, RuntimeError)
    assert (new_2.seq, new_2.outcome.balance) == (3, 46)
    heard = await messages(pubsub, 2)
    assert [(event["seq"], event["req"]) for event in heard] == [(2, "new-1"), (3, "new-2")]
    assert await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.3) is None
    assert await redis.exists(parts.wallets.keys("poor").ledger) == 0
    assert (await parts.wallets.balances("rich"))["coins"] == 46
    await pubsub.aclose()


@pytest.mark.parametrize("damaged", ["seq", "carry"])
async def test_a_call_that_fails_half_way_moves_no_money_twice_on_retry(
    redis: Redis, parts: Parts, damaged: str
) -> None:
    for sender in ("a", "b", "c"):
        await parts.wallets.grant_coins(sender, 10, "welcome", NOW)
    # Either fails the script before the first gift is paid.
    if damaged == "seq":
        key, field = parts.room_log.keys("broken").seq, None
        await redis.set(key, "not a number")
    else:
        key, field = parts.wallets.keys("broken").wallet, "carry_hundredths"
        await redis.hset(key, field, "150")
    results = await asyncio.gather(
        *(parts.send(sender, "r", room="broken") for sender in ("a", "b", "c")),
        return_exceptions=True,
    )
    assert [type(result) for result in results] == [Unavailable] * 3
    assert await redis.xlen(parts.wallets.keys("broken").ledger) == 0
    await (redis.delete(key) if field is None else redis.hdel(key, field))
    retried = [await parts.send(sender, "r", room="broken") for sender in ("a", "b", "c")]
    # The script stopped at "a"'s announcement, before "a" paid anything:
    # nothing moved for any of them, and each is paid and shown once now.
    assert [(gift.outcome.duplicate, gift.seq) for gift in retried] == [
        (False, 1),
        (False, 2),
        (False, 3),
    ]
    for sender in ("a", "b", "c"):
        assert (await parts.wallets.balances(sender))["coins"] == 9


async def test_a_combo_counts_only_the_gifts_that_went_through(server: Any, api: Api) -> None:
    viewer = await api.token("combo-keeper")
    await api.buy(viewer, "coins_65")
    sender = await RoomClient.open(server.ws, "carol", viewer)
    watcher = await RoomClient.open(server.ws, "carol")
    await watcher.of_type("welcome")
    assert (await sender.gift("c-1", "rose", 1))["type"] == "ack"
    refused = await sender.gift("c-2", "rose", 99)  # 64 coins left
    assert refused["code"] == "insufficient_coins"
    retry = await sender.gift("c-1", "rose", 1)
    assert retry["duplicate"] is True
    assert (await sender.gift("c-3", "rose", 2))["type"] == "ack"
    events = [m for m in await watcher.drain(0.5) if m.get("type") == "gift"]
    assert [(event["count"], event["combo"]["count"]) for event in events] == [(1, 1), (2, 3)]
    assert len({event["combo"]["id"] for event in events}) == 1
    await sender.close()
    await watcher.close()


async def test_a_calls_events_share_one_history_entry_and_resume_from_any_of_them(
    redis: Redis, parts: Parts
) -> None:
    senders = [f"h{n}" for n in range(GIFTS_PER_CALL)]
    for sender in senders:
        await parts.wallets.grant_coins(sender, 10, "welcome", NOW)
    await asyncio.gather(*(parts.send(sender, "r1") for sender in senders))
    await parts.send("h0", "r2")  # a call, and an entry, of its own
    assert await redis.xlen(parts.room_log.keys("busy").history) == 2
    for since in (0, 3, GIFTS_PER_CALL - 1, GIFTS_PER_CALL):
        view = await parts.room_log.view("busy", since)
        assert view.status == "ok"
        assert [event["seq"] for event in view.missed] == list(range(since + 1, GIFTS_PER_CALL + 2))
    assert [event["seq"] for event in await parts.room_log.recent("busy", 3)] == [
        GIFTS_PER_CALL - 1,
        GIFTS_PER_CALL,
        GIFTS_PER_CALL + 1,
    ]
