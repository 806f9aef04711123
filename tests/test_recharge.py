"""Recharge: only a provider's signed, fresh confirmation credits coins, once."""

from __future__ import annotations

import time
from typing import Any

from redis.asyncio import Redis

from server.core import payments
from server.core.payments import PaymentConfirmation
from tests.client import Api, bearer
from tests.conftest import WEBHOOK_SECRET
from tests.test_gift_flow import assert_books_balance


def confirmation(order_id: str, payment_id: str, price: str = "4.99") -> bytes:
    return payments.confirmation_body(
        PaymentConfirmation(payment_id=payment_id, order_id=order_id, price=price, currency="USD")
    )


async def post_callback(api: Api, body: bytes, signature: str | None) -> Any:
    headers = {"content-type": "application/json"}
    if signature is not None:
        headers[payments.SIGNATURE_HEADER] = signature
    return await api.http.post("/api/payments/webhook", content=body, headers=headers)


async def test_provider_callback_credits_once(server: Any, api: Api, redis: Redis) -> None:
    buyer = await api.token("payer")
    order_id = await api.order(buyer, "coins_330")
    body = confirmation(order_id, "pay_0001")
    signature = payments.sign(WEBHOOK_SECRET, body, time.time())

    first = await post_callback(api, body, signature)
    assert (first.status_code, first.json()["status"]) == (200, "ok")
    replay = await post_callback(api, body, signature)
    assert (replay.status_code, replay.json()["status"]) == (200, "duplicate")
    # Another payment for the same order credits nothing either.
    other = confirmation(order_id, "pay_0002")
    second_payment = await post_callback(
        api, other, payments.sign(WEBHOOK_SECRET, other, time.time())
    )
    assert second_payment.json()["status"] == "order_paid"

    wallet = await api.wallet(buyer)
    assert (wallet["coins"], wallet["recharged"]) == (330, 330)
    await assert_books_balance(redis, server.key_prefix)


async def test_forged_stale_and_mismatched_callbacks_credit_nothing(
    server: Any, api: Api, redis: Redis
) -> None:
    buyer = await api.token("target")
    order_id = await api.order(buyer, "coins_330")
    body = confirmation(order_id, "pay_evil")
    now = time.time()
    attempts = {
        "no signature": (body, None, 401),
        "other key": (body, payments.sign("not-the-secret", body, now), 401),
        "stale": (body, payments.sign(WEBHOOK_SECRET, body, now - 3600), 401),
        "from the future": (body, payments.sign(WEBHOOK_SECRET, body, now + 3600), 401),
        "garbled header": (body, "t=abc,v1=", 401),
        "body changed after signing": (
            confirmation(order_id, "pay_evil", price="0.01"),
            payments.sign(WEBHOOK_SECRET, body, now),
            401,
        ),
    }
    for label, (sent, signature, status) in attempts.items():
        response = await post_callback(api, sent, signature)
        assert response.status_code == status, label
        assert response.json()["code"] == "unauthorized", label

    cheap = confirmation(order_id, "pay_cheap", price="0.01")
    underpaid = await post_callback(api, cheap, payments.sign(WEBHOOK_SECRET, cheap, now))
    assert (underpaid.status_code, underpaid.json()["code"]) == (400, "bad_field")
    unknown = confirmation("f" * 32, "pay_ghost")
    missing = await post_callback(api, unknown, payments.sign(WEBHOOK_SECRET, unknown, now))
    assert missing.status_code == 404

    assert (await api.wallet(buyer))["coins"] == 0
    await assert_books_balance(redis, server.key_prefix)


async def test_sandbox_pays_only_the_owners_order(server: Any, api: Api) -> None:
    owner = await api.token("owner")
    thief = await api.token("thief")
    order_id = await api.order(owner, "coins_65")
    stolen = await api.http.post(f"/api/sandbox/pay/{order_id}", headers=bearer(thief))
    assert stolen.status_code == 404
    paid = await api.http.post(f"/api/sandbox/pay/{order_id}", headers=bearer(owner))
    assert paid.json()["status"] == "ok"
    again = await api.http.post(f"/api/sandbox/pay/{order_id}", headers=bearer(owner))
    assert again.json()["status"] == "order_paid"
    assert (await api.wallet(owner))["coins"] == 65
    assert (await api.wallet(thief))["coins"] == 0


async def test_catalog_is_public_and_priced_by_the_server(api: Api) -> None:
    catalog = (await api.http.get("/api/catalog")).json()
    gifts = {g["id"]: g for g in catalog["gifts"]}
    assert gifts["rose"]["coins"] == 1
    assert max(g["coins"] for g in gifts.values()) >= 10_000
    assert {p["coins"] for p in catalog["packages"]} >= {65, 330, 660, 1321, 3306, 6607}
    for package in catalog["packages"]:
        assert set(package) >= {"id", "coins", "price", "currency"}
