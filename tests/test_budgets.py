"""A viewer's own spending limits, enforced by the gift script itself.

The windows' arithmetic is checked against the Lua that the gift runs, on
the real Valkey; the rest against a real demo server whose cooling-off is a
second, so that a raise can be seen to wait and then apply.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from redis.asyncio import Redis

from server.core import budget_rules
from server.store.scripts import source
from tests.client import Api, RoomClient, bearer
from tests.conftest import ServerProcess, StartServer

DAY_MS = budget_rules.DAY_MS
# Edges: the epoch, a Monday, month ends in leap and common years, a century.
TIMES = [
    0,
    4 * DAY_MS - 1,
    4 * DAY_MS,
    951_782_400_000,  # 2000-02-29
    951_868_800_000 - 1,  # 2000-02-29 23:59:59.999
    1_709_164_800_000,  # 2024-02-29
    1_767_225_599_999,  # 2025-12-31 23:59:59.999
    1_767_225_600_000,  # 2026-01-01
    4_107_542_400_000,  # 2100-03-01
]


async def test_the_windows_are_the_same_in_python_and_in_the_gift_script(redis: Redis) -> None:
    script = source("budget").split("local held")[0]  # lib_budget.lua's functions
    probe = script + "return {budget_windows(tonumber(ARGV[1]))}"
    for at in TIMES:
        day, week, month = await redis.eval(probe, 0, at)
        assert (day, week, month) == budget_rules.window_numbers(at), at
    ends = budget_rules.window_ends(1_767_225_600_000)  # a Thursday, 1 January 2026
    assert ends == (1_767_312_000_000, 1_767_571_200_000, 1_769_904_000_000)


@pytest.fixture
async def cooling(start_server: StartServer) -> ServerProcess:
    return await start_server(budget_cooling_seconds=1)


async def put(api: Api, token: str, body: object) -> Any:
    return await api.http.put("/api/wallet/budget", json=body, headers=bearer(token))


async def budget(api: Api, token: str) -> Any:
    return (await api.http.get("/api/wallet/budget", headers=bearer(token))).json()


async def test_a_daily_limit_refuses_exactly_the_gift_that_would_cross_it(
    cooling: ServerProcess,
) -> None:
    api = Api(cooling.http)
    alice = await api.token("alice")
    room = await RoomClient.open(cooling.ws, "carol", alice)
    try:
        set_to = (await put(api, alice, {"daily": 100})).json()
        assert (set_to["daily"]["limit"], set_to["daily"]["remaining"]) == (100, 100)
        assert set_to["weekly"]["limit"] is None
        assert (await room.gift("b-1", "rose", 60))["type"] == "ack"
        over = await room.gift("b-2", "rose", 41)
        assert (over["code"], over["remaining"]) == ("budget_exceeded", 40)
        assert (await room.gift("b-3", "rose", 40))["balance"] == 4900  # up to it exactly
        assert (await room.gift("b-4", "rose"))["remaining"] == 0
        # A retry of a request paid before is answered with its first outcome.
        assert (await room.gift("b-1", "rose", 60))["duplicate"] is True
        now = await budget(api, alice)
        assert (now["daily"]["spent"], now["daily"]["remaining"], now["remaining"]) == (100, 0, 0)
        assert now["daily"]["spent"] == now["weekly"]["spent"] == now["monthly"]["spent"]
        assert (await api.wallet(alice))["coins"] == 4900

        # A raise waits for the cooling-off; a lower limit applies at once.
        raised = (await put(api, alice, {"daily": 150, "weekly": 120})).json()
        assert raised["daily"]["limit"] == 100
        assert raised["daily"]["pending"]["limit"] == 150
        assert raised["weekly"]["limit"] == 120  # a new limit is a lower one
        assert (await room.gift("b-5", "rose"))["code"] == "budget_exceeded"
        await asyncio.sleep(1.2)
        after = await budget(api, alice)
        assert (after["daily"]["limit"], after["daily"]["pending"]) == (150, None)
        assert after["remaining"] == 20  # the weekly limit is now the tighter
        over = await room.gift("b-6", "rose", 21)
        assert (over["code"], over["remaining"]) == ("budget_exceeded", 20)
        assert (await room.gift("b-7", "rose", 20))["type"] == "ack"

        removed = (await put(api, alice, {"weekly": None})).json()
        assert removed["weekly"]["limit"] == 120
        assert removed["weekly"]["pending"]["limit"] is None
        again = (await put(api, alice, {"weekly": 120})).json()  # calls the removal off
        assert (again["weekly"]["limit"], again["weekly"]["pending"]) == (120, None)
    finally:
        await room.close()
        await api.aclose()


async def test_a_first_budget_counts_what_was_spent_before_it(cooling: ServerProcess) -> None:
    api = Api(cooling.http)
    bob = await api.token("bob")
    room = await RoomClient.open(cooling.ws, "carol", bob)
    try:
        assert (await room.gift("e-1", "rose", 30))["type"] == "ack"
        before = await budget(api, bob)
        assert (before["daily"]["limit"], before["daily"]["spent"]) == (None, 30)
        first = (await put(api, bob, {"daily": 40, "monthly": 1000})).json()
        assert (first["daily"]["spent"], first["daily"]["remaining"]) == (30, 10)
        assert first["monthly"]["remaining"] == 970
        assert (await room.gift("e-2", "rose", 11))["remaining"] == 10
        assert (await room.gift("e-3", "rose", 10))["type"] == "ack"
    finally:
        await room.close()
        await api.aclose()


async def test_bad_budgets_are_typed_and_change_nothing(api: Api) -> None:
    alice = await api.token("alice")
    for body in ({"daily": -1}, {"daily": "100"}, {"daily": 1.5}, {"yearly": 5}, {}, [1]):
        refused = await put(api, alice, body)
        assert refused.status_code == 400, body
        assert refused.json()["code"] in ("bad_field", "bad_request"), body
    assert (await budget(api, alice))["daily"]["limit"] is None
    overlay = await api.token("carol", "overlay")
    assert (await put(api, overlay, {"daily": 5})).json()["code"] == "not_allowed"
    assert (await api.http.get("/api/wallet/budget")).status_code == 401
