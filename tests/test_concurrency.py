"""Races on one wallet: money moves once, however many sends arrive at once."""

from __future__ import annotations

import asyncio
from typing import Any

from redis.asyncio import Redis

from tests.client import Api, RoomClient
from tests.test_gift_flow import assert_books_balance

SOCKETS = 10
SENDS_PER_SOCKET = 50


async def test_500_concurrent_sends_when_only_one_is_affordable(
    unlimited: Any, unlimited_api: Api, redis: Redis
) -> None:
    viewer = await unlimited_api.token("racer")
    await unlimited_api.buy(viewer, "coins_65")  # 65 coins: exactly one rose x65
    sockets = [await RoomClient.open(unlimited.ws, "carol", viewer) for _ in range(SOCKETS)]
    for socket in sockets:
        await socket.of_type("welcome")

    async def fire(socket: RoomClient, index: int) -> list[dict[str, Any]]:
        ids = [f"race-{index}-{n}" for n in range(SENDS_PER_SOCKET)]
        await asyncio.gather(
            *(socket.send({"type": "gift", "id": i, "gift": "rose", "count": 65}) for i in ids)
        )
        return [await socket.reply(i, within=30) for i in ids]

    replies = [
        reply
        for batch in await asyncio.gather(*(fire(s, i) for i, s in enumerate(sockets)))
        for reply in batch
    ]
    assert len(replies) == SOCKETS * SENDS_PER_SOCKET
    acks = [r for r in replies if r["type"] == "ack"]
    refusals = [r for r in replies if r["type"] == "error"]
    assert len(acks) == 1
    assert acks[0]["balance"] == 0
    assert {r["code"] for r in refusals} == {"insufficient_coins"}, {r["message"] for r in refusals}
    wallet = await unlimited_api.wallet(viewer)
    assert (wallet["coins"], wallet["spent"]) == (0, 65)
    for socket in sockets:
        await socket.close()
    await assert_books_balance(redis, unlimited.key_prefix)


async def test_same_request_id_twenty_times_in_parallel_debits_once(
    unlimited: Any, unlimited_api: Api, redis: Redis
) -> None:
    viewer = await unlimited_api.token("twins")
    await unlimited_api.buy(viewer, "coins_330")
    sockets = [await RoomClient.open(unlimited.ws, "carol", viewer) for _ in range(20)]
    watcher = await RoomClient.open(unlimited.ws, "carol")
    for socket in [*sockets, watcher]:
        await socket.of_type("welcome")
    request = {"type": "gift", "id": "one-and-only", "gift": "hand_hearts", "count": 1}
    await asyncio.gather(*(socket.send(request) for socket in sockets))
    replies = await asyncio.gather(*(socket.reply("one-and-only") for socket in sockets))
    assert {r["type"] for r in replies} == {"ack"}
    assert sum(1 for r in replies if not r["duplicate"]) == 1
    assert {(r["balance"], r["seq"], r["coins"]) for r in replies} == {
        (230, replies[0]["seq"], 100)
    }
    assert (await unlimited_api.wallet(viewer))["coins"] == 230
    # The room saw the gift exactly once.
    seen = [m for m in await watcher.drain(0.5) if m.get("sender") == "twins"]
    assert [(m["type"], m["seq"]) for m in seen] == [("gift", replies[0]["seq"])]
    for socket in [*sockets, watcher]:
        await socket.close()
    await assert_books_balance(redis, unlimited.key_prefix)
