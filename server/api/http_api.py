"""The HTTP API: catalogue, wallet, orders, payment callbacks, dev tokens, creators.

Errors are ``application/problem+json`` bodies that carry the same stable
``code`` as WebSocket error frames.
"""

from __future__ import annotations

import functools
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from server.api import schemas
from server.api.bodies import parse_json, read_body
from server.api.openapi import JSON, Answer, describe
from server.core import payments
from server.core.auth import (
    AGES,
    Identity,
    Role,
    bearer_token,
    check_user_id,
)
from server.core.locale import market
from server.core.tokens import issue_token
from server.errors import (
    AccountFlagged,
    AgeRestricted,
    BadField,
    BadRequest,
    BelowMinimum,
    DailyLimitExceeded,
    GiftError,
    InsufficientDiamonds,
    NotAllowed,
    NotEligible,
    NotFound,
    OrderNotPaid,
    PayoutProfileUnverified,
    RateLimited,
    Suspended,
    TooManyOrders,
    Unavailable,
    UnknownGift,
    UnknownOrder,
    UnknownPackage,
    UnknownStream,
    UnknownWithdrawal,
)
from server.money.clawbacks import CHARGEBACK, REFUND
from server.money.creators import ADULT, CreatorProfile, Creators
from server.money.earnings import Earnings, check_period, parse_time, selection_csv
from server.money.settlement import now_ms
from server.money.streams import STREAM_ID
from server.money.withdrawals import (
    PayoutCallback,
    callback_body,
    parse_callback,
    sign_callback,
    verify_callback,
)
from server.services import Services

Handler = Callable[[Request], Awaitable[Response]]
# A test alert's sender: not a user id (it has a space), so no one's gifts
# can be mistaken for it.
TEST_ALERT_SENDER = "Test alert"


def services_of(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def problem(exc: GiftError) -> JSONResponse:
    body = {
        "code": exc.code,
        "title": type(exc).__name__,
        "status": exc.http_status,
        "detail": exc.message,
        "temporary": exc.temporary,
    } | exc.details
    return JSONResponse(body, status_code=exc.http_status, media_type="application/problem+json")


def typed_errors(handler: Handler) -> Handler:
    """Answer a ``GiftError`` with its problem response instead of a 500.

    The wrapper keeps the handler's name and docstring (the docstring is the
    operation's description in ``/openapi.json``)."""

    @functools.wraps(handler)
    async def wrapped(request: Request) -> Response:
        try:
            return await handler(request)
        except GiftError as exc:
            return problem(exc)

    return wrapped


async def json_body(request: Request) -> dict[str, Any]:
    """The body as a JSON object, read against the API's body cap."""
    raw = await read_body(request, services_of(request).settings.max_body_bytes)
    document = parse_json(raw or b"{}")
    if not isinstance(document, dict):
        raise BadRequest("body must be a JSON object")
    return document


async def caller(request: Request) -> Identity:
    """Who the request's bearer token says is calling (``server/access``);
    read once a request."""
    known = getattr(request.state, "identity", None)
    if isinstance(known, Identity):
        return known
    token = bearer_token(request.headers.get("authorization"))
    identity = await services_of(request).authenticator.identify(token, time.time())
    request.state.identity = identity
    return identity


async def paying_user(request: Request) -> str:
    identity = await caller(request)
    if identity.user is None or not identity.holds_wallet:
        raise NotAllowed(f"{identity.role} tokens cannot hold a wallet")
    return identity.user


@describe(
    summary="The gifts, and the recharge packages of a region",
    answers={200: schemas.CATALOG},
    errors=[BadField],
    query={"lang": schemas.LANGUAGE_QUERY, "region": schemas.REGION_QUERY},
)
@typed_errors
async def get_catalog(request: Request) -> Response:
    """The gifts named in the request's language, and its region's packages
    with the bonus of any promotion on now (``server/core/locale.py``)."""
    query = request.query_params
    language, region = market(
        query.get("lang"), query.get("region"), request.headers.get("accept-language")
    )
    services = services_of(request)
    bonuses = services.promotions.current(now_ms())
    return JSONResponse(services.catalog.to_public(region, language, bonuses))


@describe(summary="The caller's wallet", answers={200: schemas.WALLET}, auth="viewer")
@typed_errors
async def get_wallet(request: Request) -> Response:
    user = await paying_user(request)
    balances = await services_of(request).wallets.balances(user)
    return JSONResponse({"user": user} | balances)


@describe(
    summary="A token for anyone (demo mode only)",
    body=schemas.DEV_TOKEN_REQUEST,
    answers={200: schemas.DEV_TOKEN},
    errors=[NotFound, BadField],
    tag="demo",
)
@typed_errors
async def post_dev_token(request: Request) -> Response:
    services = services_of(request)
    if not services.settings.dev_tokens:
        raise NotFound("dev tokens are issued in demo mode only")
    body = await json_body(request)
    role = body.get("role", "viewer")
    if not isinstance(role, str) or role not in {r.value for r in Role if r is not Role.ANONYMOUS}:
        raise BadRequest("role must be viewer, creator or overlay")
    adult = body.get("adult", False)
    if not isinstance(adult, bool):
        raise BadRequest("adult must be true or false")
    age = body.get("age", "unknown")
    if not isinstance(age, str) or age not in AGES:
        raise BadRequest("age must be adult, minor or unknown")
    if adult and age == "minor":
        raise BadRequest("a token cannot say both adult and minor")
    s = services.settings
    token = issue_token(
        s.jwt_secret,
        check_user_id(body.get("user")),
        Role(role),
        time.time(),
        s.token_ttl_seconds,
        adult=adult,
        age=age,
        rules=services.authenticator.rules,
    )
    return JSONResponse({"token": token, "expires_in": s.token_ttl_seconds})


@describe(
    summary="Order a recharge package; its coins come when it is paid",
    body=schemas.ORDER_REQUEST,
    answers={201: schemas.ORDER},
    errors=[UnknownPackage, AgeRestricted, AccountFlagged, RateLimited, TooManyOrders],
    auth="viewer",
)
@typed_errors
async def post_order(request: Request) -> Response:
    user = await paying_user(request)
    await services_of(request).ages.require_may_recharge(await caller(request))
    body = await json_body(request)
    address = request.client.host if request.client is not None else None
    order = await services_of(request).orders.create(user, body.get("package"), now_ms(), address)
    package = order.package
    return JSONResponse(
        {
            "order_id": order.id,
            "package": package.id,
            "coins": order.total_coins,
            "price": package.price,
            "currency": package.currency,
            "status": order.status,
        },
        status_code=201,
    )


async def confirm_payment(services: Services, body: bytes, signature: str | None) -> Response:
    """The one path every payment callback takes, the sandbox's included."""
    s = services.settings
    payments.verify(s.webhook_secret, body, signature, time.time(), s.webhook_tolerance_seconds)
    return await apply_confirmation(services, payments.parse_confirmation(body))


async def apply_confirmation(
    services: Services, confirmation: payments.PaymentConfirmation
) -> Response:
    """What a provider's verified word on an order does, whichever provider
    said it: the order credited (once, by payment id), or taken back."""
    if confirmation.type != payments.SUCCEEDED:
        return await take_back(services, confirmation)
    outcome, order = await services.orders.apply(confirmation, now_ms())
    if outcome.status == "ok":
        services.metrics.coins_recharged.inc(order.total_coins)
    return JSONResponse({"status": outcome.status, "order_id": confirmation.order_id})


async def take_back(services: Services, event: payments.PaymentConfirmation) -> Response:
    """The provider refunded an order, or its payer charged it back: its coins
    come back out of the wallet, once (clawback.lua)."""
    order = await services.orders.load(event.order_id)
    if (event.price, event.currency) != (order.package.price, order.package.currency):
        raise BadField(
            f"{event.type} of {event.price} {event.currency}, "
            f"order cost {order.package.price} {order.package.currency}"
        )
    kind = CHARGEBACK if event.type == payments.CHARGED_BACK else REFUND
    clawback = await services.clawbacks.take_back(order, kind, "provider", now_ms())
    if kind == REFUND:
        await services.clawbacks.confirm_refund(order.id, event.payment_id, now_ms())
    return JSONResponse(clawback.to_dict())


@describe(
    summary="The payment provider's callback: paid, refunded or charged back",
    body=schemas.PAYMENT_CALLBACK,
    answers={200: schemas.PAYMENT_OUTCOME},
    errors=[BadField, UnknownOrder, UnknownPackage, OrderNotPaid, Unavailable],
    auth="signature",
)
@typed_errors
async def post_webhook(request: Request) -> Response:
    body = await read_body(request, services_of(request).settings.max_webhook_body_bytes)
    signature = request.headers.get(payments.SIGNATURE_HEADER)
    return await confirm_payment(services_of(request), body, signature)


@describe(
    summary="Pay one of the caller's orders through the sandbox provider (demo mode only)",
    answers={200: schemas.PAYMENT_OUTCOME},
    errors=[NotFound, UnknownOrder, UnknownPackage, BadField],
    auth="viewer",
    path={"order_id": schemas.ORDER_ID},
    tag="demo",
)
@typed_errors
async def post_sandbox_pay(request: Request) -> Response:
    """Demo checkout: pays an order by signing the callback a provider would send."""
    services = services_of(request)
    if not services.settings.sandbox_payments:
        raise NotFound("the sandbox payment provider runs in demo mode only")
    user = await paying_user(request)
    order_id = request.path_params["order_id"]
    if not payments.ORDER_ID.match(order_id):
        raise UnknownOrder(f"no order {order_id!r}")
    order = await services.orders.load(order_id)
    if order.user != user:
        raise UnknownOrder(f"no order {order_id!r} for {user}")
    confirmation = payments.PaymentConfirmation(
        payment_id=f"sandbox_{secrets.token_hex(12)}",
        order_id=order.id,
        price=order.package.price,
        currency=order.package.currency,
    )
    body = payments.confirmation_body(confirmation)
    signature = payments.sign(services.settings.webhook_secret, body, time.time())
    return await confirm_payment(services, body, signature)


# ---------------------------------------------------------------- withdrawals


@describe(
    summary="Set where the creator is paid",
    body=schemas.PAYOUT_PROFILE_REQUEST,
    answers={200: schemas.PAYOUT_PROFILE},
    errors=[BadField],
    auth="creator",
    tag="withdrawals",
)
@typed_errors
async def put_payout_profile(request: Request) -> Response:
    """Where the creator is paid; verified once the payout provider says so."""
    creator = await signed_in_creator(request)
    body = await json_body(request)
    return JSONResponse(await services_of(request).withdrawals.save_profile(creator, body))


@describe(
    summary="Where the creator is paid, masked",
    answers={200: schemas.PAYOUT_PROFILE},
    auth="creator",
    tag="withdrawals",
)
@typed_errors
async def get_payout_profile(request: Request) -> Response:
    creator = await signed_in_creator(request)
    return JSONResponse(await services_of(request).withdrawals.profile(creator))


@describe(
    summary="Withdraw diamonds",
    body=schemas.WITHDRAWAL_REQUEST,
    answers={201: schemas.NEW_WITHDRAWAL, 200: schemas.NEW_WITHDRAWAL},
    errors=[
        BadField,
        Suspended,
        PayoutProfileUnverified,
        BelowMinimum,
        InsufficientDiamonds,
        DailyLimitExceeded,
    ],
    auth="creator",
    tag="withdrawals",
)
@typed_errors
async def post_withdrawal(request: Request) -> Response:
    """Reserve diamonds for a payout: 201 when new, 200 for a retry of the request id."""
    creator = await signed_in_creator(request)
    body = await json_body(request)
    withdrawal = await services_of(request).withdrawals.request(
        creator, body.get("diamonds"), body.get("request_id"), now_ms()
    )
    return JSONResponse(withdrawal, status_code=200 if withdrawal["duplicate"] else 201)


@describe(
    summary="The creator's latest withdrawals, newest first",
    answers={200: schemas.WITHDRAWALS},
    auth="creator",
    tag="withdrawals",
)
@typed_errors
async def get_withdrawals(request: Request) -> Response:
    creator = await signed_in_creator(request)
    listed = await services_of(request).withdrawals.list(creator)
    return JSONResponse({"withdrawals": listed})


async def settle_payout(services: Services, body: bytes, signature: str | None) -> Response:
    """The one path every payout callback takes, the sandbox's included."""
    verify_callback(services.settings, body, signature, time.time())
    callback = parse_callback(body)
    status = await services.withdrawals.resolve(callback, now_ms())
    withdrawal = await services.withdrawals.get(callback.creator, callback.withdrawal_id)
    return JSONResponse({"status": status, "withdrawal": withdrawal})


@describe(
    summary="The payout provider's callback: a withdrawal paid or failed",
    body=schemas.PAYOUT_CALLBACK,
    answers={200: schemas.PAYOUT_OUTCOME},
    errors=[BadField, UnknownWithdrawal, Unavailable],
    auth="signature",
    tag="withdrawals",
)
@typed_errors
async def post_payout_webhook(request: Request) -> Response:
    body = await read_body(request, services_of(request).settings.max_webhook_body_bytes)
    signature = request.headers.get(payments.SIGNATURE_HEADER)
    return await settle_payout(services_of(request), body, signature)


@describe(
    summary="Settle one of the creator's withdrawals through the sandbox (demo mode only)",
    body=schemas.SANDBOX_PAYOUT_REQUEST,
    answers={200: schemas.PAYOUT_OUTCOME},
    errors=[NotFound, UnknownWithdrawal, BadField],
    auth="creator",
    path={"withdrawal_id": schemas.WITHDRAWAL},
    tag="demo",
)
@typed_errors
async def post_sandbox_payout(request: Request) -> Response:
    """Demo: the sandbox provider settles one of the caller's withdrawals now."""
    services = services_of(request)
    if not services.settings.sandbox_payouts:
        raise NotFound("the sandbox payout provider runs in demo mode only")
    creator = await signed_in_creator(request)
    withdrawal = await services.withdrawals.get(creator, request.path_params["withdrawal_id"])
    outcome = (await json_body(request)).get("outcome")
    if outcome not in ("paid", "failed"):
        raise BadField("outcome must be 'paid' or 'failed'")
    callback = PayoutCallback(
        withdrawal["withdrawal_id"], creator, str(outcome), f"sandbox_{secrets.token_hex(8)}"
    )
    body = callback_body(callback)
    signature = sign_callback(services.settings, body, time.time())
    return await settle_payout(services, body, signature)


async def creator_of(request: Request) -> str:
    identity = await caller(request)
    if identity.role is not Role.CREATOR or identity.user is None:
        raise NotAllowed("a creator token is required")
    return identity.user


def overlay_answer(creator: str, key: str) -> JSONResponse:
    return JSONResponse(
        {"room": creator, "key": key, "url": f"/overlay.html?room={creator}&key={key}"}
    )


@describe(
    summary="The key of the creator's overlay URL (made on first use)",
    answers={200: schemas.OVERLAY_KEY},
    auth="creator",
)
@typed_errors
async def get_overlay_key(request: Request) -> Response:
    creator = await creator_of(request)
    return overlay_answer(creator, await services_of(request).overlay_keys.current(creator))


@describe(
    summary="Replace the creator's overlay key",
    answers={200: schemas.OVERLAY_KEY},
    auth="creator",
)
@typed_errors
async def post_overlay_key(request: Request) -> Response:
    """A new key: the old overlay URL stops working."""
    creator = await creator_of(request)
    return overlay_answer(creator, await services_of(request).overlay_keys.regenerate(creator))


@describe(
    summary="The creator's earnings: a period's, the latest stream's, a selection's rows",
    answers={
        200: Answer(
            {JSON: schemas.EARNINGS, "text/csv": {"type": "string"}},
            "The report; with Accept: text/csv, the selection's rows as CSV",
        )
    },
    errors=[BadField, UnknownStream],
    auth="creator",
    query=schemas.EARNINGS_QUERY,
)
@typed_errors
async def get_earnings(request: Request) -> Response:
    """The creator's diamonds, earnings over a period and in the latest stream,
    and a selection's rows (a stream, or from/to); as CSV for ``Accept: text/csv``."""
    creator = await creator_of(request)
    query = request.query_params
    period = check_period(query.get("period"))
    stream_id = query.get("stream_id") or None
    if stream_id is not None and not STREAM_ID.match(stream_id):
        raise BadField("stream_id is not a stream id")
    services = services_of(request)
    earnings = Earnings(
        services.redis,
        services.settings.key_prefix,
        services.catalog,
        services.streams,
        services.reports,
    )
    report = await earnings.report(
        creator,
        period,
        now_ms(),
        stream_id=stream_id,
        from_ms=parse_time(query.get("from"), "from"),
        to_ms=parse_time(query.get("to"), "to", end_of_day=True),
    )
    if "text/csv" in request.headers.get("accept", ""):
        name = f"earnings-{creator}-{stream_id or 'days'}.csv"
        return Response(
            selection_csv(report),
            media_type="text/csv; charset=utf-8",
            headers={"content-disposition": f'attachment; filename="{name}"'},
        )
    return JSONResponse(report)


def profile_answer(profile: CreatorProfile, creators: Creators) -> JSONResponse:
    reasons = profile.eligibility_reasons(creators.rules)
    return JSONResponse(
        {
            "user": profile.user,
            "followers": profile.followers,
            "min_followers": creators.min_followers,
            "adult": profile.age == ADULT,
            "age": profile.age,
            "gifting_enabled": profile.gifts_enabled,
            "eligible": not reasons,
            "reasons": reasons,
        }
    )


async def signed_in_creator(request: Request) -> str:
    """The calling creator, whose token's word on their age is kept first."""
    identity = await caller(request)
    if identity.role is not Role.CREATOR or identity.user is None:
        raise NotAllowed("a creator token is required")
    await services_of(request).creators.note_identity(identity)
    return identity.user


@describe(
    summary="The creator's gifting switch and eligibility",
    answers={200: schemas.CREATOR_PROFILE},
    auth="creator",
)
@typed_errors
async def get_creator_profile(request: Request) -> Response:
    """The creator's own view: followers, age, the switch, and whether they are eligible."""
    creator = await signed_in_creator(request)
    creators = services_of(request).creators
    return profile_answer(await creators.fresh(creator), creators)


@describe(
    summary="Switch gifting on or off",
    body=schemas.GIFTING_REQUEST,
    answers={200: schemas.CREATOR_PROFILE},
    errors=[BadField, NotEligible],
    auth="creator",
)
@typed_errors
async def post_creator_gifting(request: Request) -> Response:
    """Switch gifting on (eligible creators only: else 409 ``not_eligible``) or off."""
    creator = await signed_in_creator(request)
    enabled = (await json_body(request)).get("enabled")
    if not isinstance(enabled, bool):
        raise BadField("enabled must be true or false")
    creators = services_of(request).creators
    return profile_answer(await creators.set_gifting(creator, enabled), creators)


async def follow_answer(request: Request, following: bool) -> Response:
    identity = await caller(request)
    if identity.user is None or identity.role is Role.OVERLAY:
        raise NotAllowed("sign in as a viewer or a creator to follow")
    creator = check_user_id(request.path_params["creator"])
    if creator == identity.user:
        raise BadRequest("a user cannot follow themselves")
    followers, changed = await services_of(request).creators.follow(
        identity.user, creator, following
    )
    return JSONResponse(
        {"creator": creator, "following": following, "followers": followers, "changed": changed}
    )


@describe(
    summary="Follow a creator",
    answers={200: schemas.FOLLOW},
    errors=[BadField, BadRequest],
    auth="viewer",
    path={"creator": schemas.USER},
)
@typed_errors
async def post_follow(request: Request) -> Response:
    return await follow_answer(request, True)


@describe(
    summary="Stop following a creator",
    answers={200: schemas.FOLLOW},
    errors=[BadField, BadRequest],
    auth="viewer",
    path={"creator": schemas.USER},
)
@typed_errors
async def delete_follow(request: Request) -> Response:
    return await follow_answer(request, False)


@describe(
    summary="Whether a room takes gifts now, and if not, why",
    answers={200: schemas.ROOM_STATE},
    errors=[BadField, Unavailable],
    path={"room": schemas.ROOM},
)
@typed_errors
async def get_room(request: Request) -> Response:
    """Public: whether a room takes gifts, and if not, why (for the viewer page)."""
    try:
        room = check_user_id(request.path_params["room"])
    except BadField as exc:
        # A room's id is its creator's user id: the same rule, named for what was sent.
        raise BadField(exc.message.replace("user", "room", 1)) from exc
    creators = services_of(request).creators
    reasons = await creators.refusal_reasons(room)
    stream_id = creators.cached_stream(room)
    return JSONResponse(
        {
            "room": room,
            "creator": room,
            "accepts_gifts": not reasons,
            "reasons": reasons,
            "live": stream_id is not None,
            "stream_id": stream_id,
        }
    )


def sample_gift(services: Services) -> str:
    """What a test alert shows by default: a large gift, the kind a streamer tunes for."""
    gifts = list(services.catalog.gifts.values())
    large = [gift for gift in gifts if gift.tier == "large"]
    return (large or sorted(gifts, key=lambda gift: -gift.coins))[0].id


@describe(
    summary="Show a sample gift alert on the creator's overlay",
    body=schemas.TEST_ALERT_REQUEST,
    body_required=False,
    answers={202: schemas.TEST_ALERT},
    errors=[UnknownGift],
    auth="creator",
)
@typed_errors
async def post_test_alert(request: Request) -> Response:
    """A sample gift alert on the creator's overlay: no money, no seq, no history."""
    creator = await creator_of(request)
    body = await json_body(request)
    services = services_of(request)
    gift = services.catalog.gift(body["gift"] if "gift" in body else sample_gift(services))
    event = {
        "type": "test_alert",
        "room": creator,
        "sender": TEST_ALERT_SENDER,
        "gift": gift.id,
        "count": 1,
        "coins": gift.coins,
        "tier": str(gift.tier),
        "ts": now_ms(),
        "combo": None,
    }
    await services.room_log.announce(creator, event)
    return JSONResponse({"status": "sent", "event": event | {"seq": 0}}, status_code=202)


routes = [
    Route("/api/catalog", get_catalog, methods=["GET"]),
    Route("/api/wallet", get_wallet, methods=["GET"]),
    Route("/api/dev/token", post_dev_token, methods=["POST"]),
    Route("/api/orders", post_order, methods=["POST"]),
    Route("/api/payments/webhook", post_webhook, methods=["POST"]),
    Route("/api/sandbox/pay/{order_id}", post_sandbox_pay, methods=["POST"]),
    Route("/api/creator/overlay-key", get_overlay_key, methods=["GET"]),
    Route("/api/creator/overlay-key", post_overlay_key, methods=["POST"]),
    Route("/api/creator/earnings", get_earnings, methods=["GET"]),
    Route("/api/creator/test-alert", post_test_alert, methods=["POST"]),
    Route("/api/creator/profile", get_creator_profile, methods=["GET"]),
    Route("/api/creator/gifting", post_creator_gifting, methods=["POST"]),
    Route("/api/follows/{creator}", post_follow, methods=["POST"]),
    Route("/api/creator/payout-profile", put_payout_profile, methods=["PUT"]),
    Route("/api/creator/payout-profile", get_payout_profile, methods=["GET"]),
    Route("/api/creator/withdrawals", post_withdrawal, methods=["POST"]),
    Route("/api/creator/withdrawals", get_withdrawals, methods=["GET"]),
    Route("/api/payouts/webhook", post_payout_webhook, methods=["POST"]),
    Route("/api/sandbox/payouts/{withdrawal_id}", post_sandbox_payout, methods=["POST"]),
    Route("/api/follows/{creator}", delete_follow, methods=["DELETE"]),
    Route("/api/rooms/{room}", get_room, methods=["GET"]),
]
