"""Stripe Checkout as the payment provider: Stripe-shaped events, Stripe's signatures.

Stripe cannot be reached from the tests, so they stand in for it on both
sides. Its webhook events are built in the shapes its documentation gives
(``checkout.session.completed``, ``charge.refunded``,
``charge.dispute.created``), signed as Stripe signs them (``t=<unix
seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">``), and every signature is
first accepted by the ``stripe`` library's own verifier, so the header the
server is sent is one Stripe would send. Its API is a small HTTP server on
127.0.0.1 that records the Checkout Sessions the server creates through the
library and answers as Stripe does.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
import stripe
from redis.asyncio import Redis

from server.core import payments, stripe_events
from server.core.stripe_amounts import to_minor_units, to_price
from server.core.stripe_events import Ignored, intent_to_look_up, read_event
from server.errors import BadField
from tests.client import Api, bearer
from tests.conftest import ServerProcess, StartServer
from tests.test_gift_flow import assert_books_balance

SECRET_KEY = "sk_test_giftstream0123456789abcdef"
WEBHOOK_SECRET = "whsec_giftstream_tests_0123456789abcdef"
TOLERANCE = 300
SUCCESS_URL = "https://shop.example/paid?session={CHECKOUT_SESSION_ID}"
CANCEL_URL = "https://shop.example/cancelled"
ORDER = "0123456789abcdef0123456789abcdef"
WEBHOOK = "/api/payments/stripe/webhook"
CHECKOUT = "/api/payments/stripe/checkout"


# ---------------------------------------------------------------- Stripe's signature


def stripe_signature(payload: bytes, secret: str, timestamp: int) -> str:
    """The ``Stripe-Signature`` header, by Stripe's documented scheme."""
    signed = str(timestamp).encode() + b"." + payload
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def signed_headers(payload: bytes, secret: str = WEBHOOK_SECRET, age: int = 0) -> dict[str, str]:
    """Headers of a webhook delivery signed ``age`` seconds ago."""
    header = stripe_signature(payload, secret, int(time.time()) - age)
    # The library's verifier takes the header, whatever its age: it is Stripe's.
    assert stripe.WebhookSignature.verify_header(payload.decode(), header, secret, tolerance=None)
    return {"Stripe-Signature": header, "content-type": "application/json; charset=utf-8"}


def test_the_signature_is_the_one_stripes_library_accepts() -> None:
    payload = event_body(session_completed(ORDER, 499))
    header = stripe_signature(payload, WEBHOOK_SECRET, int(time.time()))
    event = stripe.Webhook.construct_event(payload, header, WEBHOOK_SECRET, tolerance=TOLERANCE)
    assert event["type"] == "checkout.session.completed"
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(payload, header, "whsec_another", tolerance=TOLERANCE)
    old = stripe_signature(payload, WEBHOOK_SECRET, int(time.time()) - 2 * TOLERANCE)
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(payload, old, WEBHOOK_SECRET, tolerance=TOLERANCE)


# ---------------------------------------------------------------- Stripe-shaped events


def stripe_id(prefix: str) -> str:
    return f"{prefix}_test_{secrets.token_hex(12)}"


def event(kind: str, obj: dict[str, Any]) -> dict[str, Any]:
    """An event as Stripe delivers it to a webhook endpoint."""
    return {
        "id": stripe_id("evt"),
        "object": "event",
        "api_version": "2025-03-31.basil",
        "created": int(time.time()),
        "data": {"object": obj},
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "type": kind,
    }


def event_body(document: dict[str, Any]) -> bytes:
    # Stripe sends pretty-printed JSON: the signature covers these bytes.
    return json.dumps(document, indent=2).encode()


def session_completed(
    order_id: str,
    amount: int,
    currency: str = "usd",
    intent: str | None = None,
    kind: str = stripe_events.SESSION_COMPLETED,
    payment_status: str = "paid",
) -> dict[str, Any]:
    metadata = stripe_events.checkout_metadata(order_id, "coins_330")
    return event(
        kind,
        {
            "id": stripe_id("cs"),
            "object": "checkout.session",
            "amount_subtotal": amount,
            "amount_total": amount,
            "cancel_url": CANCEL_URL,
            "client_reference_id": order_id,
            "created": int(time.time()) - 60,
            "currency": currency,
            "customer": None,
            "customer_details": {"email": "viewer@example.com", "name": None},
            "expires_at": int(time.time()) + 3600,
            "livemode": False,
            "metadata": metadata,
            "mode": "payment",
            "payment_intent": intent or stripe_id("pi"),
            "payment_method_types": ["card"],
            "payment_status": payment_status,
            "status": "complete",
            "success_url": SUCCESS_URL,
            "total_details": {"amount_discount": 0, "amount_shipping": 0, "amount_tax": 0},
            "url": None,
        },
    )


def charge_refunded(
    order_id: str | None, intent: str, amount: int, refunded: int, currency: str = "usd"
) -> dict[str, Any]:
    charge_id = stripe_id("ch")
    metadata = stripe_events.checkout_metadata(order_id, "coins_330") if order_id else {}
    return event(
        stripe_events.CHARGE_REFUNDED,
        {
            "id": charge_id,
            "object": "charge",
            "amount": amount,
            "amount_captured": amount,
            "amount_refunded": refunded,
            "captured": True,
            "created": int(time.time()) - 600,
            "currency": currency,
            "disputed": False,
            "livemode": False,
            "metadata": metadata,
            "paid": True,
            "payment_intent": intent,
            "refunded": refunded == amount,
            "refunds": {
                "object": "list",
                "data": [
                    {
                        "id": stripe_id("re"),
                        "object": "refund",
                        "amount": refunded,
                        "charge": charge_id,
                        "currency": currency,
                        "payment_intent": intent,
                        "status": "succeeded",
                    }
                ],
                "has_more": False,
                "url": f"/v1/charges/{charge_id}/refunds",
            },
            "status": "succeeded",
        },
    )


def dispute_created(intent: str, amount: int, currency: str = "usd") -> dict[str, Any]:
    # As Stripe's Dispute object: its metadata is its own (empty), and it
    # names the disputed charge and PaymentIntent.
    return event(
        stripe_events.DISPUTE_CREATED,
        {
            "id": stripe_id("du"),
            "object": "dispute",
            "amount": amount,
            "balance_transactions": [],
            "charge": stripe_id("ch"),
            "created": int(time.time()),
            "currency": currency,
            "evidence_details": {"due_by": int(time.time()) + 7 * 86400, "has_evidence": False},
            "is_charge_refundable": False,
            "livemode": False,
            "metadata": {},
            "payment_intent": intent,
            "reason": "fraudulent",
            "status": "needs_response",
        },
    )


# ---------------------------------------------------------------- the mapping, pure


def test_amounts_convert_exactly_both_ways() -> None:
    assert to_minor_units("4.99", "USD") == 499
    assert to_minor_units("1598.00", "CNY") == 159800
    assert to_minor_units("500.00", "JPY") == 500
    assert to_minor_units("1.23", "KWD") == 1230
    assert to_price(499, "usd") == ("4.99", "USD")
    assert to_price(0, "usd") == ("0.00", "USD")
    assert to_price(500, "jpy") == ("500.00", "JPY")
    assert to_price(1230, "kwd") == ("1.23", "KWD")
    for amount, currency in ((1235, "kwd"), (4.99, "usd"), (True, "usd"), (-1, "usd"), (1, "us")):
        with pytest.raises(BadField):
            to_price(amount, currency)
    with pytest.raises(BadField):
        to_minor_units("500.50", "JPY")


def test_a_paid_session_is_a_payment_of_its_intent() -> None:
    paid = session_completed(ORDER, 499, intent="pi_test_1")
    assert read_event(paid) == payments.PaymentConfirmation(
        "pi_test_1", ORDER, "4.99", "USD", payments.SUCCEEDED
    )
    later = session_completed(ORDER, 499, "usd", "pi_test_1", stripe_events.SESSION_ASYNC_PAID)
    assert read_event(later) == read_event(paid)


def test_events_that_move_nothing_are_ignored() -> None:
    unpaid = session_completed(ORDER, 499, payment_status="unpaid")
    assert read_event(unpaid) == Ignored(
        stripe_events.SESSION_COMPLETED, "the session's payment is not complete yet", ORDER
    )
    foreign = session_completed(ORDER, 499)
    foreign["data"]["object"].update(metadata={}, client_reference_id="cart-17")
    assert isinstance(read_event(foreign), Ignored)
    partial = charge_refunded(ORDER, "pi_test_1", 499, 100)
    assert read_event(partial) == Ignored(
        stripe_events.CHARGE_REFUNDED, "a partial refund: no coins are taken back", ORDER
    )
    assert intent_to_look_up(partial) is None
    other = event("customer.created", {"id": "cus_1", "object": "customer"})
    assert read_event(other) == Ignored(
        "customer.created", "an event type giftstream does not act on"
    )


def test_refunds_and_disputes_find_their_order() -> None:
    refund = charge_refunded(ORDER, "pi_test_1", 499, 499)
    meaning = read_event(refund)
    assert isinstance(meaning, payments.PaymentConfirmation)
    assert (meaning.type, meaning.order_id, meaning.price) == (payments.REFUNDED, ORDER, "4.99")
    assert meaning.payment_id.startswith("re_test_")
    assert intent_to_look_up(refund) is None
    dispute = dispute_created("pi_test_1", 499)
    assert intent_to_look_up(dispute) == "pi_test_1"
    metadata = stripe_events.checkout_metadata(ORDER, "coins_330")
    chargeback = read_event(dispute, metadata)
    assert isinstance(chargeback, payments.PaymentConfirmation)
    assert (chargeback.type, chargeback.order_id) == (payments.CHARGED_BACK, ORDER)
    assert isinstance(read_event(dispute, {}), Ignored)
    # A charge that does not carry its PaymentIntent's metadata: read from it.
    bare = charge_refunded(None, "pi_test_2", 499, 499)
    assert intent_to_look_up(bare) == "pi_test_2"
    assert isinstance(read_event(bare), Ignored)
    found = read_event(bare, metadata)
    assert isinstance(found, payments.PaymentConfirmation)
    assert (found.type, found.order_id) == (payments.REFUNDED, ORDER)


def test_a_session_naming_two_orders_is_refused() -> None:
    confused = session_completed(ORDER, 499)
    confused["data"]["object"]["client_reference_id"] = "f" * 32
    with pytest.raises(BadField):
        read_event(confused)


# ---------------------------------------------------------------- Stripe's API, faked


@dataclass
class FakeStripe:
    """Stripe's API as the library sees it: Checkout Sessions and PaymentIntents."""

    url: str = ""
    sessions: list[dict[str, list[str]]] = field(default_factory=list)
    authorizations: list[str] = field(default_factory=list)
    # PaymentIntent id -> its metadata, set when its session is created.
    intents: dict[str, dict[str, str]] = field(default_factory=dict)

    def intent_of(self, session: dict[str, list[str]]) -> str:
        return session["intent"][0]


def fake_stripe_handler(fake: FakeStripe) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("content-length", "0"))
            form = parse_qs(self.rfile.read(length).decode(), keep_blank_values=True)
            fake.authorizations.append(self.headers.get("authorization", ""))
            if self.path != "/v1/checkout/sessions":
                self.answer(404, stripe_error("resource_missing", f"no route {self.path}"))
                return
            session_id, intent = stripe_id("cs"), stripe_id("pi")
            form["intent"] = [intent]
            fake.sessions.append(form)
            fake.intents[intent] = {
                key[len("payment_intent_data[metadata][") : -1]: values[0]
                for key, values in form.items()
                if key.startswith("payment_intent_data[metadata][")
            }
            self.answer(
                200,
                {
                    "id": session_id,
                    "object": "checkout.session",
                    "amount_total": int(form["line_items[0][price_data][unit_amount]"][0]),
                    "client_reference_id": form["client_reference_id"][0],
                    "currency": form["line_items[0][price_data][currency]"][0],
                    "expires_at": int(form["expires_at"][0]),
                    "livemode": False,
                    "metadata": {"giftstream_order_id": form["client_reference_id"][0]},
                    "mode": "payment",
                    "payment_intent": None,
                    "payment_status": "unpaid",
                    "status": "open",
                    "url": f"https://checkout.stripe.com/c/pay/{session_id}",
                },
            )

        def do_GET(self) -> None:
            fake.authorizations.append(self.headers.get("authorization", ""))
            intent = self.path.removeprefix("/v1/payment_intents/")
            if intent not in fake.intents:
                self.answer(404, stripe_error("resource_missing", f"No such {intent}"))
                return
            self.answer(
                200,
                {
                    "id": intent,
                    "object": "payment_intent",
                    "amount": 499,
                    "currency": "usd",
                    "livemode": False,
                    "metadata": fake.intents[intent],
                    "status": "succeeded",
                },
            )

        def answer(self, status: int, body: dict[str, Any]) -> None:
            raw = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # the test's output stays the server's

    return Handler


def stripe_error(code: str, message: str) -> dict[str, Any]:
    return {"error": {"type": "invalid_request_error", "code": code, "message": message}}


@pytest.fixture
def fake_stripe() -> Iterator[FakeStripe]:
    fake = FakeStripe()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), fake_stripe_handler(fake))
    fake.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


@pytest.fixture
async def shop(start_server: StartServer, fake_stripe: FakeStripe) -> ServerProcess:
    """A server taking Stripe payments, its Stripe API the fake's."""
    return await start_server(
        stripe_secret_key=SECRET_KEY,
        stripe_webhook_secret=WEBHOOK_SECRET,
        stripe_api_base=fake_stripe.url,
        stripe_success_url=SUCCESS_URL,
        stripe_cancel_url=CANCEL_URL,
        webhook_tolerance_seconds=TOLERANCE,
    )


@pytest.fixture
async def shop_api(shop: ServerProcess) -> AsyncIterator[Api]:
    client = Api(shop.http)
    yield client
    await client.aclose()


async def new_order(api: Api, token: str, package: str = "coins_330") -> dict[str, Any]:
    response = await api.http.post("/api/orders", json={"package": package}, headers=bearer(token))
    assert response.status_code == 201, response.text
    order: dict[str, Any] = response.json()
    return order


async def deliver(api: Api, document: dict[str, Any], age: int = 0) -> httpx.Response:
    """Stripe's delivery of one event, signed ``age`` seconds ago."""
    body = event_body(document)
    return await api.http.post(WEBHOOK, content=body, headers=signed_headers(body, age=age))


# ---------------------------------------------------------------- the webhook


async def test_a_paid_checkout_session_credits_its_order_once(
    shop_api: Api, shop: ServerProcess, redis: Redis
) -> None:
    api = shop_api
    viewer = await api.token("stripe-payer")
    order = await new_order(api, viewer)
    paid = session_completed(order["order_id"], 499)
    first = await deliver(api, paid)
    assert first.status_code == 200, first.text
    assert first.json() == {"status": "ok", "order_id": order["order_id"]}
    assert (await api.wallet(viewer))["coins"] == order["coins"] == 330
    # Stripe delivers again (no answer reached it), and the same payment
    # completes once more for a delayed payment method: nothing more.
    again = await deliver(api, paid)
    assert again.json() == {"status": "duplicate", "order_id": order["order_id"]}
    intent = paid["data"]["object"]["payment_intent"]
    late = session_completed(
        order["order_id"], 499, "usd", intent, stripe_events.SESSION_ASYNC_PAID
    )
    assert (await deliver(api, late)).json()["status"] == "duplicate"
    # Another payment of the paid order credits nothing either.
    second = await deliver(api, session_completed(order["order_id"], 499))
    assert second.json()["status"] == "order_paid"
    assert (await api.wallet(viewer))["coins"] == 330
    await assert_books_balance(redis, shop.key_prefix or "")


async def test_forged_stale_and_unsigned_events_are_refused(shop_api: Api) -> None:
    api = shop_api
    viewer = await api.token("forger")
    order = await new_order(api, viewer)
    body = event_body(session_completed(order["order_id"], 499))
    forged = signed_headers(body, secret="whsec_not_the_endpoints")
    stale = signed_headers(body, age=TOLERANCE + 60)
    tampered = signed_headers(body)
    for headers, content, reason in (
        (forged, body, "bad_signature"),
        (stale, body, "expired"),
        (tampered, body.replace(b"499", b"999"), "bad_signature"),
        ({"content-type": "application/json"}, body, "missing"),
        ({"Stripe-Signature": "t=1,v1=zz"}, body, "bad_signature"),
    ):
        refused = await api.http.post(WEBHOOK, content=content, headers=headers)
        assert refused.status_code == 401, refused.text
        assert (refused.json()["code"], refused.json()["reason"]) == ("unauthorized", reason)
    assert (await api.wallet(viewer))["coins"] == 0


async def test_events_that_name_no_payable_order_move_nothing(shop_api: Api) -> None:
    api = shop_api
    viewer = await api.token("careful")
    order = await new_order(api, viewer)
    unknown = await deliver(api, session_completed("f" * 32, 499))
    assert (unknown.status_code, unknown.json()["code"]) == (404, "unknown_order")
    wrong_amount = await deliver(api, session_completed(order["order_id"], 99))
    assert (wrong_amount.status_code, wrong_amount.json()["code"]) == (400, "bad_field")
    wrong_currency = await deliver(api, session_completed(order["order_id"], 499, "eur"))
    assert wrong_currency.json()["code"] == "bad_field"
    for ignored in (
        event("customer.created", {"id": stripe_id("cus"), "object": "customer"}),
        session_completed(order["order_id"], 499, payment_status="unpaid"),
    ):
        answer = await deliver(api, ignored)
        assert (answer.status_code, answer.json()["status"]) == (200, "ignored"), answer.text
    too_large = b" " * (64 * 1024 + 1)
    refused = await api.http.post(WEBHOOK, content=too_large, headers=signed_headers(too_large))
    assert (refused.status_code, refused.json()["code"]) == (413, "body_too_large")
    assert (await api.wallet(viewer))["coins"] == 0


async def test_a_full_refund_takes_the_coins_back_once(
    shop_api: Api, shop: ServerProcess, redis: Redis
) -> None:
    api = shop_api
    viewer = await api.token("refunded")
    order = await new_order(api, viewer)
    paid = session_completed(order["order_id"], 499)
    assert (await deliver(api, paid)).json()["status"] == "ok"
    intent = paid["data"]["object"]["payment_intent"]
    partial = await deliver(api, charge_refunded(order["order_id"], intent, 499, 200))
    assert (partial.status_code, partial.json()["status"]) == (200, "ignored")
    assert (await api.wallet(viewer))["coins"] == 330
    wrong = await deliver(api, charge_refunded(order["order_id"], intent, 999, 999))
    assert (wrong.status_code, wrong.json()["code"]) == (400, "bad_field")
    refund = charge_refunded(order["order_id"], intent, 499, 499)
    answers = [(await deliver(api, refund)).json() for _ in range(2)]
    assert [a["status"] for a in answers] == ["ok", "duplicate"]
    assert {(a["kind"], a["coins_taken_back"], a["order_id"]) for a in answers} == {
        ("refund", 330, order["order_id"])
    }
    wallet = await api.wallet(viewer)
    assert (wallet["coins"], wallet["refunded"]) == (0, 330)
    # A refund does not flag the account: it may buy again.
    await new_order(api, viewer)
    await assert_books_balance(redis, shop.key_prefix or "")


# ---------------------------------------------------------------- checkout, then a dispute


async def test_checkout_creates_a_session_for_the_order_and_a_dispute_charges_it_back(
    shop_api: Api, shop: ServerProcess, fake_stripe: FakeStripe, redis: Redis
) -> None:
    api = shop_api
    viewer = await api.token("disputer")
    order = await new_order(api, viewer)
    before = time.time()
    response = await api.http.post(
        CHECKOUT, json={"order_id": order["order_id"]}, headers=bearer(viewer)
    )
    assert response.status_code == 200, response.text
    [sent] = fake_stripe.sessions
    answer = response.json()
    assert answer["order_id"] == order["order_id"]
    assert answer["session_id"].startswith("cs_test_")
    assert answer["checkout_url"] == f"https://checkout.stripe.com/c/pay/{answer['session_id']}"
    # What the library sent Stripe, as Stripe's form fields.
    assert sent["mode"] == ["payment"]
    assert sent["client_reference_id"] == [order["order_id"]]
    assert sent["line_items[0][price_data][unit_amount]"] == ["499"]
    assert sent["line_items[0][price_data][currency]"] == ["usd"]
    assert sent["line_items[0][quantity]"] == ["1"]
    assert sent["metadata[giftstream_order_id]"] == [order["order_id"]]
    assert sent["payment_intent_data[metadata][giftstream_order_id]"] == [order["order_id"]]
    assert sent["adaptive_pricing[enabled]"] == ["false"]
    assert (sent["success_url"], sent["cancel_url"]) == ([SUCCESS_URL], [CANCEL_URL])
    # Open for Stripe's longest, 24 hours: the order outlives it by days.
    lifetime = int(sent["expires_at"][0]) - before
    assert 24 * 3600 - 60 < lifetime <= 24 * 3600 + 1
    assert set(fake_stripe.authorizations) == {f"Bearer {SECRET_KEY}"}

    # Paid at Stripe, then disputed: the dispute names only its PaymentIntent,
    # whose metadata the server reads from Stripe.
    intent = fake_stripe.intent_of(sent)
    paid = await deliver(api, session_completed(order["order_id"], 499, intent=intent))
    assert paid.json()["status"] == "ok"
    answers = [(await deliver(api, dispute_created(intent, 499))).json() for _ in range(2)]
    assert [a["status"] for a in answers] == ["ok", "duplicate"]
    assert answers[0]["kind"] == "chargeback"
    assert answers[0]["coins_taken_back"] == 330
    assert (await api.wallet(viewer))["coins"] == 0
    refused = await api.http.post(
        "/api/orders", json={"package": "coins_65"}, headers=bearer(viewer)
    )
    assert (refused.status_code, refused.json()["code"]) == (403, "account_flagged")
    # A dispute of another payment to the same Stripe account: nothing moves.
    foreign = stripe_id("pi")
    fake_stripe.intents[foreign] = {}
    ignored = await deliver(api, dispute_created(foreign, 499))
    assert (ignored.status_code, ignored.json()["status"]) == (200, "ignored")
    # Stripe not answering for the PaymentIntent: 503, and Stripe delivers again.
    unreadable = await deliver(api, dispute_created(stripe_id("pi"), 499))
    assert (unreadable.status_code, unreadable.json()["code"]) == (503, "unavailable")
    await assert_books_balance(redis, shop.key_prefix or "")


async def test_checkout_is_for_the_callers_own_unpaid_orders(
    shop_api: Api, fake_stripe: FakeStripe
) -> None:
    api = shop_api
    owner, other = await api.token("owner"), await api.token("other")
    order = await new_order(api, owner)
    for body, token, status, code in (
        ({"order_id": order["order_id"]}, other, 404, "unknown_order"),
        ({"order_id": "f" * 32}, owner, 404, "unknown_order"),
        ({"order_id": "../x"}, owner, 404, "unknown_order"),
        ({}, owner, 404, "unknown_order"),
    ):
        refused = await api.http.post(CHECKOUT, json=body, headers=bearer(token))
        assert (refused.status_code, refused.json()["code"]) == (status, code), body
    unsigned = await api.http.post(CHECKOUT, json={"order_id": order["order_id"]})
    assert unsigned.status_code == 401
    assert (await deliver(api, session_completed(order["order_id"], 499))).status_code == 200
    paid = await api.http.post(
        CHECKOUT, json={"order_id": order["order_id"]}, headers=bearer(owner)
    )
    assert (paid.status_code, paid.json()["code"]) == (409, "refused")
    assert fake_stripe.sessions == []


async def test_without_stripe_settings_the_routes_are_not_there(api: Api) -> None:
    viewer = await api.token("nobody")
    order = await api.order(viewer, "coins_65")
    checkout = await api.http.post(CHECKOUT, json={"order_id": order}, headers=bearer(viewer))
    assert (checkout.status_code, checkout.json()["code"]) == (404, "not_found")
    body = event_body(session_completed(order, 99))
    webhook = await api.http.post(WEBHOOK, content=body, headers=signed_headers(body))
    assert (webhook.status_code, webhook.json()["code"]) == (404, "not_found")
    assert (await api.wallet(viewer))["coins"] == 0
