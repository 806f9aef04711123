"""Stripe's webhook events, read as the payment callbacks giftstream knows.

A verified Stripe event (``server/api/stripe_api.py`` checks its
signature) becomes the ``PaymentConfirmation`` of ``payments.py``, so that
money moves through the same calls as every other provider's callback; or
``Ignored``, an event that moves nothing (answered 200, so that Stripe
stops sending it):

| Stripe event | becomes |
|---|---|
| ``checkout.session.completed``, paid | ``payment.succeeded`` |
| ``checkout.session.async_payment_succeeded`` | ``payment.succeeded`` |
| ``charge.refunded``, the whole charge | ``payment.refunded`` |
| ``charge.dispute.created`` | ``payment.charged_back`` |
| anything else, a partial refund, a session not yet paid | ``Ignored`` |

The payment id of a paid session is its PaymentIntent's id (both events of
one payment carry it, so the second credits nothing); of a refund, the
refund's id (the charge's when the event lists no refund); of a dispute,
the dispute's. The order is named by ``giftstream_order_id`` in the
metadata that the Checkout Session and its PaymentIntent are created with
(the session's ``client_reference_id`` too). A refunded charge may carry
its PaymentIntent's metadata; a dispute's metadata is its own. When an
event does not name the order, it is read from the PaymentIntent's
metadata (``intent_to_look_up``), which the caller fetches from Stripe.

Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from server.core.payments import (
    CHARGED_BACK,
    ORDER_ID,
    PAYMENT_ID,
    REFUNDED,
    SUCCEEDED,
    PaymentConfirmation,
)
from server.core.stripe_amounts import to_price
from server.errors import BadField

# The metadata key naming the order, on the Checkout Session and on its
# PaymentIntent: a name no other integration on the same Stripe account uses.
ORDER_METADATA_KEY = "giftstream_order_id"

SESSION_COMPLETED = "checkout.session.completed"
SESSION_ASYNC_PAID = "checkout.session.async_payment_succeeded"
CHARGE_REFUNDED = "charge.refunded"
DISPUTE_CREATED = "charge.dispute.created"
# The events a Stripe webhook endpoint should send to giftstream.
HANDLED_EVENTS = (SESSION_COMPLETED, SESSION_ASYNC_PAID, CHARGE_REFUNDED, DISPUTE_CREATED)


@dataclass(frozen=True, slots=True)
class Ignored:
    """A verified event that moves no money, and why."""

    event_type: str
    reason: str
    order_id: str | None = None


def checkout_metadata(order_id: str, package_id: str) -> dict[str, str]:
    """The metadata a Checkout Session and its PaymentIntent are created with."""
    return {ORDER_METADATA_KEY: order_id, "giftstream_package": package_id}


def event_type(event: dict[str, Any]) -> str:
    kind = event.get("type")
    if not isinstance(kind, str):
        raise BadField("a Stripe event without a type")
    return kind


def _object(event: dict[str, Any]) -> dict[str, Any]:
    data = event.get("data")
    found = data.get("object") if isinstance(data, dict) else None
    if not isinstance(found, dict):
        raise BadField(f"a {event_type(event)} event without data.object")
    return found


def _id_of(value: object) -> str | None:
    """An id field, which Stripe sends as the id or, expanded, as the object."""
    if isinstance(value, dict):
        value = value.get("id")
    return value if isinstance(value, str) and PAYMENT_ID.match(value) else None


def _metadata_order(metadata: object) -> str | None:
    found = metadata.get(ORDER_METADATA_KEY) if isinstance(metadata, dict) else None
    return found if isinstance(found, str) else None


def _checked_order(order_id: str | None) -> str | None:
    """An order id as ``POST /api/orders`` makes them, or None (not ours)."""
    return order_id if order_id is not None and ORDER_ID.match(order_id) else None


def intent_to_look_up(event: dict[str, Any]) -> str | None:
    """The PaymentIntent whose metadata names the order, when the event does
    not: a dispute (and a refunded charge made without that metadata)."""
    kind = event_type(event)
    if kind not in (CHARGE_REFUNDED, DISPUTE_CREATED):
        return None
    found = _object(event)
    if kind == CHARGE_REFUNDED and found.get("refunded") is not True:
        return None  # a partial refund, ignored whatever its order
    if _metadata_order(found.get("metadata")) is not None:
        return None
    return _id_of(found.get("payment_intent"))


def read_event(
    event: dict[str, Any], intent_metadata: dict[str, Any] | None = None
) -> PaymentConfirmation | Ignored:
    """What a verified event means for an order. ``intent_metadata`` is the
    metadata of the PaymentIntent ``intent_to_look_up`` named, if it named one."""
    kind = event_type(event)
    if kind in (SESSION_COMPLETED, SESSION_ASYNC_PAID):
        return _paid_session(kind, _object(event))
    if kind == CHARGE_REFUNDED:
        return _refunded_charge(_object(event), intent_metadata)
    if kind == DISPUTE_CREATED:
        return _dispute(_object(event), intent_metadata)
    return Ignored(kind, "an event type giftstream does not act on")


def _paid_session(kind: str, session: dict[str, Any]) -> PaymentConfirmation | Ignored:
    from_metadata = _metadata_order(session.get("metadata"))
    reference = session.get("client_reference_id")
    from_reference = reference if isinstance(reference, str) else None
    if from_metadata and from_reference and from_metadata != from_reference:
        raise BadField(
            f"the session names two orders: {from_metadata} in its metadata, "
            f"{from_reference} as its client_reference_id"
        )
    order_id = _checked_order(from_metadata or from_reference)
    if order_id is None:
        return Ignored(kind, "a Checkout Session for no giftstream order")
    if session.get("mode") != "payment":
        return Ignored(kind, "a Checkout Session not in payment mode", order_id)
    if session.get("payment_status") != "paid":
        # A delayed payment method: checkout.session.async_payment_succeeded
        # follows once the money is there.
        return Ignored(kind, "the session's payment is not complete yet", order_id)
    payment_id = _id_of(session.get("payment_intent")) or _id_of(session.get("id"))
    if payment_id is None:
        raise BadField("a paid Checkout Session without a payment or session id")
    price, currency = to_price(session.get("amount_total"), session.get("currency"))
    return PaymentConfirmation(payment_id, order_id, price, currency, SUCCEEDED)


def _order_of(found: dict[str, Any], intent_metadata: dict[str, Any] | None) -> str | None:
    return _checked_order(
        _metadata_order(found.get("metadata")) or _metadata_order(intent_metadata)
    )


def _refunded_charge(
    charge: dict[str, Any], intent_metadata: dict[str, Any] | None
) -> PaymentConfirmation | Ignored:
    order_id = _order_of(charge, intent_metadata)
    if charge.get("refunded") is not True or charge.get("amount_refunded") != charge.get("amount"):
        # The coins of an order come back whole or not at all: a partial
        # refund is the operator's to settle (docs/deployment.md).
        return Ignored(CHARGE_REFUNDED, "a partial refund: no coins are taken back", order_id)
    if order_id is None:
        return Ignored(CHARGE_REFUNDED, "a charge for no giftstream order")
    refunds = charge.get("refunds")
    listed = refunds.get("data") if isinstance(refunds, dict) else None
    newest = _id_of(listed[0]) if isinstance(listed, list) and listed else None
    payment_id = newest or _id_of(charge.get("id"))
    if payment_id is None:
        raise BadField("a refunded charge without an id")
    price, currency = to_price(charge.get("amount_refunded"), charge.get("currency"))
    return PaymentConfirmation(payment_id, order_id, price, currency, REFUNDED)


def _dispute(
    dispute: dict[str, Any], intent_metadata: dict[str, Any] | None
) -> PaymentConfirmation | Ignored:
    order_id = _order_of(dispute, intent_metadata)
    if order_id is None:
        return Ignored(DISPUTE_CREATED, "a dispute of no giftstream order")
    payment_id = _id_of(dispute.get("id"))
    if payment_id is None:
        raise BadField("a dispute without an id")
    price, currency = to_price(dispute.get("amount"), dispute.get("currency"))
    return PaymentConfirmation(payment_id, order_id, price, currency, CHARGED_BACK)
