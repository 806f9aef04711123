"""The operator's API, under /api/admin/: eligibility, suspensions, ages,
promotional coins, a user's ledger and the audit of every action.

Behind ``Authorization: Bearer <GIFTSTREAM_OPERATOR_TOKEN>``, compared in
constant time; never a viewer's or a creator's token, whatever its role.
Without an operator token configured every route answers 404, as if it
were not there. Each action that changes something is recorded in the
audit (``server/ops/audit.py``) with its before and after.
"""

from __future__ import annotations

import hmac
import re
import time
from typing import Any, NamedTuple

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from server.access.revocations import MAX_TOKEN_ID_LENGTH, check_token_id
from server.api.http_api import confirm_payment, json_body, services_of, typed_errors
from server.api.openapi import describe
from server.api.schemas import (
    ANY,
    BALANCES,
    BOOLEAN,
    CLAWBACK_FIELDS,
    COUNT,
    MS,
    ORDER_ID,
    STRING,
    USER,
    array,
    component,
    extended,
    nullable,
    obj,
    one_of,
    pattern_of,
    whole,
)
from server.core import payments
from server.core.auth import Role, bearer_token, check_user_id
from server.errors import (
    AuthError,
    BadField,
    NotAllowed,
    NotFound,
    OrderNotPaid,
    UnknownOrder,
    UnknownPackage,
)
from server.money.clawbacks import REFUND, REFUND_REASONS
from server.money.creators import ADULT, MINOR, UNKNOWN
from server.money.settlement import now_ms
from server.services import Services
from server.store.calls import as_text, guarded

# Who, in the audit: the one operator token there is, or a platform
# operator's user id after "operator:".
OPERATOR = "operator"
LEDGER_LISTED = 200
GRANT_REQUEST = re.compile(r"^[A-Za-z0-9_.:-]{1,64}\Z")
# A token revoked without its expiry is refused this long (a week).
UNKNOWN_EXPIRY_SECONDS = 7 * 24 * 3600
# The most one grant may give: a typo of a few zeros is refused, not paid.
MAX_GRANT_COINS = 1_000_000

# ---------------------------------------------------------------- schemas

PROFILE_FIELDS = obj(
    {
        "age": one_of([ADULT, MINOR, UNKNOWN]),
        "suspended": BOOLEAN,
        "eligibility_forced": nullable(BOOLEAN),
        "gifting_enabled": BOOLEAN,
        "followers": COUNT,
    },
    description="the user's profile as the rules read it",
)
ACTION = component(
    "OperatorAction",
    obj({"user": USER, "action": STRING, "before": PROFILE_FIELDS, "after": PROFILE_FIELDS}),
)
FORCE = nullable(BOOLEAN) | {"description": "true or false: forced; null: the rules decide"}
ELIGIBILITY_REQUEST = component("EligibilityRequest", obj({"force": FORCE}))
AGE_REQUEST = component("AgeRequest", obj({"status": one_of([ADULT, MINOR, UNKNOWN])}))
LEDGER = component(
    "Ledger",
    obj(
        {
            "user": USER,
            "wallet": BALANCES,
            "entries": array(
                obj({"id": STRING}, additionalProperties={"type": "string"}),
                description=f"the newest {LEDGER_LISTED}, newest first, as the ledger holds them",
            ),
        }
    ),
)
AUDIT = component(
    "Audit",
    obj(
        {
            "actions": array(
                obj(
                    {
                        "id": STRING,
                        "who": STRING,
                        "action": STRING,
                        "target": STRING,
                        "before": ANY,
                        "after": ANY,
                        "ts": MS,
                    }
                )
            )
        }
    ),
)
GRANT_REQUEST_BODY = component(
    "GrantRequest",
    obj(
        {
            "user": USER,
            "coins": whole(1, maximum=MAX_GRANT_COINS),
            "reason": {"type": "string", "minLength": 1, "maxLength": 100},
            "request_id": {"type": "string", "pattern": pattern_of(GRANT_REQUEST)},
        }
    ),
)
GRANT = component(
    "Grant",
    obj(
        {
            "user": USER,
            "coins": whole(1),
            "reason": STRING,
            "request_id": STRING,
            "status": one_of(["ok", "duplicate"]),
            "balance": COUNT,
        }
    ),
)
REFUND_REQUEST = component(
    "RefundRequest", obj({"order_id": ORDER_ID, "reason": one_of(REFUND_REASONS)})
)
REFUND_ANSWER = component(
    "Refund",
    extended(
        CLAWBACK_FIELDS,
        reason=one_of(REFUND_REASONS),
        provider={"type": "string", "description": "what the payment provider did"},
    ),
)
UNFLAG = component("Unflag", obj({"user": USER, "flagged": {"const": False}, "changed": BOOLEAN}))
REVOKE_TOKEN_REQUEST = component(
    "RevokeTokenRequest",
    obj(
        {"jti": {"type": "string", "minLength": 1, "maxLength": MAX_TOKEN_ID_LENGTH}},
        {"expires_at": whole(0, "the token's exp (s); a week from now when absent")},
    ),
)
REVOKED_TOKEN = component(
    "RevokedToken", obj({"jti": STRING, "expires_at": COUNT, "revoked": {"const": True}})
)
REVOKED_USER = component(
    "RevokedUserTokens", obj({"user": USER, "revoked_before": whole(0, "Unix seconds")})
)
USER_PATH = {"user": USER}


class Operator(NamedTuple):
    services: Services
    # Who acted, for the audit and the ledger.
    who: str


async def operator(request: Request) -> Operator:
    """The services, once the caller has shown the operator token, or a
    platform token whose role is ``operator``."""
    services = services_of(request)
    expected = services.settings.operator_token
    if not expected:
        raise NotFound("no operator API on this server")
    presented = bearer_token(request.headers.get("authorization"))
    if hmac.compare_digest(presented.encode(), expected.encode()):
        return Operator(services, OPERATOR)
    if presented.count(".") != 2:  # not a JWT either
        raise AuthError("not the operator token", reason="bad_signature")
    identity = await services.authenticator.identify(presented, time.time())
    if identity.role is not Role.OPERATOR:
        raise NotAllowed("the operator API takes operator tokens only")
    return Operator(services, f"{OPERATOR}:{identity.user}")


def target_user(request: Request) -> str:
    return check_user_id(request.path_params["user"])


async def profile_fields(services: Services, user: str) -> dict[str, Any]:
    profile = await services.creators.fresh(user)
    return {
        "age": profile.age,
        "suspended": profile.suspended,
        "eligibility_forced": profile.forced,
        "gifting_enabled": profile.gifts_enabled,
        "followers": profile.followers,
    }


async def audited(
    services: Services, who: str, action: str, user: str, before: Any, after: Any
) -> JSONResponse:
    await services.audit.record(who, action, user, before, after, now_ms())
    return JSONResponse({"user": user, "action": action, "before": before, "after": after})


@describe(
    summary="Force a creator eligible or not, or let the rules decide again",
    body=ELIGIBILITY_REQUEST,
    answers={200: ACTION},
    errors=[BadField],
    auth="operator",
    path=USER_PATH,
)
@typed_errors
async def put_eligibility(request: Request) -> Response:
    services, who = await operator(request)
    user = target_user(request)
    force = (await json_body(request)).get("force", "missing")
    if force not in (True, False, None):
        raise BadField("force must be true, false or null")
    before = await profile_fields(services, user)
    await services.creators.force_eligibility(user, force)
    return await audited(
        services, who, "eligibility", user, before, await profile_fields(services, user)
    )


async def set_suspension(request: Request, suspended: bool) -> Response:
    services, who = await operator(request)
    user = target_user(request)
    before = await profile_fields(services, user)
    await services.suspensions.set(user, suspended)
    services.creators.forget(user)
    after = await profile_fields(services, user)
    return await audited(
        services, who, "suspend" if suspended else "unsuspend", user, before, after
    )


@describe(
    summary="Suspend a user: no gifts sent or received, no withdrawals",
    answers={200: ACTION},
    errors=[BadField],
    auth="operator",
    path=USER_PATH,
)
@typed_errors
async def post_suspend(request: Request) -> Response:
    return await set_suspension(request, True)


@describe(
    summary="Lift a user's suspension",
    answers={200: ACTION},
    errors=[BadField],
    auth="operator",
    path=USER_PATH,
)
@typed_errors
async def post_unsuspend(request: Request) -> Response:
    return await set_suspension(request, False)


@describe(
    summary="The operator's word on a user's age",
    body=AGE_REQUEST,
    answers={200: ACTION},
    errors=[BadField],
    auth="operator",
    path=USER_PATH,
)
@typed_errors
async def put_age(request: Request) -> Response:
    services, who = await operator(request)
    user = target_user(request)
    status = (await json_body(request)).get("status")
    if status not in (ADULT, MINOR, UNKNOWN):
        raise BadField("status must be adult, minor or unknown")
    before = await profile_fields(services, user)
    await services.creators.set_age(user, str(status))
    services.ages.forget()
    return await audited(services, who, "age", user, before, await profile_fields(services, user))


async def newest_entries(services: Services, user: str) -> list[Any]:
    ledger = services.wallets.keys(user).ledger
    return list(await services.redis.xrevrange(ledger, count=LEDGER_LISTED) or [])


@describe(
    summary="A user's wallet and newest ledger entries",
    answers={200: LEDGER},
    errors=[BadField],
    auth="operator",
    path=USER_PATH,
)
@typed_errors
async def get_ledger(request: Request) -> Response:
    """The user's newest ledger entries, newest first: every movement of their money."""
    services = (await operator(request)).services
    user = target_user(request)
    entries = await guarded(newest_entries(services, user))
    listed = [
        {"id": as_text(entry_id)} | {as_text(k): as_text(v) for k, v in (raw or {}).items()}
        for entry_id, raw in entries
    ]
    wallet = await services.wallets.balances(user)
    return JSONResponse({"user": user, "wallet": wallet, "entries": listed})


@describe(
    summary="Grant promotional coins, once per request id",
    body=GRANT_REQUEST_BODY,
    answers={201: GRANT, 200: GRANT},
    errors=[BadField],
    auth="operator",
)
@typed_errors
async def post_grant(request: Request) -> Response:
    """Promotional coins, once per request id: 201 granted, 200 for a retry."""
    services, who = await operator(request)
    body = await json_body(request)
    user = check_user_id(body.get("user"))
    coins = body.get("coins")
    if not isinstance(coins, int) or isinstance(coins, bool) or not 1 <= coins <= MAX_GRANT_COINS:
        raise BadField(f"coins must be a whole number from 1 to {MAX_GRANT_COINS:,}")
    reason = body.get("reason")
    if not isinstance(reason, str) or not 1 <= len(reason) <= 100 or not reason.isprintable():
        raise BadField("reason must be 1 to 100 printable characters")
    request_id = body.get("request_id")
    if not isinstance(request_id, str) or not GRANT_REQUEST.match(request_id):
        raise BadField("request_id must be 1-64 characters of A-Z a-z 0-9 _ . : -")
    outcome = await services.wallets.grant_promo(user, coins, request_id, reason, who, now_ms())
    granted = {"user": user, "coins": coins, "reason": reason, "request_id": request_id,
               "status": outcome.status, "balance": outcome.balance}  # fmt: skip
    if outcome.status == "ok":
        await services.audit.record(who, "grant", user, None, granted, now_ms())
    return JSONResponse(granted, status_code=201 if outcome.status == "ok" else 200)


@describe(
    summary="Refund a paid order",
    body=REFUND_REQUEST,
    answers={201: REFUND_ANSWER, 200: REFUND_ANSWER},
    errors=[BadField, UnknownOrder, UnknownPackage, OrderNotPaid],
    auth="operator",
)
@typed_errors
async def post_refund(request: Request) -> Response:
    """Take a paid order's coins back (what is left of them) and give its money
    back through the payment provider; once per order."""
    services, who = await operator(request)
    body = await json_body(request)
    order_id = body.get("order_id")
    if not isinstance(order_id, str) or not payments.ORDER_ID.match(order_id):
        raise BadField("order_id must be an order id")
    reason = body.get("reason")
    if reason not in REFUND_REASONS:
        raise BadField("reason must be one of " + ", ".join(REFUND_REASONS))
    order = await services.orders.load(order_id)
    clawback = await services.clawbacks.take_back(order, REFUND, str(reason), now_ms())
    answer = clawback.to_dict() | {"reason": reason, "provider": "none"}
    if clawback.status == "ok":
        await services.audit.record(who, "refund", order.user, None, answer, now_ms())
    if services.settings.sandbox_payments:
        # The sandbox provider gives the money back at once and says so with
        # its signed callback, through the path a real provider's takes.
        event = payments.PaymentConfirmation(
            payment_id=f"sandbox_refund_{order.id}",
            order_id=order.id,
            price=order.package.price,
            currency=order.package.currency,
            type=payments.REFUNDED,
        )
        callback = payments.confirmation_body(event)
        signature = payments.sign(services.settings.webhook_secret, callback, time.time())
        await confirm_payment(services, callback, signature)
        answer["provider"] = "sandbox: refunded"
    return JSONResponse(answer, status_code=201 if clawback.status == "ok" else 200)


@describe(
    summary="Clear a chargeback's flag",
    answers={200: UNFLAG},
    errors=[BadField],
    auth="operator",
    path=USER_PATH,
)
@typed_errors
async def post_unflag(request: Request) -> Response:
    """Clear the flag a chargeback set: the user may order coins again."""
    services, who = await operator(request)
    user = target_user(request)
    cleared = await services.clawbacks.unflag(user)
    if cleared:
        await services.audit.record(
            who, "unflag", user, {"flagged": True}, {"flagged": False}, now_ms()
        )
    return JSONResponse({"user": user, "flagged": False, "changed": cleared})


@describe(
    summary="The newest operator actions, newest first",
    answers={200: AUDIT},
    auth="operator",
)
@typed_errors
async def get_audit(request: Request) -> Response:
    services = (await operator(request)).services
    return JSONResponse({"actions": await services.audit.recent()})


@describe(
    summary="Refuse one token, by its id, until it expires",
    body=REVOKE_TOKEN_REQUEST,
    answers={200: REVOKED_TOKEN},
    errors=[BadField],
    auth="operator",
)
@typed_errors
async def post_revoke_token(request: Request) -> Response:
    """Refuse one token from now on, by its id (its ``jti``), until it expires."""
    services, who = await operator(request)
    body = await json_body(request)
    jti = check_token_id(body.get("jti"))
    now = time.time()
    expires_at = body.get("expires_at", int(now) + UNKNOWN_EXPIRY_SECONDS)
    if not isinstance(expires_at, int) or isinstance(expires_at, bool) or expires_at < 0:
        raise BadField("expires_at must be the token's exp, in whole seconds")
    await services.revocations.revoke_token(jti, expires_at, now)
    answer = {"jti": jti, "expires_at": expires_at, "revoked": True}
    await services.audit.record(who, "revoke_token", jti, None, answer, now_ms())
    return JSONResponse(answer)


@describe(
    summary="Refuse every token of a user issued until now",
    answers={200: REVOKED_USER},
    errors=[BadField],
    auth="operator",
    path=USER_PATH,
)
@typed_errors
async def post_revoke_user_tokens(request: Request) -> Response:
    """Refuse every token of the user issued until now; they sign in again."""
    services, who = await operator(request)
    user = target_user(request)
    before = await services.revocations.revoke_user(user, time.time())
    answer = {"user": user, "revoked_before": before}
    await services.audit.record(who, "revoke_tokens", user, None, answer, now_ms())
    return JSONResponse(answer)


routes = [
    Route("/api/admin/tokens/revoke", post_revoke_token, methods=["POST"]),
    Route("/api/admin/users/{user}/revoke-tokens", post_revoke_user_tokens, methods=["POST"]),
    Route("/api/admin/creators/{user}/eligibility", put_eligibility, methods=["PUT"]),
    Route("/api/admin/users/{user}/suspend", post_suspend, methods=["POST"]),
    Route("/api/admin/users/{user}/unsuspend", post_unsuspend, methods=["POST"]),
    Route("/api/admin/users/{user}/age", put_age, methods=["PUT"]),
    Route("/api/admin/users/{user}/ledger", get_ledger, methods=["GET"]),
    Route("/api/admin/audit", get_audit, methods=["GET"]),
    Route("/api/admin/grants", post_grant, methods=["POST"]),
    Route("/api/admin/refunds", post_refund, methods=["POST"]),
    Route("/api/admin/users/{user}/unflag", post_unflag, methods=["POST"]),
]
