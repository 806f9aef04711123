"""Goals: a creator's target for the room, filled by its gifts, reached once.

Real servers take real gifts; goals fill from the creator's ledger, counted
by the processes that serve the room, so each check waits a few seconds at
most. With two processes and two senders crossing the target together, the
room still hears ``goal_reached`` once.
"""

from __future__ import annotations

import asyncio
from typing import Any

from redis.asyncio import Redis

from server.money.goals import goal_key
from tests.client import Api, RoomClient, bearer, funded_sender


async def set_goal(api: Api, body: dict[str, Any]) -> Any:
    creator = await api.token("carol", "creator")
    return await api.http.post("/api/creator/goals", json=body, headers=bearer(creator))


async def room_goal(api: Api) -> Any:
    answer = await api.http.get("/api/rooms/carol/goal")
    assert answer.status_code == 200
    return answer.json()["goal"]


async def test_a_coins_goal_fills_from_gifts_after_it_and_is_reached_once(
    server: Any, api: Api
) -> None:
    early = await funded_sender(server.ws, api, "early")
    assert (await early.gift("e-1", "rose", 5))["type"] == "ack"  # before the goal: not counted
    watcher = await RoomClient.open(server.ws, "carol")
    await watcher.of_type("welcome")
    made = await set_goal(api, {"title": "New mic", "target_coins": 250})
    assert made.status_code == 201, made.text
    goal = made.json()["goal"]
    assert (goal["title"], goal["kind"], goal["target"], goal["progress"]) == (
        "New mic", "coins", 250, 0,
    )  # fmt: skip
    assert (await watcher.of_type("goal"))["goal"]["goal_id"] == goal["goal_id"]
    assert (await early.gift("e-2", "hand_hearts", 2))["type"] == "ack"  # 200 coins
    progress = await watcher.of_type("goal", within=10)
    assert progress["goal"]["progress"] == 200
    assert progress["goal"]["reached"] is None
    assert (await early.gift("e-3", "hand_hearts", 1))["type"] == "ack"  # 300: past it
    reached = await watcher.of_type("goal_reached", within=10)
    assert reached["seq"] > 0
    assert (reached["goal"]["goal_id"], reached["goal"]["progress"]) == (goal["goal_id"], 300)
    assert (await room_goal(api))["reached"] is not None
    # Gifts after it was reached do not fill it further, nor reach it again.
    assert (await early.gift("e-4", "rose", 1))["type"] == "ack"
    # Goals are looked at once a second: a second look has come and gone.
    later = [m for m in await watcher.drain(1.5) if m.get("type") in ("goal", "goal_reached")]
    assert [m["type"] for m in later] == ["goal"] * len(later)
    assert (await room_goal(api))["progress"] == 300
    await early.close()
    await watcher.close()


async def test_a_gift_goal_counts_only_that_gift(server: Any, api: Api) -> None:
    fan = await funded_sender(server.ws, api, "rosy")
    made = await set_goal(api, {"title": "100 roses", "gift_id": "rose", "target_count": 100})
    assert made.status_code == 201, made.text
    assert (await fan.gift("r-1", "rose", 7))["type"] == "ack"
    assert (await fan.gift("r-2", "hand_hearts", 1))["type"] == "ack"  # another gift
    for _ in range(100):
        goal = await room_goal(api)
        if goal["progress"]:
            break
        await asyncio.sleep(0.1)
    assert (goal["kind"], goal["gift_id"], goal["progress"]) == ("gift", "rose", 7)
    await fan.close()


async def test_two_processes_and_two_senders_reach_a_goal_once(
    server: Any, second_server: Any, api: Api
) -> None:
    first, second = (
        await funded_sender(server.ws, api, "one"),
        await funded_sender(second_server.ws, api, "two"),
    )
    watchers = [await RoomClient.open(s.ws, "carol") for s in (server, second_server)]
    for watcher in watchers:
        await watcher.of_type("welcome")
    made = await set_goal(api, {"title": "Together", "target_coins": 150})
    assert made.status_code == 201
    # Each alone falls short; sent together, both processes count them.
    acks = await asyncio.gather(
        first.gift("t-1", "hand_hearts", 1), second.gift("t-2", "hand_hearts", 1)
    )
    assert [ack["type"] for ack in acks] == ["ack", "ack"]
    reached = [await w.of_type("goal_reached", within=10) for w in watchers]
    assert reached[0]["seq"] == reached[1]["seq"]
    assert reached[0]["goal"]["progress"] == 200
    drained = await asyncio.gather(*(watcher.drain(1.5) for watcher in watchers))
    assert [m for seen in drained for m in seen if m.get("type") == "goal_reached"] == []
    for client in (first, second, *watchers):
        await client.close()


async def test_a_goal_reached_but_never_said_is_said_by_the_next_look(
    server: Any, api: Api, redis: Redis
) -> None:
    # As a process leaves it when it dies between reaching the goal and
    # saying so: reached, not announced.
    fan = await funded_sender(server.ws, api, "witness")
    watcher = await RoomClient.open(server.ws, "carol")
    await watcher.of_type("welcome")
    made = await set_goal(api, {"title": "Said once", "target_coins": 5000})
    key = goal_key(server.key_prefix, "carol")
    await redis.hset(key, mapping={"reached": "1767225600000", "progress": "5000"})
    assert (await fan.gift("w-1", "rose", 1))["type"] == "ack"  # the room is looked at again
    reached = await watcher.of_type("goal_reached", within=10)
    assert reached["goal"]["goal_id"] == made.json()["goal"]["goal_id"]
    # Marked said right after it is published.
    for _ in range(50):
        if await redis.hget(key, "announced") == b"1":
            break
        await asyncio.sleep(0.05)
    assert await redis.hget(key, "announced") == b"1"
    assert [m for m in await watcher.drain(1.5) if m.get("type") == "goal_reached"] == []
    await fan.close()
    await watcher.close()


async def test_clearing_a_goal_tells_the_room(server: Any, api: Api) -> None:
    watcher = await RoomClient.open(server.ws, "carol")
    await watcher.of_type("welcome")
    assert (await set_goal(api, {"title": "Soon gone", "target_coins": 10})).status_code == 201
    await watcher.of_type("goal")
    creator = await api.token("carol", "creator")
    cleared = await api.http.delete("/api/creator/goals", headers=bearer(creator))
    assert cleared.json() == {"goal": None}
    assert (await watcher.of_type("goal"))["goal"] is None
    assert await room_goal(api) is None
    await watcher.close()


async def test_bad_goals_get_typed_errors(server: Any, api: Api) -> None:
    cases: list[tuple[dict[str, Any], int, str]] = [
        ({"title": "", "target_coins": 10}, 400, "bad_field"),
        ({"title": "x" * 61, "target_coins": 10}, 400, "bad_field"),
        ({"title": "t", "target_coins": 0}, 400, "bad_field"),
        ({"title": "t", "target_coins": True}, 400, "bad_field"),
        (
            {"title": "t", "target_coins": 10, "gift_id": "rose", "target_count": 1},
            400,
            "bad_field",
        ),
        ({"title": "t", "gift_id": "no_such_gift", "target_count": 1}, 400, "unknown_gift"),
        ({"title": "t", "gift_id": "rose"}, 400, "bad_field"),
    ]
    for body, status, code in cases:
        answer = await set_goal(api, body)
        assert (answer.status_code, answer.json()["code"]) == (status, code), body
    viewer = await api.token("notacreator")
    refused = await api.http.post(
        "/api/creator/goals", json={"title": "t", "target_coins": 1}, headers=bearer(viewer)
    )
    assert (refused.status_code, refused.json()["code"]) == (403, "not_allowed")
    assert await room_goal(api) is None  # nothing was set by any of these
