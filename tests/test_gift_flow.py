"""The gift path end to end: recharge, gift, broadcast, creator credit.

Every test here runs a real `giftstream serve` process against the real
Valkey (or REDIS_URL) and talks to it over real HTTP and WebSockets; each
money test ends by checking the invariants with ``server.money.reconcile``.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from redis.asyncio import Redis

from server.core.keys import WalletKeys
from server.money import reconcile
from tests.client import Api, RoomClient


async def assert_books_balance(redis: Redis, prefix: str, settled: bool = True) -> None:
    """The invariants hold; with ``settled``, once the settler has caught up."""
    deadline = time.monotonic() + 10
    while True:
        report = await reconcile.check(redis, prefix, expect_settled=settled)
        if report.clean or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.1)
    assert report.breaches == []


async def wait_for_diamonds(api: Api, token: str, at_least: int) -> dict[str, Any]:
    deadline = time.monotonic() + 10
    while True:
        wallet = await api.wallet(token)
        if wallet["diamonds"] >= at_least or time.monotonic() > deadline:
            return wallet
        await asyncio.sleep(0.05)


async def test_recharge_gift_broadcast_and_creator_credit(
    server: Any, api: Api, redis: Redis
) -> None:
    viewer = await api.token("vera")
    bob = await api.token("bob")
    overlay = await api.token("carol", "overlay")
    creator = await api.token("carol", "creator")

    paid = await api.buy(viewer, "coins_330")
    assert paid["status"] == "ok"
    assert (await api.wallet(viewer))["coins"] == 330

    sender = await RoomClient.open(server.ws, "carol", viewer)
    watcher = await RoomClient.open(server.ws, "carol", bob, codec="giftstream.v1.json")
    screen = await RoomClient.open(server.ws, "carol", overlay)
    welcome = await sender.of_type("welcome")
    assert welcome["balance"] == 330
    assert welcome["room"] == "carol"
    assert (await screen.of_type("welcome"))["you"]["role"] == "overlay"
    await watcher.of_type("welcome")

    ack = await sender.gift("g-1", "hand_hearts", 3)
    assert ack["type"] == "ack"
    assert ack["balance"] == 30
    assert ack["coins"] == 300

    for client in (watcher, screen, sender):
        event = await client.of_type("gift")
        assert event["seq"] == ack["seq"]
        assert (event["sender"], event["gift"], event["count"], event["coins"]) == (
            "vera",
            "hand_hearts",
            3,
            300,
        )
        assert event["tier"] == "medium"
        assert event["request_id"] == "g-1"  # the sender's page knows its own tap

    credited = await wait_for_diamonds(api, creator, 150)
    assert credited["diamonds"] == 150  # 50% of 300 coins
    assert (await api.wallet(viewer))["coins"] == 30
    for client in (sender, watcher, screen):
        await client.close()
    await assert_books_balance(redis, server.key_prefix)


async def test_no_diamond_is_rounded_away(server: Any, api: Api, redis: Redis) -> None:
    """17 one-coin roses at 50%: 8 diamonds, half a diamond carried, 8.5 coins to
    the platform; the 18th rose makes the carry a diamond."""
    viewer = await api.token("odd")
    creator = await api.token("carol", "creator")
    await api.buy(viewer, "coins_65")
    before = await api.wallet(creator)
    assert before.get("carry_hundredths", 0) == 0, before
    sender = await RoomClient.open(server.ws, "carol", viewer)
    for index in range(17):
        assert (await sender.gift(f"odd-{index}", "rose", 1))["type"] == "ack"
    await assert_books_balance(redis, server.key_prefix, settled=True)
    after = await api.wallet(creator)
    gained = {
        name: after.get(name, 0) - before.get(name, 0)
        for name in ("diamonds", "diamonds_earned", "received", "carry_hundredths",
                     "platform_hundredths")
    }  # fmt: skip
    assert gained == {
        "diamonds": 8, "diamonds_earned": 8, "received": 17, "carry_hundredths": 50,
        "platform_hundredths": 850,
    }  # fmt: skip
    assert (await sender.gift("odd-17", "rose", 1))["type"] == "ack"
    await sender.close()
    await assert_books_balance(redis, server.key_prefix, settled=True)
    last = await api.wallet(creator)
    assert (last["diamonds"] - before.get("diamonds", 0), last["carry_hundredths"]) == (9, 0)


async def test_gift_without_coins_changes_nothing(server: Any, api: Api, redis: Redis) -> None:
    viewer = await api.token("penniless")
    sender = await RoomClient.open(server.ws, "carol", viewer)
    assert (await sender.of_type("welcome"))["balance"] == 0
    error = await sender.gift("p-1", "rose", 1)
    assert (error["type"], error["code"]) == ("error", "insufficient_coins")
    await api.buy(viewer, "coins_65")
    error = await sender.gift("p-2", "rocket", 1, confirm=True)
    assert error["code"] == "insufficient_coins"
    assert (await api.wallet(viewer))["coins"] == 65
    # The same request id may succeed once the coins are there.
    assert (await sender.gift("p-1", "rose", 1))["balance"] == 64
    await sender.close()
    await assert_books_balance(redis, server.key_prefix)


async def test_repeated_request_returns_first_outcome(server: Any, api: Api, redis: Redis) -> None:
    viewer = await api.token("repeater")
    await api.buy(viewer, "coins_65")
    sender = await RoomClient.open(server.ws, "carol", viewer)
    first = await sender.gift("same", "doughnut", 1)
    again = await sender.gift("same", "doughnut", 1)
    assert first["duplicate"] is False
    assert again["duplicate"] is True
    assert (again["balance"], again["seq"], again["coins"]) == (35, first["seq"], 30)
    assert (await api.wallet(viewer))["coins"] == 35
    await sender.close()
    await assert_books_balance(redis, server.key_prefix)


async def test_streak_shows_one_running_counter_then_ends(fast_streaks: Any) -> None:
    api = Api(fast_streaks.http)
    viewer = await api.token("streaker")
    await api.buy(viewer, "coins_65")
    sender = await RoomClient.open(fast_streaks.ws, "carol", viewer)
    watcher = await RoomClient.open(fast_streaks.ws, "carol")
    await watcher.of_type("welcome")
    for index in range(4):
        assert (await sender.gift(f"s-{index}", "rose", 2))["type"] == "ack"
    events = [await watcher.of_type("gift") for _ in range(4)]
    combos = {event["combo"]["id"] for event in events}
    assert len(combos) == 1
    assert sorted(event["combo"]["count"] for event in events) == [2, 4, 6, 8]
    # Each tap's event carries its request id: the sender's page reads its
    # own running count off the event that answers the tap.
    by_tap = {event["request_id"]: event["combo"]["count"] for event in events}
    assert by_tap == {"s-0": 2, "s-1": 4, "s-2": 6, "s-3": 8}
    end = await watcher.of_type("combo_end", within=5)
    assert (end["combo"], end["count"], end["gift"]) == (combos.pop(), 8, "rose")
    assert end["seq"] > max(event["seq"] for event in events)
    # A big gift is never part of a streak.
    await api.buy(viewer, "coins_330")
    big = await sender.gift("big", "corgi", 1)
    assert big["type"] == "ack"
    assert (await watcher.of_type("gift"))["combo"] is None
    await sender.close()
    await watcher.close()
    await api.aclose()


async def test_retry_gets_the_first_outcome_even_when_the_retry_differs(
    server: Any, api: Api, redis: Redis
) -> None:
    viewer = await api.token("changer")
    await api.buy(viewer, "coins_330")
    sender = await RoomClient.open(server.ws, "carol", viewer)
    watcher = await RoomClient.open(server.ws, "carol")
    await watcher.of_type("welcome")
    first = await sender.gift("fixed", "doughnut", 2)
    # Same id, other gift and count: the first request's outcome, nothing new.
    retry = await sender.gift("fixed", "rocket", 1)
    assert retry["duplicate"] is True
    assert (retry["seq"], retry["coins"], retry["balance"]) == (first["seq"], 60, 270)
    # Even a gift the catalogue does not know: the id was paid, so it is answered.
    unknown = await sender.gift("fixed", "no-such-gift", 1)
    assert (unknown["type"], unknown["seq"]) == ("ack", first["seq"])
    # A retry from another room is answered, and shown only where it was paid.
    elsewhere = await RoomClient.open(server.ws, "elsewhere", viewer)
    other_watcher = await RoomClient.open(server.ws, "elsewhere")
    await other_watcher.of_type("welcome")
    moved = await elsewhere.gift("fixed", "doughnut", 2)
    assert (moved["type"], moved["seq"], moved["duplicate"]) == ("ack", first["seq"], True)
    assert [m for m in await other_watcher.drain(0.5) if m.get("type") == "gift"] == []
    events = [m for m in await watcher.drain(0.5) if m.get("sender") == "changer"]
    assert [(e["gift"], e["count"], e["seq"]) for e in events] == [("doughnut", 2, first["seq"])]
    await elsewhere.close()
    await other_watcher.close()
    assert (await api.wallet(viewer))["coins"] == 270
    await sender.close()
    await watcher.close()
    await assert_books_balance(redis, server.key_prefix)


async def test_retry_after_the_creator_stops_gifts_is_still_answered(
    server: Any, api: Api, redis: Redis
) -> None:
    viewer = await api.token("loyal")
    await api.buy(viewer, "coins_65")
    sender = await RoomClient.open(server.ws, "carol", viewer)
    first = await sender.gift("before-off", "finger_heart", 1)
    creator_key = WalletKeys(server.key_prefix, "carol").creator
    await redis.hset(creator_key, "gifts_enabled", 0)
    await asyncio.sleep(1.2)  # the profile cache lasts a second
    assert (await sender.gift("after-off", "finger_heart", 1))["code"] == "gifting_off"
    retry = await sender.gift("before-off", "finger_heart", 1)
    assert (retry["type"], retry["duplicate"], retry["seq"]) == ("ack", True, first["seq"])
    assert (await api.wallet(viewer))["coins"] == 60
    await sender.close()
    await assert_books_balance(redis, server.key_prefix)
