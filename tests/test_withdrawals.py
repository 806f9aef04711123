"""Creators withdrawing diamonds: a payout profile, the checks, the sandbox
provider's outcomes and its signed callback, and the books after each.

Against a real server in demo mode. carol earns her diamonds the real way
first (alice's rockets), so that reconcile can check every movement.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest
from redis.asyncio import Redis

from server.core import payments
from server.errors import InsufficientDiamonds
from server.money.withdrawals import LEASE_MS, UNSENT_MIN_AGE_MS, SandboxPayouts, Withdrawals
from server.settings import Settings
from server.store.scripts import Scripts
from tests.client import Api, RoomClient, bearer
from tests.conftest import ServerProcess, StartServer
from tests.test_gift_flow import assert_books_balance

PROFILE = {"method": "paypal", "legal_name": "Carol Example", "tax_id": "123-45-6789",
           "account": "carol@example.com"}  # fmt: skip
SECRET = "payout-test-secret"


@pytest.fixture
async def payouts(start_server: StartServer) -> ServerProcess:
    """Payouts wait for the test (an hour) unless it settles them; 700 diamonds a day."""
    return await start_server(
        sandbox_payout_delay_seconds=3600,
        payout_daily_limit_diamonds=700,
        payout_webhook_secret=SECRET,
    )


@pytest.fixture
async def payouts_api(payouts: ServerProcess) -> Any:
    api = Api(payouts.http)
    yield api
    await api.aclose()


async def earn(server: ServerProcess, api: Api) -> str:
    """carol earns 1,999 diamonds from two of alice's rockets; her token."""
    sender = await RoomClient.open(server.ws, "carol", await api.token("alice"))
    try:
        for n in range(2):
            assert (await sender.gift(f"rocket-{n}", "rocket", confirm=True))["type"] == "ack"
    finally:
        await sender.close()
    return await api.token("carol", "creator")


async def withdraw(api: Api, token: str, diamonds: object, request_id: str) -> Any:
    return await api.http.post(
        "/api/creator/withdrawals",
        json={"diamonds": diamonds, "request_id": request_id},
        headers=bearer(token),
    )


async def settle(api: Api, token: str, withdrawal_id: str, outcome: str) -> Any:
    return await api.http.post(
        f"/api/sandbox/payouts/{withdrawal_id}", json={"outcome": outcome}, headers=bearer(token)
    )


def prefix_of(server: ServerProcess) -> str:
    assert server.key_prefix is not None
    return server.key_prefix


def held(wallet: dict[str, Any]) -> tuple[int, int, int]:
    return wallet.get("diamonds", 0), wallet.get("reserved", 0), wallet.get("paid_out", 0)


async def test_a_withdrawal_goes_pending_then_paid_another_fails_and_returns(
    payouts: ServerProcess, payouts_api: Api, redis: Redis
) -> None:
    api = payouts_api
    carol = await earn(payouts, api)
    assert held(await api.wallet(carol)) == (1999, 0, 0)

    unverified = await withdraw(api, carol, 300, "w-0")
    assert (unverified.status_code, unverified.json()["code"]) == (409, "payout_profile_unverified")
    saved = await api.http.put("/api/creator/payout-profile", json=PROFILE, headers=bearer(carol))
    assert saved.status_code == 200
    assert saved.json() == {
        "method": "paypal", "legal_name": "Carol Example", "tax_id": "*******6789",
        "account": "****.com", "currency": "USD", "verified": True,
    }  # fmt: skip

    first = await withdraw(api, carol, 500, "w-1")
    assert first.status_code == 201
    pending = first.json()
    assert {k: pending[k] for k in ("status", "diamonds", "amount", "currency", "method")} == {
        "status": "pending", "diamonds": 500, "amount": "2.50", "currency": "USD",
        "method": "paypal",
    }  # fmt: skip
    retry = await withdraw(api, carol, 500, "w-1")
    assert (retry.status_code, retry.json()["withdrawal_id"], retry.json()["duplicate"]) == (
        200, pending["withdrawal_id"], True,
    )  # fmt: skip
    assert held(await api.wallet(carol)) == (1499, 500, 0)

    paid = await settle(api, carol, pending["withdrawal_id"], "paid")
    assert (paid.json()["status"], paid.json()["withdrawal"]["status"]) == ("ok", "paid")
    assert held(await api.wallet(carol)) == (1499, 0, 500)

    second = (await withdraw(api, carol, 100 + 100, "w-2")).json()
    failed = await settle(api, carol, second["withdrawal_id"], "failed")
    assert failed.json()["withdrawal"]["status"] == "failed"
    assert held(await api.wallet(carol)) == (1499, 0, 500)
    # A late "paid" after "failed" is refused: nothing moves.
    late = await settle(api, carol, second["withdrawal_id"], "paid")
    assert (late.json()["status"], late.json()["withdrawal"]["status"]) == ("conflict", "failed")
    again = await settle(api, carol, second["withdrawal_id"], "failed")
    assert again.json()["status"] == "duplicate"
    assert held(await api.wallet(carol)) == (1499, 0, 500)

    listed = (await api.http.get("/api/creator/withdrawals", headers=bearer(carol))).json()
    assert [(w["diamonds"], w["status"]) for w in listed["withdrawals"]] == [
        (200, "failed"), (500, "paid"),
    ]  # fmt: skip
    await assert_books_balance(redis, prefix_of(payouts))


async def test_each_refusal_is_typed_and_moves_nothing(
    payouts: ServerProcess, payouts_api: Api, redis: Redis
) -> None:
    api = payouts_api
    carol = await earn(payouts, api)
    await api.http.put("/api/creator/payout-profile", json=PROFILE, headers=bearer(carol))
    refusals = [
        (199, "below_minimum", 400),  # 1 USD is 200 diamonds
        (5000, "insufficient_diamonds", 402),
        (0, "bad_field", 400),
        ("300", "bad_field", 400),
    ]
    for n, (diamonds, code, status) in enumerate(refusals):
        refused = await withdraw(api, carol, diamonds, f"r-{n}")
        assert (refused.status_code, refused.json()["code"]) == (status, code), diamonds
    assert (await withdraw(api, carol, 300, "bad id!")).json()["code"] == "bad_field"
    first = (await withdraw(api, carol, 500, "d-1")).json()
    over = await withdraw(api, carol, 300, "d-2")  # 800 today, over the 700 a day
    assert (over.status_code, over.json()["code"]) == (429, "daily_limit_exceeded")
    await settle(api, carol, first["withdrawal_id"], "failed")  # no longer counts today
    assert (await withdraw(api, carol, 300, "d-2")).status_code == 201
    assert held(await api.wallet(carol)) == (1699, 300, 0)
    viewer = await api.token("alice")
    assert (await withdraw(api, viewer, 300, "v-1")).json()["code"] == "not_allowed"
    missing = await settle(api, carol, "0" * 32, "paid")
    assert (missing.status_code, missing.json()["code"]) == (404, "unknown_withdrawal")
    bad_profile = dict(PROFILE, method="cheque")
    put = await api.http.put("/api/creator/payout-profile", json=bad_profile, headers=bearer(carol))
    assert put.json()["code"] == "bad_field"
    await assert_books_balance(redis, prefix_of(payouts))


async def test_the_providers_callback_must_be_signed_and_counts_once(
    payouts: ServerProcess, payouts_api: Api, redis: Redis
) -> None:
    api = payouts_api
    carol = await earn(payouts, api)
    await api.http.put("/api/creator/payout-profile", json=PROFILE, headers=bearer(carol))
    pending = (await withdraw(api, carol, 400, "cb-1")).json()
    body = json.dumps({
        "type": "payout.paid", "withdrawal_id": pending["withdrawal_id"], "creator": "carol",
        "payout_id": "po_123",
    }).encode()  # fmt: skip

    async def post(signature: str | None) -> Any:
        headers = {"content-type": "application/json"}
        if signature is not None:
            headers[payments.SIGNATURE_HEADER] = signature
        return await api.http.post("/api/payouts/webhook", content=body, headers=headers)

    assert (await post(None)).status_code == 401
    forged = payments.sign("not-the-secret", body, time.time())
    assert (await post(forged)).status_code == 401
    stale = payments.sign(SECRET, body, time.time() - 3600)
    assert (await post(stale)).status_code == 401
    assert held(await api.wallet(carol)) == (1599, 400, 0)
    good = payments.sign(SECRET, body, time.time())
    assert (await post(good)).json()["status"] == "ok"
    assert (await post(good)).json()["status"] == "duplicate"  # a replay pays nothing twice
    assert held(await api.wallet(carol)) == (1599, 0, 400)
    await assert_books_balance(redis, prefix_of(payouts))


async def test_the_sandbox_provider_pays_by_itself_after_its_delay(
    start_server: StartServer, redis: Redis
) -> None:
    server = await start_server(sandbox_payout_delay_seconds=0.2)
    api = Api(server.http)
    try:
        carol = await earn(server, api)
        await api.http.put("/api/creator/payout-profile", json=PROFILE, headers=bearer(carol))
        pending = (await withdraw(api, carol, 1000, "auto-1")).json()
        assert pending["status"] == "pending"
        for _ in range(100):
            listed = (await api.http.get("/api/creator/withdrawals", headers=bearer(carol))).json()
            if listed["withdrawals"][0]["status"] == "paid":
                break
            await asyncio.sleep(0.05)
        assert listed["withdrawals"][0]["status"] == "paid"
        assert held(await api.wallet(carol)) == (999, 0, 1000)
        await assert_books_balance(redis, prefix_of(server))
    finally:
        await api.aclose()


async def test_the_creators_open_pages_hear_each_status_and_no_one_else_does(
    payouts: ServerProcess, payouts_api: Api
) -> None:
    api = payouts_api
    carol = await earn(payouts, api)
    await api.http.put("/api/creator/payout-profile", json=PROFILE, headers=bearer(carol))
    page = await RoomClient.open(payouts.ws, "carol", carol)
    viewer = await RoomClient.open(payouts.ws, "carol", await api.token("bob"))
    try:
        await page.of_type("welcome")
        await viewer.of_type("welcome")
        pending = (await withdraw(api, carol, 500, "w-news")).json()
        heard = await page.of_type("withdrawal")
        assert heard["withdrawal"]["withdrawal_id"] == pending["withdrawal_id"]
        assert heard["withdrawal"]["status"] == "pending"
        await settle(api, carol, pending["withdrawal_id"], "paid")
        paid = await page.of_type("withdrawal")
        assert (paid["withdrawal"]["status"], paid["withdrawal"]["diamonds"]) == ("paid", 500)
        # A retry moves nothing and says nothing new.
        await withdraw(api, carol, 500, "w-news")
        assert not [m for m in await page.drain() if m.get("type") == "withdrawal"]
        assert not [m for m in await viewer.drain() if m.get("type") == "withdrawal"]
    finally:
        await page.close()
        await viewer.close()


class DiesAtHandOver(SandboxPayouts):
    """The sandbox provider, but the process dies as it hands a withdrawal over."""

    async def submit(self, creator: str, withdrawal_id: str, now_ms: int) -> None:
        raise ConnectionError("the process died")


async def test_a_hand_over_lost_with_its_process_is_made_by_the_sweep(
    redis: Redis, key_prefix: str
) -> None:
    scripts = Scripts.register(redis)
    settings = Settings(key_prefix=key_prefix)
    now = int(time.time() * 1000)
    sandbox = SandboxPayouts(redis, key_prefix, 0)
    await redis.hset(f"{key_prefix}:{{w:carol}}:wallet", mapping={"diamonds": 900})
    dying = Withdrawals(redis, scripts, settings, DiesAtHandOver(redis, key_prefix, 0))
    await dying.save_profile("carol", dict(PROFILE))
    with pytest.raises(ConnectionError):
        await dying.request("carol", 500, "w-lost", now)
    [pending] = await dying.list("carol")
    assert pending["status"] == "pending"
    assert await sandbox.take_due(now + 1) == []  # never handed over

    sweeper = Withdrawals(redis, scripts, settings, sandbox)
    assert await sweeper.hand_over_unsent(now) == 0  # too young: maybe still on its way
    assert await sweeper.hand_over_unsent(now + UNSENT_MIN_AGE_MS) == 1
    assert await sandbox.take_due(now + UNSENT_MIN_AGE_MS) == [("carol", pending["withdrawal_id"])]
    assert await sweeper.hand_over_unsent(now + UNSENT_MIN_AGE_MS) == 0  # once
    # A refused request leaves no mark behind.
    with pytest.raises(InsufficientDiamonds):
        await sweeper.request("carol", 5000, "w-too-much", now)
    assert await redis.zcard(f"{key_prefix}:withdrawals:unsent") == 0


async def test_a_sandbox_payout_taken_by_a_process_that_dies_comes_due_again(
    redis: Redis, key_prefix: str
) -> None:
    sandbox = SandboxPayouts(redis, key_prefix, 0)
    now = int(time.time() * 1000)
    await sandbox.submit("carol", "w1", now)
    assert await sandbox.take_due(now) == [("carol", "w1")]
    # Taken, and its taker died before paying: leased, not lost.
    assert await sandbox.take_due(now + 1) == []
    assert await sandbox.take_due(now + LEASE_MS + 1) == [("carol", "w1")]
    await sandbox.done("carol", "w1")
    assert await sandbox.take_due(now + 10 * LEASE_MS) == []
