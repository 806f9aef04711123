"""A socket that sends many frames at once has each one handled, in order.

The server keeps reading a socket until a few messages wait for the
session (server/rooms/ws_protocol.py, READ_AHEAD) rather than stopping after each
one, and stops reading while a socket's gifts in flight are at their bound.
Both paths must lose nothing and answer everything.
"""

from __future__ import annotations

from typing import Any

from tests.client import Api, RoomClient

BURST = 300


async def test_a_burst_of_pings_is_answered_in_order(unlimited: Any) -> None:
    client = await RoomClient.open(unlimited.ws, "carol", codec="giftstream.v1.json")
    await client.of_type("welcome")
    ids = [f"p-{n}" for n in range(BURST)]
    for request_id in ids:  # written without waiting for any answer
        await client.send({"type": "ping", "id": request_id})
    pongs = [await client.of_type("pong") for _ in ids]
    assert [p["id"] for p in pongs] == ids
    await client.close()


async def test_more_gifts_at_once_than_may_be_in_flight_are_each_acked_once(
    unlimited: Any, unlimited_api: Api
) -> None:
    viewer = await unlimited_api.token("burster")
    await unlimited_api.buy(viewer, "coins_330")
    client = await RoomClient.open(unlimited.ws, "carol", viewer)
    await client.of_type("welcome")
    ids = [f"g-{n}" for n in range(BURST)]  # ten times the 32 a socket may have in flight
    for request_id in ids:
        await client.send({"type": "gift", "id": request_id, "gift": "rose", "count": 1})
    replies = [await client.reply(request_id, within=30) for request_id in ids]
    assert {r["type"] for r in replies} == {"ack"}
    assert not any(r["duplicate"] for r in replies)
    assert len({r["seq"] for r in replies}) == BURST
    assert min(r["balance"] for r in replies) == 330 - BURST
    assert (await unlimited_api.wallet(viewer))["coins"] == 330 - BURST
    await client.close()
