"""Stripe Checkout as the payment provider: a page to pay an order, and Stripe's webhook.

- ``POST /api/payments/stripe/checkout``: the viewer's bearer token and
  ``{"order_id"}`` of one of their unpaid orders (``POST /api/orders``);
  creates a Stripe Checkout Session charging the order's price and answers
  ``{"order_id", "checkout_url", "session_id"}``: the page to send the
  viewer to.
- ``POST /api/payments/stripe/webhook``: Stripe's events, signed with the
  endpoint's secret (``Stripe-Signature``, checked by the ``stripe``
  library). A paid session credits its order, a full refund or a dispute
  takes its coins back, through the calls every provider's callback ends
  in (``services.orders.apply`` as ``confirm_payment`` makes it, and
  ``take_back``, in ``http_api.py``), so the money rules are the same:
  crediting is keyed by the payment id, so Stripe's redelivery of an event
  credits nothing more. Events that move nothing are answered 200
  ``ignored``, so that Stripe stops sending them.

Both answer 404 ``not_found`` unless the ``GIFTSTREAM_STRIPE_*`` settings
are set. What each event means: ``server/core/stripe_events.py``; the
switch from the sandbox: ``docs/deployment.md``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from server.api import schemas
from server.api.bodies import read_body
from server.api.http_api import (
    apply_confirmation,
    caller,
    json_body,
    paying_user,
    services_of,
    typed_errors,
)
from server.api.openapi import describe
from server.core import payments, stripe_events
from server.core.keys import order_key
from server.errors import (
    AccountFlagged,
    AgeRestricted,
    AuthError,
    BadField,
    NotFound,
    OrderNotPaid,
    Refused,
    Unavailable,
    UnknownOrder,
    UnknownPackage,
)
from server.services import Services
from server.settings import Settings
from server.store.calls import guarded

if TYPE_CHECKING:
    from server.api.stripe_gateway import StripeGateway

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "Stripe-Signature"
# Stripe lets a Checkout Session stay open from 30 minutes to 24 hours.
SESSION_LIFETIME_MIN_SECONDS = 30 * 60
SESSION_LIFETIME_MAX_SECONDS = 24 * 3600
# A session closes this long before its order expires: time for Stripe to
# deliver the paid event (and to retry it) while the order is still there
# to credit. A session paid after its order expired would take money for
# no coins.
DELIVERY_MARGIN_SECONDS = 3600

_gateways: dict[tuple[str, str], StripeGateway] = {}


@dataclass(frozen=True, slots=True)
class StripeAccount:
    """The settings of the Stripe account this server takes payments with."""

    secret_key: str
    webhook_secret: str
    api_base: str
    success_url: str
    cancel_url: str


def stripe_account(settings: Settings) -> StripeAccount:
    """The account, or 404 when this server takes no Stripe payments (the
    settings are set all together or not at all: ``Settings.validate``)."""
    s = settings
    if (
        s.stripe_secret_key is None
        or s.stripe_webhook_secret is None
        or s.stripe_success_url is None
        or s.stripe_cancel_url is None
    ):
        raise NotFound("this server does not take Stripe payments")
    return StripeAccount(
        s.stripe_secret_key,
        s.stripe_webhook_secret,
        s.stripe_api_base,
        s.stripe_success_url,
        s.stripe_cancel_url,
    )


# The functions below import the library's module on first use, and run in
# a worker thread: the event loop serving gifts does not stall on that
# quarter-second import, nor on a request to Stripe.


def _new_gateway(secret_key: str, api_base: str) -> StripeGateway:
    from server.api.stripe_gateway import StripeGateway

    return StripeGateway(secret_key, api_base)


def _verified_event(body: bytes, header: str, secret: str, tolerance: int) -> dict[str, Any]:
    from server.api.stripe_gateway import verified_event

    return verified_event(body, header, secret, tolerance)


async def gateway_of(account: StripeAccount) -> StripeGateway:
    """The account's API, made once a process."""
    key = (account.secret_key, account.api_base)
    if key not in _gateways:
        _gateways[key] = await asyncio.to_thread(_new_gateway, *key)
    return _gateways[key]


# ---------------------------------------------------------------- checkout


CHECKOUT_REQUEST = schemas.component(
    "StripeCheckoutRequest", schemas.obj({"order_id": schemas.ORDER_ID})
)
CHECKOUT = schemas.component(
    "StripeCheckout",
    schemas.obj(
        {
            "order_id": schemas.ORDER_ID,
            "checkout_url": schemas.STRING,
            "session_id": schemas.STRING,
        }
    ),
)
STRIPE_OUTCOME = schemas.component(
    "StripeOutcome",
    {
        "anyOf": [
            schemas.PAYMENT_OUTCOME,
            schemas.obj(
                {
                    "status": {"const": "ignored"},
                    "order_id": {"anyOf": [schemas.ORDER_ID, {"type": "null"}]},
                    "reason": schemas.STRING,
                },
                description="an event that moves nothing",
            ),
        ]
    },
)


@describe(
    summary="A Stripe Checkout Session for one of the caller's unpaid orders",
    body=CHECKOUT_REQUEST,
    answers={200: CHECKOUT},
    errors=[NotFound, UnknownOrder, Refused, AgeRestricted, AccountFlagged, Unavailable],
    auth="viewer",
    tag="payments",
)
@typed_errors
async def post_stripe_checkout(request: Request) -> Response:
    """A Checkout Session for one of the caller's unpaid orders."""
    services = services_of(request)
    account = stripe_account(services.settings)
    user = await paying_user(request)
    # As when the order was made: the caller's age may have been learnt since.
    await services.ages.require_may_recharge(await caller(request))
    order_id = (await json_body(request)).get("order_id")
    if not isinstance(order_id, str) or not payments.ORDER_ID.match(order_id):
        raise UnknownOrder(f"no order {order_id!r}")
    order = await services.orders.load(order_id)
    if order.user != user:
        raise UnknownOrder(f"no order {order_id!r} for {user}")
    if order.status != "created":
        raise Refused(f"order {order_id} is {order.status}: there is nothing to pay")
    expires_at = int(time.time() + await session_lifetime(services, order_id))
    gateway = await gateway_of(account)
    session = await asyncio.to_thread(
        gateway.create_checkout, order, account.success_url, account.cancel_url, expires_at
    )
    return JSONResponse(
        {"order_id": order.id, "checkout_url": session.url, "session_id": session.id}
    )


async def session_lifetime(services: Services, order_id: str) -> float:
    """How long the order's Checkout Session may stay open: until an hour
    before the unpaid order expires, and at most Stripe's 24 hours."""
    key = order_key(services.settings.key_prefix, order_id)
    remaining_ms = int(await guarded(services.redis.pttl(key)))
    if remaining_ms == -2:  # gone since it was read
        raise UnknownOrder(f"no order {order_id!r}")
    if remaining_ms == -1:  # kept for good: no expiry to stay ahead of
        return SESSION_LIFETIME_MAX_SECONDS
    left = remaining_ms / 1000 - DELIVERY_MARGIN_SECONDS
    if left < SESSION_LIFETIME_MIN_SECONDS:
        raise Refused(f"order {order_id} expires too soon to be paid: create a new order")
    return min(left, SESSION_LIFETIME_MAX_SECONDS)


# ---------------------------------------------------------------- webhook


@describe(
    summary="Stripe's webhook: a paid Checkout Session, a refund or a dispute",
    body={"type": "object", "description": "a Stripe event, signed in Stripe-Signature"},
    answers={200: STRIPE_OUTCOME},
    errors=[NotFound, BadField, UnknownOrder, UnknownPackage, OrderNotPaid, Unavailable],
    auth="signature",
    tag="payments",
)
@typed_errors
async def post_stripe_webhook(request: Request) -> Response:
    """One of Stripe's events: verified, then applied to its order, once."""
    services = services_of(request)
    account = stripe_account(services.settings)
    body = await read_body(request, services.settings.max_webhook_body_bytes)
    header = request.headers.get(SIGNATURE_HEADER)
    if not header:
        raise AuthError(f"missing {SIGNATURE_HEADER} header", reason="missing")
    tolerance = services.settings.webhook_tolerance_seconds
    event = await asyncio.to_thread(
        _verified_event, body, header, account.webhook_secret, tolerance
    )
    return await apply_event(services, account, event)


async def apply_event(
    services: Services, account: StripeAccount, event: dict[str, Any]
) -> Response:
    """What a verified event does: credit an order, take its coins back, or nothing."""
    intent = stripe_events.intent_to_look_up(event)
    metadata = None
    if intent is not None:
        gateway = await gateway_of(account)
        metadata = await asyncio.to_thread(gateway.intent_metadata, intent)
    meaning = stripe_events.read_event(event, metadata)
    if isinstance(meaning, stripe_events.Ignored):
        if meaning.order_id is not None:  # one of ours, left as it is: say why
            log.info(
                "Stripe event left alone",
                extra={
                    "event": meaning.event_type,
                    "order_id": meaning.order_id,
                    "reason": meaning.reason,
                },
            )
        return JSONResponse(
            {"status": "ignored", "order_id": meaning.order_id, "reason": meaning.reason}
        )
    return await apply_confirmation(services, meaning)


routes = [
    Route("/api/payments/stripe/checkout", post_stripe_checkout, methods=["POST"]),
    Route("/api/payments/stripe/webhook", post_stripe_webhook, methods=["POST"]),
]
