"""The operator API: who may call it, and what each action does to gifts,
withdrawals and eligibility, with every action in the audit."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from redis.asyncio import Redis

from tests.client import Api, RoomClient, bearer
from tests.conftest import ServerProcess, StartServer
from tests.test_gift_flow import assert_books_balance

OPERATOR_TOKEN = "operator-test-token-0123456789"
OPERATOR = bearer(OPERATOR_TOKEN)


@pytest.fixture
async def ops(start_server: StartServer) -> ServerProcess:
    return await start_server(operator_token=OPERATOR_TOKEN)


@pytest.fixture
async def ops_api(ops: ServerProcess) -> Any:
    api = Api(ops.http)
    yield api
    await api.aclose()


async def until(check: Any, within: float = 3.0) -> None:
    """Until ``check()`` is true: the server's caches hold a profile or the
    suspended set for up to a second."""
    deadline = asyncio.get_running_loop().time() + within
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, "never came true"
        await asyncio.sleep(0.05)


async def test_only_the_operator_token_opens_the_operator_api(ops_api: Api) -> None:
    api = ops_api
    assert (await api.http.get("/api/admin/audit")).status_code == 401
    refused = await api.http.get("/api/admin/audit", headers=bearer("not-it"))
    assert (refused.status_code, refused.json()["code"]) == (401, "unauthorized")
    # A user's own token says who they are, and that they are not an operator.
    for token in (await api.token("carol", "creator"), await api.token("alice")):
        refused = await api.http.get("/api/admin/audit", headers=bearer(token))
        assert (refused.status_code, refused.json()["code"]) == (403, "not_allowed")
    assert (await api.http.get("/api/admin/audit", headers=OPERATOR)).status_code == 200


async def test_a_suspended_viewer_cannot_send_but_a_paid_retry_gets_its_first_outcome(
    ops: ServerProcess, ops_api: Api
) -> None:
    api = ops_api
    alice = await api.token("alice")
    sender = await RoomClient.open(ops.ws, "carol", alice)
    try:
        first = await sender.gift("before", "rose")
        assert first["type"] == "ack"
        done = await api.http.post("/api/admin/users/alice/suspend", headers=OPERATOR)
        assert done.json()["after"]["suspended"] is True
        balance = (await api.wallet(alice))["coins"]

        async def refused() -> bool:
            reply = await sender.gift(f"while-{asyncio.get_running_loop().time()}", "rose")
            return reply.get("code") == "suspended"

        await until(refused)
        assert (await api.wallet(alice))["coins"] == balance  # nothing moved
        retry = await sender.gift("before", "rose")
        assert (retry["type"], retry["duplicate"], retry["seq"]) == ("ack", True, first["seq"])
        await api.http.post("/api/admin/users/alice/unsuspend", headers=OPERATOR)

        async def sends_again() -> bool:
            reply = await sender.gift(f"after-{asyncio.get_running_loop().time()}", "rose")
            return bool(reply["type"] == "ack")

        await until(sends_again)
    finally:
        await sender.close()


async def test_a_suspended_creator_receives_nothing_and_cannot_withdraw(
    ops: ServerProcess, ops_api: Api
) -> None:
    api = ops_api
    await api.http.post("/api/admin/users/carol/suspend", headers=OPERATOR)
    carol = await api.token("carol", "creator")
    profile = (await api.http.get("/api/creator/profile", headers=bearer(carol))).json()
    assert "suspended" in profile["reasons"]
    withdrawal = await api.http.post(
        "/api/creator/withdrawals",
        json={"diamonds": 200, "request_id": "s-1"},
        headers=bearer(carol),
    )
    assert (withdrawal.status_code, withdrawal.json()["code"]) == (403, "suspended")
    sender = await RoomClient.open(ops.ws, "carol", await api.token("alice"))
    try:

        async def refused() -> bool:
            reply = await sender.gift(f"to-{asyncio.get_running_loop().time()}", "rose")
            return reply.get("code") == "suspended"

        await until(refused)
    finally:
        await sender.close()


async def test_age_and_forced_eligibility_decide_over_the_rules(ops_api: Api) -> None:
    api = ops_api
    minor = await api.http.put(
        "/api/admin/users/carol/age", json={"status": "minor"}, headers=OPERATOR
    )
    assert (minor.json()["before"]["age"], minor.json()["after"]["age"]) == ("adult", "minor")

    async def carol_refused_as_minor() -> bool:
        status = (await api.http.get("/api/rooms/carol")).json()
        return bool(status["reasons"] == ["not_adult"])

    await until(carol_refused_as_minor)
    assert (await api.http.put(
        "/api/admin/users/carol/age", json={"status": "teen"}, headers=OPERATOR
    )).json()["code"] == "bad_field"  # fmt: skip

    dave = await api.token("dave", "creator")
    switch = {"enabled": True}
    refused = await api.http.post("/api/creator/gifting", json=switch, headers=bearer(dave))
    assert refused.json()["reasons"] == ["followers_below_minimum"]
    forced = await api.http.put(
        "/api/admin/creators/dave/eligibility", json={"force": True}, headers=OPERATOR
    )
    assert forced.json()["after"]["eligibility_forced"] is True
    allowed = await api.http.post("/api/creator/gifting", json=switch, headers=bearer(dave))
    assert (allowed.status_code, allowed.json()["gifting_enabled"]) == (200, True)
    await api.http.put(
        "/api/admin/creators/dave/eligibility", json={"force": False}, headers=OPERATOR
    )

    async def dave_refused_by_the_operator() -> bool:
        status = (await api.http.get("/api/rooms/dave")).json()
        # dave is not live either.
        return bool(status["reasons"] == ["operator_refused", "room_offline"])

    await until(dave_refused_by_the_operator)
    cleared = await api.http.put(
        "/api/admin/creators/dave/eligibility", json={"force": None}, headers=OPERATOR
    )
    assert cleared.json()["after"]["eligibility_forced"] is None
    bad = await api.http.put(
        "/api/admin/creators/dave/eligibility", json={"force": "yes"}, headers=OPERATOR
    )
    assert bad.json()["code"] == "bad_field"

    actions = (await api.http.get("/api/admin/audit", headers=OPERATOR)).json()["actions"]
    assert [(a["action"], a["target"]) for a in actions] == [
        ("eligibility", "dave"), ("eligibility", "dave"), ("eligibility", "dave"),
        ("age", "carol"),
    ]  # fmt: skip
    assert actions[0]["who"] == "operator"
    assert (
        actions[0]["before"]["eligibility_forced"],
        actions[0]["after"]["eligibility_forced"],
    ) == (False, None)


async def test_a_users_ledger_shows_every_movement_newest_first(
    ops: ServerProcess, ops_api: Api
) -> None:
    api = ops_api
    sender = await RoomClient.open(ops.ws, "carol", await api.token("alice"))
    try:
        for n in range(3):
            assert (await sender.gift(f"l-{n}", "rose"))["type"] == "ack"
    finally:
        await sender.close()
    ledger = (await api.http.get("/api/admin/users/alice/ledger", headers=OPERATOR)).json()
    assert [(e["kind"], e.get("req")) for e in ledger["entries"][:3]] == [
        ("gift", "l-2"), ("gift", "l-1"), ("gift", "l-0"),
    ]  # fmt: skip
    assert ledger["entries"][-1]["kind"] == "recharge"  # the demo's welcome coins
    assert ledger["wallet"]["coins"] == 5000 - 3
    assert (await api.http.get("/api/admin/users/no%20one/ledger", headers=OPERATOR)).json()[
        "code"
    ] == "bad_field"


async def test_a_grant_of_promotional_coins_counts_once_and_apart(
    ops: ServerProcess, ops_api: Api, redis: Redis
) -> None:
    api = ops_api
    grant = {"user": "bob", "coins": 500, "reason": "welcome back", "request_id": "g-1"}
    first = await api.http.post("/api/admin/grants", json=grant, headers=OPERATOR)
    assert (first.status_code, first.json()["status"], first.json()["balance"]) == (201, "ok", 1000)
    again = await api.http.post("/api/admin/grants", json=grant, headers=OPERATOR)
    assert (again.status_code, again.json()["status"], again.json()["balance"]) == (
        200, "duplicate", 1000,
    )  # fmt: skip
    for bad in ({"coins": 0}, {"coins": 10**7}, {"coins": "5"}, {"reason": ""},
                {"request_id": "no spaces"}, {"user": "no one"}):  # fmt: skip
        refused = await api.http.post("/api/admin/grants", json=grant | bad, headers=OPERATOR)
        assert (refused.status_code, refused.json()["code"]) == (400, "bad_field"), bad
    wallet = await api.wallet(await api.token("bob"))
    assert (wallet["coins"], wallet["promo"], wallet.get("recharged", 0)) == (1000, 500, 0)
    ledger = (await api.http.get("/api/admin/users/bob/ledger", headers=OPERATOR)).json()
    newest = ledger["entries"][0]
    assert (newest["kind"], newest["amount"], newest["reason"], newest["by"]) == (
        "promo", "500", "welcome back", "operator",
    )  # fmt: skip
    actions = (await api.http.get("/api/admin/audit", headers=OPERATOR)).json()["actions"]
    assert [(a["action"], a["target"], a["after"]["coins"]) for a in actions] == [
        ("grant", "bob", 500)
    ]
    await assert_books_balance(redis, ops.key_prefix or "")
