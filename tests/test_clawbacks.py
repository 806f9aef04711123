"""Refunds and chargebacks: a paid order's coins taken back, once per order.

Against a real demo server with an operator token: an operator's refund
(confirmed by the sandbox provider's signed callback), the provider's own
refund and chargeback callbacks sent three times each, the shortfall of
coins already spent, the flag a chargeback sets, and the books after all.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from redis.asyncio import Redis

from server.core import payments
from tests.client import Api, RoomClient, bearer
from tests.conftest import ServerProcess, StartServer
from tests.test_gift_flow import assert_books_balance

OPERATOR_TOKEN = "clawback-test-operator-token"
OPERATOR = {"authorization": f"Bearer {OPERATOR_TOKEN}"}
SECRET = "clawback-test-webhook-secret"


@pytest.fixture
async def shop(start_server: StartServer) -> ServerProcess:
    return await start_server(operator_token=OPERATOR_TOKEN, webhook_secret=SECRET)


async def provider_says(api: Api, kind: str, order_id: str, price: str) -> Any:
    event = payments.PaymentConfirmation(
        payment_id=f"prov_{kind}_{order_id[:8]}",
        order_id=order_id,
        price=price,
        currency="USD",
        type=kind,
    )
    body = payments.confirmation_body(event)
    signature = payments.sign(SECRET, body, time.time())
    return await api.http.post(
        "/api/payments/webhook",
        content=body,
        headers={payments.SIGNATURE_HEADER: signature, "content-type": "application/json"},
    )


async def test_an_operator_refund_takes_back_what_is_left_once(
    shop: ServerProcess, redis: Redis
) -> None:
    api = Api(shop.http)
    try:
        minor = await api.token("young")
        paid = await api.buy(minor, "coins_330")
        order_id = paid["order_id"]
        room = await RoomClient.open(shop.ws, "carol", minor)
        try:
            assert (await room.gift("spent-1", "corgi"))["balance"] == 330 - 299
        finally:
            await room.close()
        balance = (await api.wallet(minor))["coins"]
        body = {"order_id": order_id, "reason": "guardian_request"}
        first = await api.http.post("/api/admin/refunds", json=body, headers=OPERATOR)
        assert first.status_code == 201, first.text
        refund = first.json()
        assert (refund["coins_taken_back"], refund["shortfall"]) == (balance, 330 - balance)
        assert (refund["balance"], refund["provider"]) == (0, "sandbox: refunded")
        for _ in range(2):  # again: the first outcome, nothing more
            again = await api.http.post("/api/admin/refunds", json=body, headers=OPERATOR)
            assert (again.status_code, again.json()["status"]) == (200, "duplicate")
            assert again.json()["coins_taken_back"] == balance
        wallet = await api.wallet(minor)
        assert (wallet["coins"], wallet["refunded"], wallet["shortfall"]) == (
            0,
            balance,
            330 - balance,
        )
        history = await api.http.get("/api/wallet/history", headers=bearer(minor))
        newest = history.json()["entries"][0]
        assert (newest["kind"], newest["coins"], newest["order_id"]) == (
            "refund",
            -balance,
            order_id,
        )
        assert newest["reason"] == "guardian_request"
        # A refund does not flag: the account may buy again.
        assert (await api.order(minor, "coins_65")) != ""
        await assert_books_balance(redis, shop.key_prefix or "")
    finally:
        await api.aclose()


async def test_a_chargeback_sent_three_times_takes_back_once_and_flags(
    shop: ServerProcess, redis: Redis
) -> None:
    api = Api(shop.http)
    try:
        payer = await api.token("payer")
        paid = await api.buy(payer, "coins_660")
        room = await RoomClient.open(shop.ws, "carol", payer)
        try:
            assert (await room.gift("cb-1", "corgi", 2))["balance"] == 660 - 598
        finally:
            await room.close()
        answers = [
            (await provider_says(api, payments.CHARGED_BACK, paid["order_id"], "9.99")).json()
            for _ in range(3)
        ]
        assert [a["status"] for a in answers] == ["ok", "duplicate", "duplicate"]
        assert {(a["coins_taken_back"], a["shortfall"]) for a in answers} == {(62, 598)}
        wallet = await api.wallet(payer)
        assert (wallet["coins"], wallet["refunded"], wallet["shortfall"]) == (0, 62, 598)
        # Flagged: no new orders, until the operator clears it.
        refused = await api.http.post(
            "/api/orders", json={"package": "coins_65"}, headers=bearer(payer)
        )
        assert (refused.status_code, refused.json()["code"]) == (403, "account_flagged")
        cleared = await api.http.post("/api/admin/users/payer/unflag", headers=OPERATOR)
        assert cleared.json()["changed"] is True
        assert (await api.order(payer, "coins_65")) != ""
        # A provider refund of the same order later: the first outcome, once.
        late = await provider_says(api, payments.REFUNDED, paid["order_id"], "9.99")
        assert (late.json()["status"], late.json()["coins_taken_back"]) == ("duplicate", 62)
        await assert_books_balance(redis, shop.key_prefix or "")
    finally:
        await api.aclose()


async def test_bad_refunds_are_typed_and_move_nothing(shop: ServerProcess) -> None:
    api = Api(shop.http)
    try:
        buyer = await api.token("buyer")
        unpaid = await api.order(buyer, "coins_65")
        for body, code in (
            ({"order_id": unpaid, "reason": "fraud"}, "order_not_paid"),
            ({"order_id": "f" * 32, "reason": "fraud"}, "unknown_order"),
            ({"order_id": unpaid, "reason": "because"}, "bad_field"),
            ({"order_id": "../x", "reason": "fraud"}, "bad_field"),
        ):
            refused = await api.http.post("/api/admin/refunds", json=body, headers=OPERATOR)
            assert refused.json()["code"] == code, body
        # A viewer's own token: known, but not an operator.
        viewer_token = {"authorization": f"Bearer {buyer}"}
        assert (
            await api.http.post(
                "/api/admin/refunds", json={"order_id": unpaid, "reason": "fraud"},
                headers=viewer_token,
            )
        ).status_code == 403  # fmt: skip
        wrong_price = await provider_says(api, payments.CHARGED_BACK, unpaid, "1.00")
        assert wrong_price.json()["code"] == "bad_field"
        assert (await api.wallet(buyer))["coins"] == 0
    finally:
        await api.aclose()
