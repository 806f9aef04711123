"""What giftstream asks of Stripe, through the official ``stripe`` library.

Three things: check a webhook's ``Stripe-Signature`` and read its event,
create a Checkout Session for an order, and read a PaymentIntent's metadata
(a dispute names only its PaymentIntent, whose metadata names the order).
Every call here blocks: callers run them in a worker thread.

``server/api/stripe_api.py`` imports this module on first use, not at
start: the library takes about a quarter of a second and 8 MB to import,
which a server that does not take Stripe payments should not pay.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import stripe
from stripe.params.checkout import SessionCreateParams

from server.core.stripe_amounts import to_minor_units
from server.core.stripe_events import checkout_metadata
from server.errors import AuthError, BadRequest, Unavailable
from server.money.orders import Order

log = logging.getLogger(__name__)

# How long one request to Stripe may take (the library's own default is 80
# s): a viewer waits on it, and a worker thread is held for it.
REQUEST_TIMEOUT_SECONDS = 20.0
# Retries of a request that failed on the network or with a 5xx; the
# library sends each POST with an idempotency key, so a retried creation
# makes one session.
NETWORK_RETRIES = 2


@dataclass(frozen=True, slots=True)
class CheckoutSession:
    id: str
    url: str


def verified_event(payload: bytes, header: str, secret: str, tolerance: int) -> dict[str, Any]:
    """The event ``payload`` carries, once the library's verifier has
    accepted ``header`` as Stripe's signature of it, made at most
    ``tolerance`` seconds ago; else ``unauthorized`` (reason ``expired`` or
    ``bad_signature``), or ``bad_request`` for a signed body that is no event."""
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        # Stripe signs JSON text; the verifier would stop on this before
        # looking at the signature.
        raise AuthError("the body is not text Stripe signs", reason="bad_signature") from exc
    try:
        event = stripe.Webhook.construct_event(text, header, secret, tolerance=tolerance)
    except stripe.SignatureVerificationError as exc:
        if _signed_but_old(text, header, secret):
            raise AuthError(
                f"Stripe-Signature is more than {tolerance} s old", reason="expired"
            ) from exc
        raise AuthError(
            "Stripe-Signature does not sign this body with the webhook secret",
            reason="bad_signature",
        ) from exc
    except (ValueError, TypeError, AttributeError, RecursionError) as exc:
        # The library builds its event from whatever the signed body holds:
        # text that is not JSON, JSON that is not an object, or JSON nested
        # past the parser's recursion limit.
        raise BadRequest("the signed body is not a Stripe event") from exc
    document: dict[str, Any] = event.to_dict()
    return document


def _signed_but_old(payload: str, header: str, secret: str) -> bool:
    """Whether the signature the verifier refused is good but for its age."""
    try:
        stripe.WebhookSignature.verify_header(payload, header, secret, tolerance=None)
    except (stripe.SignatureVerificationError, ValueError):
        return False
    return True


class StripeGateway:
    """One Stripe account's API, reached with its secret key."""

    def __init__(self, secret_key: str, api_base: str) -> None:
        self._client = stripe.StripeClient(
            secret_key,
            base_addresses={"api": api_base},
            max_network_retries=NETWORK_RETRIES,
            http_client=stripe.RequestsClient(timeout=REQUEST_TIMEOUT_SECONDS),
        )

    def create_checkout(
        self, order: Order, success_url: str, cancel_url: str, expires_at: int
    ) -> CheckoutSession:
        """A hosted Checkout page that charges the order's price, once."""
        params = checkout_params(order, success_url, cancel_url, expires_at)
        try:
            session = self._client.v1.checkout.sessions.create(params=params)
        except stripe.StripeError as exc:
            raise _unavailable("create a Checkout Session", exc) from exc
        if not session.url:
            raise Unavailable("Stripe made a Checkout Session without a payment page URL")
        return CheckoutSession(session.id, session.url)

    def intent_metadata(self, intent_id: str) -> dict[str, Any]:
        """The metadata of one of the account's PaymentIntents."""
        try:
            intent = self._client.v1.payment_intents.retrieve(intent_id)
        except stripe.StripeError as exc:
            raise _unavailable(f"read PaymentIntent {intent_id}", exc) from exc
        metadata = intent.to_dict().get("metadata")
        return metadata if isinstance(metadata, dict) else {}


def checkout_params(
    order: Order, success_url: str, cancel_url: str, expires_at: int
) -> SessionCreateParams:
    """What a Checkout Session for ``order`` is created with."""
    package = order.package
    metadata = checkout_metadata(order.id, package.id)
    return {
        "mode": "payment",
        "line_items": [
            {
                "quantity": 1,
                "price_data": {
                    "currency": package.currency.lower(),
                    "unit_amount": to_minor_units(package.price, package.currency),
                    "product_data": {"name": f"{order.total_coins:,} coins"},
                },
            }
        ],
        "client_reference_id": order.id,
        "metadata": metadata,
        # On the PaymentIntent too: a refund's or a dispute's event names
        # the PaymentIntent, whose metadata leads back to the order.
        "payment_intent_data": {"metadata": metadata},
        # Charged in the order's own currency and amount: the webhook checks
        # both against the order, which a converted price would fail.
        "adaptive_pricing": {"enabled": False},
        "success_url": success_url,
        "cancel_url": cancel_url,
        "expires_at": expires_at,
    }


def _unavailable(what: str, exc: stripe.StripeError) -> Unavailable:
    # The library's message names the request and the parameter, never the key.
    log.warning(
        "a request to Stripe failed",
        extra={"request": what, "status": exc.http_status, "error": exc.user_message or repr(exc)},
    )
    status = exc.http_status or "no answer"
    return Unavailable(f"Stripe could not {what} ({status}); try again later")
