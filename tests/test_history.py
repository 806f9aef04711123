"""A user's history: every movement of their coins and diamonds, newest first.

Against a real demo server: alice's welcome coins, a package she buys, her
gifts to carol; carol's credits and a withdrawal. Pages are read with the
cursor while new gifts arrive, and must neither skip nor repeat a row.
"""

from __future__ import annotations

from typing import Any

from tests.client import Api, RoomClient, bearer
from tests.conftest import ServerProcess
from tests.test_gift_flow import wait_for_diamonds


async def history(api: Api, token: str, **query: str | int) -> Any:
    response = await api.http.get("/api/wallet/history", params=query, headers=bearer(token))
    assert response.status_code == 200, response.text
    return response.json()


async def test_history_lists_recharges_and_gifts_with_the_balances_after(
    server: ServerProcess, api: Api
) -> None:
    alice = await api.token("alice")
    paid = await api.buy(alice, "coins_65")
    room = await RoomClient.open(server.ws, "carol", alice)
    try:
        first = await room.gift("h-1", "rose", 3)
        second = await room.gift("h-2", "corgi")
    finally:
        await room.close()

    rows = (await history(api, alice))["entries"]
    assert [row["kind"] for row in rows] == ["gift", "gift", "recharge", "promo"]
    corgi, roses, bought, welcome = rows
    assert (corgi["coins"], corgi["balance_after"], corgi["request_id"]) == (
        -299,
        second["balance"],
        "h-2",
    )
    assert (corgi["room"], corgi["gift"], corgi["count"]) == ("carol", "corgi", 1)
    assert (roses["coins"], roses["balance_after"], roses["count"]) == (-3, first["balance"], 3)
    assert (bought["coins"], bought["balance_after"]) == (65, 5065)
    assert bought["order_id"] == paid["order_id"]
    assert (welcome["coins"], welcome["balance_after"]) == (5000, 5000)
    assert all(row["at"] > 0 for row in rows)
    assert rows == sorted(rows, key=lambda row: row["id"], reverse=True)

    gifts = (await history(api, alice, kind="gift"))["entries"]
    assert [row["request_id"] for row in gifts] == ["h-2", "h-1"]

    carol = await api.token("carol", "creator")
    await wait_for_diamonds(api, carol, 150)
    received = (await history(api, carol, kind="gift_received"))["entries"]
    assert [(row["gift"], row["from"]) for row in received] == [
        ("corgi", "alice"),
        ("rose", "alice"),
    ]
    assert sum(row["diamonds"] for row in received) == (await api.wallet(carol))["diamonds"]
    assert all(row["stream_id"] for row in received)  # carol is live


async def test_pages_stay_stable_while_new_entries_arrive(server: ServerProcess, api: Api) -> None:
    bob = await api.token("bob")  # 500 welcome coins
    room = await RoomClient.open(server.ws, "carol", bob)
    try:
        for n in range(7):
            assert (await room.gift(f"p-{n}", "rose"))["type"] == "ack"
        first = await history(api, bob, limit=3)
        # New gifts arrive between pages: they go before the first page.
        for n in range(7, 10):
            assert (await room.gift(f"p-{n}", "rose"))["type"] == "ack"
        seen = list(first["entries"])
        cursor = first["next_cursor"]
        while cursor is not None:
            page = await history(api, bob, limit=3, cursor=cursor)
            seen += page["entries"]
            cursor = page["next_cursor"]
    finally:
        await room.close()
    assert [row.get("request_id") for row in seen] == [
        *(f"p-{n}" for n in range(6, -1, -1)),
        None,  # the welcome coins
    ]
    assert len({row["id"] for row in seen}) == len(seen)
    newest = (await history(api, bob, limit=1))["entries"][0]
    assert (newest["request_id"], newest["balance_after"]) == ("p-9", 490)


async def test_bad_history_queries_are_typed(api: Api) -> None:
    alice = await api.token("alice")
    for query in ({"limit": "0"}, {"limit": "201"}, {"cursor": "x"}, {"kind": "theft"}):
        refused = await api.http.get("/api/wallet/history", params=query, headers=bearer(alice))
        assert (refused.status_code, refused.json()["code"]) == (400, "bad_field"), query
    overlay = await api.token("carol", "overlay")
    refused = await api.http.get("/api/wallet/history", headers=bearer(overlay))
    assert refused.json()["code"] == "not_allowed"
    assert (await api.http.get("/api/wallet/history")).status_code == 401
