"""Rankings: a room's top gifters by coins, over HTTP and as room messages.

A real server takes real gifts; the rankings come from the earnings
reports that its report worker counts from the creator's ledger, so each
check waits (at most a few seconds) for the worker to have counted.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from tests.client import Api, RoomClient, bearer, funded_sender


async def leaderboard(api: Api, room: str = "carol", period: str = "stream") -> Any:
    answer = await api.http.get(f"/api/rooms/{room}/leaderboard", params={"period": period})
    assert answer.status_code == 200, answer.text
    return answer.json()


async def once_counted(api: Api, coins: dict[str | None, int], period: str = "stream") -> Any:
    """The leaderboard once it ranks exactly ``coins`` (user -> coins)."""
    deadline = time.monotonic() + 15
    while True:
        board = await leaderboard(api, period=period)
        ranked = {entry["user"]: entry["coins"] for entry in board["entries"]}
        if ranked == coins or time.monotonic() > deadline:
            assert ranked == coins, board
            return board
        await asyncio.sleep(0.2)


async def test_gifters_are_ranked_by_coins_for_the_stream_the_day_and_all_time(
    server: Any, api: Api
) -> None:
    big, small = (
        await funded_sender(server.ws, api, "bigspender"),
        await funded_sender(server.ws, api, "sparing"),
    )
    assert (await big.gift("b-1", "hand_hearts", 2))["type"] == "ack"  # 200 coins
    assert (await small.gift("s-1", "rose", 5))["type"] == "ack"  # 5 coins
    assert (await big.gift("b-2", "rose", 1))["type"] == "ack"  # 1 coin more
    board = await once_counted(api, {"bigspender": 201, "sparing": 5})
    assert board["room"] == "carol"
    assert board["stream_id"]  # carol is live in the demo
    assert [(e["rank"], e["name"], e["fan_level"]) for e in board["entries"]] == [
        (1, "bigspender", 0),
        (2, "sparing", 0),
    ]
    for period in ("day", "all"):
        ranked = await once_counted(api, {"bigspender": 201, "sparing": 5}, period)
        assert ranked["period"] == period
        assert "stream_id" not in ranked
    await big.close()
    await small.close()


async def test_an_anonymous_gifter_is_ranked_without_a_name(server: Any, api: Api) -> None:
    shy, open_ = (
        await funded_sender(server.ws, api, "shy"),
        await funded_sender(server.ws, api, "outgoing"),
    )
    token = await api.token("shy")
    hidden = await api.http.put("/api/me/privacy", json={"anonymous": True}, headers=bearer(token))
    assert hidden.json() == {"anonymous": True}
    got = await api.http.get("/api/me/privacy", headers=bearer(token))
    assert got.json() == {"anonymous": True}
    assert (await shy.gift("h-1", "hand_hearts", 1))["type"] == "ack"  # 100 coins
    assert (await open_.gift("o-1", "rose", 3))["type"] == "ack"
    board = await once_counted(api, {None: 100, "outgoing": 3})
    assert [(e["rank"], e["user"], e["name"]) for e in board["entries"]] == [
        (1, None, "anonymous"),
        (2, "outgoing", "outgoing"),
    ]
    # Shown again by name once they say so.
    await api.http.put("/api/me/privacy", json={"anonymous": False}, headers=bearer(token))
    await once_counted(api, {"shy": 100, "outgoing": 3})
    await shy.close()
    await open_.close()


async def test_the_room_hears_its_leaderboard_when_it_changes(server: Any, api: Api) -> None:
    watcher = await RoomClient.open(server.ws, "carol")
    await watcher.of_type("welcome")
    sender = await funded_sender(server.ws, api, "heard")
    assert (await sender.gift("w-1", "rose", 4))["type"] == "ack"
    heard = await watcher.of_type("leaderboard", within=15)
    assert heard["room"] == "carol"
    assert heard["period"] == "stream"
    assert [(e["user"], e["coins"]) for e in heard["entries"]] == [("heard", 4)]
    assert "seq" not in heard
    # Nothing changed since: no second message while the room is quiet.
    assert [m for m in await watcher.drain(1.5) if m.get("type") == "leaderboard"] == []
    await sender.close()
    await watcher.close()


async def test_bad_requests_get_typed_errors(server: Any, api: Api) -> None:
    wrong = await api.http.get("/api/rooms/carol/leaderboard", params={"period": "week"})
    assert (wrong.status_code, wrong.json()["code"]) == (400, "bad_field")
    bad_room = await api.http.get("/api/rooms/no%20such/leaderboard")
    assert (bad_room.status_code, bad_room.json()["code"]) == (404, "not_found")
    token = await api.token("privacy")
    not_bool = await api.http.put(
        "/api/me/privacy", json={"anonymous": "yes"}, headers=bearer(token)
    )
    assert (not_bool.status_code, not_bool.json()["code"]) == (400, "bad_field")
    overlay = await api.token("carol", "overlay")
    refused = await api.http.put(
        "/api/me/privacy", json={"anonymous": True}, headers=bearer(overlay)
    )
    assert refused.status_code == 403
    assert (await api.http.get("/api/me/privacy")).status_code == 401
    # A room nobody gave to yet ranks nobody.
    assert (await leaderboard(api, room="nobody-here"))["entries"] == []
