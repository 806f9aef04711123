"""JSON Schemas of the HTTP API's bodies and answers, shared by the route descriptions.

Each named schema is registered as an OpenAPI component: ``component(name,
schema)`` returns a ``$ref`` to it, which the route descriptions use, and
``components()`` hands the whole set to the spec. Patterns and enumerations
come from the code that checks them, so the spec cannot drift from it.

Objects are open, as the protocol promises (docs/protocol.md, versioning:
clients ignore fields they do not know); every field the server sends today
is listed, which the tests hold it to.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from server.core import history, payments
from server.core.auth import AGES, ISSUABLE_ROLES, USER_ID
from server.core.budget_rules import WINDOWS
from server.core.catalog import LANGUAGES, REGIONS, Tier
from server.core.goal_rules import COINS, GIFT, MAX_TARGET_COINS, MAX_TARGET_COUNT, MAX_TITLE_CHARS
from server.core.payout_terms import METHODS
from server.core.protocol import REQUEST_ID, ROOM_ID
from server.money import creators
from server.money.clawbacks import CHARGEBACK, REFUND
from server.money.earnings import PERIODS as EARNINGS_PERIODS
from server.money.history import ROW_ID
from server.money.leaderboard import PERIODS as LEADERBOARD_PERIODS
from server.money.streams import STREAM_ID
from server.money.withdrawals import ACCOUNT, PAYOUT_ID, TAX_ID, WITHDRAWAL_ID

Schema = dict[str, Any]

_components: dict[str, Schema] = {}


def component(name: str, schema: Schema) -> Schema:
    """Register ``schema`` as ``#/components/schemas/<name>``; a ``$ref`` to it."""
    if _components.setdefault(name, schema) is not schema:
        raise ValueError(f"two schemas named {name}")
    return {"$ref": f"#/components/schemas/{name}"}


def components() -> dict[str, Schema]:
    return dict(sorted(_components.items()))


# ---------------------------------------------------------------- building blocks


def pattern_of(regex: re.Pattern[str]) -> str:
    """A checking regex of the code as a JSON Schema pattern (ECMA-262: no ``\\Z``)."""
    return regex.pattern.removesuffix(r"\Z") + "$"


def text(regex: re.Pattern[str] | None = None, description: str = "") -> Schema:
    schema: Schema = {"type": "string"}
    if regex is not None:
        schema["pattern"] = pattern_of(regex)
    if description:
        schema["description"] = description
    return schema


def one_of(values: Iterable[object], description: str = "") -> Schema:
    schema: Schema = {"enum": sorted(str(value) for value in values)}
    if description:
        schema["description"] = description
    return schema


def nullable(schema: Schema) -> Schema:
    kind = schema.get("type")
    if isinstance(kind, str) and set(schema) <= {"type", "description", "minimum"}:
        return schema | {"type": [kind, "null"]}
    return {"anyOf": [schema, {"type": "null"}]}


def whole(minimum: int | None = 0, description: str = "", maximum: int | None = None) -> Schema:
    schema: Schema = {"type": "integer"}
    if minimum is not None:
        schema["minimum"] = minimum
    if maximum is not None:
        schema["maximum"] = maximum
    if description:
        schema["description"] = description
    return schema


def obj(
    required: dict[str, Schema], optional: dict[str, Schema] | None = None, **more: Any
) -> Schema:
    """An object with ``required`` fields and ``optional`` ones (``more``: other keywords)."""
    schema: Schema = {"type": "object", "properties": required | (optional or {})}
    if required:
        schema["required"] = list(required)
    return schema | more


def array(items: Schema, **more: Any) -> Schema:
    return {"type": "array", "items": items} | more


def extended(base: Schema, **fields: Schema) -> Schema:
    """``base`` (an ``obj``) with more required fields."""
    return base | {
        "properties": base["properties"] | fields,
        "required": [*base.get("required", []), *fields],
    }


BOOLEAN: Schema = {"type": "boolean"}
NUMBER: Schema = {"type": "number"}
STRING: Schema = {"type": "string"}
ANY: Schema = {}
MS = whole(0, "milliseconds since the Unix epoch")
COUNT = whole(0)
SIGNED = whole(None)
USER = text(USER_ID, "a user id")
ROOM = text(ROOM_ID, "a room id: its creator's user id")
REQUEST = text(REQUEST_ID, "the client's own id of the request; a retry sends it again")
ORDER_ID = text(payments.ORDER_ID)
STREAM = text(STREAM_ID)
WITHDRAWAL = text(WITHDRAWAL_ID)
PRICE = text(description='decimal text with two places, "4.99"')
ELIGIBILITY_REASONS = array(
    one_of(
        [
            creators.NOT_A_CREATOR,
            creators.GIFTING_OFF,
            creators.FOLLOWERS_BELOW_MINIMUM,
            creators.NOT_ADULT,
            creators.SUSPENDED,
            creators.OPERATOR_REFUSED,
            creators.ROOM_OFFLINE,
        ]
    )
)

# ---------------------------------------------------------------- errors and probes

PROBLEM = component(
    "Problem",
    obj(
        {
            "code": text(
                description="stable: what programs branch on (docs/protocol.md#error-codes)"
            ),
            "title": STRING,
            "status": whole(400, maximum=599),
            "detail": text(description="for people"),
            "temporary": {"type": "boolean", "description": "the same request may succeed later"},
        },
        {
            # Fields some codes add (their error classes' details).
            "reason": text(description="unauthorized: which check failed"),
            "reasons": array(STRING, description="not_eligible: the eligibility codes"),
            "coins": COUNT,
            "threshold": COUNT,
            "limit": COUNT,
            "remaining": COUNT,
            "required": COUNT,
            "level": COUNT,
            "request_id": text(description="internal: the id of the server's log line"),
        },
    ),
)
STATUS_OK = component("StatusOk", obj({"status": {"const": "ok"}}))
OPENAPI_DOCUMENT = component(
    "OpenApiDocument",
    obj(
        {
            "openapi": STRING,
            "info": obj({"title": STRING, "version": STRING}, additionalProperties=True),
            "paths": ANY,
        },
        additionalProperties=True,
    ),
)
NOT_READY = component(
    "NotReady",
    obj(
        {"status": {"const": "unavailable"}, "detail": STRING},
        {"embedded_valkey": {"const": "restarting"}},
    ),
)

# ---------------------------------------------------------------- catalogue, wallet, orders

GIFT_FIELDS = obj(
    {
        "id": STRING,
        "name": text(description="in the request's language"),
        "names": {"type": "object", "additionalProperties": STRING},
        "coins": whole(1, "the unit price"),
        "tier": one_of(Tier),
        "streakable": BOOLEAN,
        "fan_level_required": COUNT,
    }
)
PACKAGE = component(
    "Package",
    obj(
        {
            "id": STRING,
            "coins": COUNT,
            "bonus": COUNT,
            "price": PRICE,
            "currency": STRING,
            "region": one_of(REGIONS),
        }
    ),
)
CATALOG = component(
    "Catalog",
    obj(
        {
            "language": one_of(LANGUAGES),
            "region": one_of(REGIONS),
            "gifts": array(component("Gift", GIFT_FIELDS)),
            "packages": array(PACKAGE),
        }
    ),
)
LANGUAGE_QUERY = one_of(LANGUAGES, "the gifts' names: else Accept-Language decides")
REGION_QUERY = one_of(REGIONS, "whose packages: else the language's region")

BALANCES: Schema = obj(
    {"coins": COUNT, "diamonds": COUNT},
    additionalProperties=whole(None, "the wallet's other counters, once written"),
)
WALLET = component("Wallet", extended(BALANCES, user=USER))

DEV_TOKEN_REQUEST = component(
    "DevTokenRequest",
    obj(
        {"user": USER},
        {
            "role": one_of(ISSUABLE_ROLES) | {"default": "viewer"},
            "adult": BOOLEAN,
            "age": one_of(AGES),
        },
    ),
)
DEV_TOKEN = component("DevToken", obj({"token": STRING, "expires_in": whole(1)}))

ORDER_REQUEST = component("OrderRequest", obj({"package": text(description="a package id")}))
ORDER = component(
    "Order",
    obj(
        {
            "order_id": ORDER_ID,
            "package": STRING,
            "coins": whole(1, "what the order credits: package coins plus bonus"),
            "price": PRICE,
            "currency": STRING,
            "status": {"const": "created"},
        }
    ),
)

PAYMENT_CALLBACK = component(
    "PaymentCallback",
    obj(
        {
            "type": one_of(payments.EVENT_TYPES),
            "payment_id": text(payments.PAYMENT_ID),
            "order_id": ORDER_ID,
            "price": PRICE,
            "currency": STRING,
        }
    ),
)
CLAWBACK_FIELDS = obj(
    {
        "status": one_of(["ok", "duplicate"]),
        "kind": one_of([REFUND, CHARGEBACK]),
        "order_id": ORDER_ID,
        "user": USER,
        "coins_taken_back": COUNT,
        "shortfall": COUNT,
        "balance": COUNT,
    }
)
CLAWBACK = component("Clawback", CLAWBACK_FIELDS)
PAYMENT_OUTCOME = component(
    "PaymentOutcome",
    {
        "anyOf": [
            obj(
                {"status": one_of(["ok", "duplicate", "order_paid"]), "order_id": ORDER_ID},
                description="payment.succeeded",
            ),
            CLAWBACK,
        ]
    },
)

# ---------------------------------------------------------------- creators

OVERLAY_KEY = component(
    "OverlayKey",
    obj({"room": ROOM, "key": text(description="opens the room as an overlay"), "url": STRING}),
)
CREATOR_PROFILE = component(
    "CreatorProfile",
    obj(
        {
            "user": USER,
            "followers": COUNT,
            "min_followers": COUNT,
            "adult": BOOLEAN,
            "age": one_of(AGES),
            "gifting_enabled": BOOLEAN,
            "eligible": BOOLEAN,
            "reasons": ELIGIBILITY_REASONS,
        }
    ),
)
GIFTING_REQUEST = component("GiftingRequest", obj({"enabled": BOOLEAN}))
FOLLOW = component(
    "Follow",
    obj({"creator": USER, "following": BOOLEAN, "followers": COUNT, "changed": BOOLEAN}),
)
ROOM_STATE = component(
    "Room",
    obj(
        {
            "room": ROOM,
            "creator": USER,
            "accepts_gifts": BOOLEAN,
            "reasons": ELIGIBILITY_REASONS,
            "live": BOOLEAN,
            "stream_id": nullable(STREAM),
        }
    ),
)
TEST_ALERT_REQUEST = component("TestAlertRequest", obj({}, {"gift": text(description="a gift id")}))
TEST_ALERT = component(
    "TestAlert",
    obj(
        {
            "status": {"const": "sent"},
            "event": obj(
                {
                    "type": {"const": "test_alert"},
                    "seq": {"const": 0},
                    "room": ROOM,
                    "sender": STRING,
                    "gift": STRING,
                    "count": whole(1),
                    "coins": COUNT,
                    "tier": one_of(Tier),
                    "ts": MS,
                    "combo": {"type": "null"},
                }
            ),
        }
    ),
)

# ---------------------------------------------------------------- streams and earnings

STREAM_FIELDS = obj(
    {
        "stream_id": STREAM,
        "live": BOOLEAN,
        "started": MS,
        "ended": nullable(MS),
        "end_reason": nullable(text(description="ended, idle, ...; null while live")),
    }
)
STREAM_INFO = component("Stream", STREAM_FIELDS)
HEARTBEAT = component("Heartbeat", extended(STREAM_FIELDS, idle_seconds=NUMBER))
STREAMS = component(
    "Streams",
    obj({"live": nullable(STREAM_INFO), "streams": array(STREAM_INFO), "idle_seconds": NUMBER}),
)

TOTALS = component(
    "EarningsTotals", obj({"sends": COUNT, "count": COUNT, "coins": COUNT, "diamonds": COUNT})
)
GIFT_ROW = component(
    "EarningsByGift",
    obj(
        {
            "gift": STRING,
            "name": STRING,
            "tier": nullable(one_of(Tier)),
            "count": COUNT,
            "coins": COUNT,
            "diamonds": COUNT,
        }
    ),
)
SUPPORTER_ROW = component("Supporter", obj({"user": USER, "coins": COUNT, "diamonds": COUNT}))
SECTION: dict[str, Schema] = {
    "totals": TOTALS,
    "by_gift": array(GIFT_ROW),
    "top_supporters": array(SUPPORTER_ROW),
}
POINT = obj({"start": MS, "coins": COUNT, "diamonds": COUNT})
EARNINGS = component(
    "Earnings",
    obj(
        {
            "creator": USER,
            "now": MS,
            "diamonds": COUNT,
            "diamonds_earned": COUNT,
            "received": COUNT,
            "period": obj(
                {
                    "name": one_of(EARNINGS_PERIODS),
                    "from": MS,
                    "to": MS,
                    "unit": one_of(["hour", "day", "month"]),
                    "series": array(POINT),
                    **SECTION,
                }
            ),
            "stream": nullable(extended(STREAM_FIELDS, **SECTION)),
            "selection": obj({"stream_id": nullable(STREAM), "from": MS, "to": MS}),
            "totals": TOTALS,
            "by_stream": array(extended(STREAM_FIELDS, count=COUNT, coins=COUNT, diamonds=COUNT)),
            "by_gift": array(GIFT_ROW),
            "by_supporter": array(SUPPORTER_ROW),
            "by_day": array(extended(POINT, day=text(description="YYYY-MM-DD, UTC"))),
        }
    ),
)
EARNINGS_QUERY: dict[str, Schema] = {
    "period": one_of(EARNINGS_PERIODS, "the chart's period; week when absent"),
    "stream_id": text(STREAM_ID, "the selection: one stream"),
    "from": text(description="the selection's first day: ms, or YYYY-MM-DD (UTC)"),
    "to": text(description="its last day: ms, or YYYY-MM-DD (the end of that day)"),
}

# ---------------------------------------------------------------- withdrawals

PAYOUT_PROFILE_REQUEST = component(
    "PayoutProfileRequest",
    obj(
        {
            "method": one_of(METHODS),
            "legal_name": text(description="1-100 printable characters"),
            "tax_id": text(TAX_ID),
            "account": text(ACCOUNT),
        }
    ),
)
PAYOUT_PROFILE = component(
    "PayoutProfile",
    obj(
        {"method": nullable(one_of(METHODS)), "verified": BOOLEAN},
        {
            "legal_name": STRING,
            "tax_id": text(description="masked"),
            "account": text(description="masked"),
            "currency": nullable(STRING),
        },
    ),
)
WITHDRAWAL_REQUEST = component(
    "WithdrawalRequest", obj({"diamonds": whole(1), "request_id": REQUEST})
)
WITHDRAWAL_FIELDS = obj(
    {
        "withdrawal_id": WITHDRAWAL,
        "status": one_of(["pending", "paid", "failed"]),
        "diamonds": whole(1),
        "amount": PRICE,
        "currency": STRING,
        "method": one_of(METHODS),
        "day": whole(0, "the UTC day counted for the daily limit (days since 1970)"),
        "created": MS,
        "updated": MS,
    }
)
WITHDRAWAL_RECORD = component("Withdrawal", WITHDRAWAL_FIELDS)
NEW_WITHDRAWAL = component(
    "NewWithdrawal",
    extended(WITHDRAWAL_FIELDS, duplicate={"type": "boolean", "description": "a retry"}),
)
WITHDRAWALS = component("Withdrawals", obj({"withdrawals": array(WITHDRAWAL_RECORD)}))
PAYOUT_CALLBACK = component(
    "PayoutCallback",
    obj(
        {
            "type": one_of(["payout.paid", "payout.failed"]),
            "withdrawal_id": WITHDRAWAL,
            "creator": USER,
            "payout_id": text(PAYOUT_ID),
        }
    ),
)
SANDBOX_PAYOUT_REQUEST = component(
    "SandboxPayoutRequest", obj({"outcome": one_of(["paid", "failed"])})
)
PAYOUT_OUTCOME = component(
    "PayoutOutcome",
    obj({"status": one_of(["ok", "duplicate", "conflict"]), "withdrawal": WITHDRAWAL_RECORD}),
)

# ---------------------------------------------------------------- the payer's own side

HISTORY_ROW = obj(
    {
        "id": text(
            ROW_ID,
            "the ledger entry's id; for a gift of a call's credits entry, then .<n>",
        ),
        "kind": one_of(history.KINDS),
        "coins": SIGNED,
        "diamonds": SIGNED,
        "balance_after": nullable(SIGNED),
        "request_id": nullable(STRING),
        "order_id": nullable(STRING),
        "room": nullable(STRING),
        "gift": nullable(STRING),
        "count": nullable(COUNT),
        "at": MS,
    },
    {
        # The fields of some kinds only (docs/protocol.md, GET /api/wallet/history).
        "bonus": COUNT,
        "reason": nullable(STRING),
        "to": nullable(STRING),
        "from": STRING,
        "stream_id": nullable(STRING),
        "withdrawal_id": nullable(STRING),
        "paid_out": COUNT,
        "shortfall": COUNT,
    },
)
HISTORY = component(
    "HistoryPage",
    obj(
        {
            "entries": array(component("HistoryEntry", HISTORY_ROW)),
            "next_cursor": nullable(STRING),
        }
    ),
)
HISTORY_QUERY: dict[str, Schema] = {
    "limit": text(description="rows, 1 to 200; 50 when absent"),
    "kind": one_of(history.KINDS, "only rows of this kind"),
    "cursor": text(description="the next_cursor of the page before"),
}

LIMIT = nullable(whole(0, "coins; null: no limit"))
BUDGET_WINDOW = component(
    "BudgetWindow",
    obj(
        {
            "limit": LIMIT,
            "spent": COUNT,
            "remaining": LIMIT,
            "resets_at": MS,
            "pending": nullable(obj({"limit": LIMIT, "from": MS})),
        }
    ),
)
BUDGET = component(
    "Budget",
    obj(
        {name: BUDGET_WINDOW for name in WINDOWS} | {"remaining": LIMIT, "cooling_seconds": NUMBER}
    ),
)
BUDGET_REQUEST = component(
    "BudgetRequest",
    obj({}, {name: LIMIT for name in WINDOWS}, additionalProperties=False, minProperties=1),
)

# ---------------------------------------------------------------- the room's stage

LEADERBOARD = component(
    "Leaderboard",
    obj(
        {
            "room": ROOM,
            "period": one_of(LEADERBOARD_PERIODS),
            "entries": array(
                obj(
                    {
                        "rank": whole(1),
                        "user": nullable(USER),
                        "name": STRING,
                        "coins": COUNT,
                        "fan_level": COUNT,
                    }
                )
            ),
        },
        {"stream_id": nullable(STREAM)},
    ),
)
PRIVACY = component("Privacy", obj({"anonymous": BOOLEAN}))
GOAL_FIELDS = obj(
    {
        "goal_id": STRING,
        "title": STRING,
        "kind": one_of([COINS, GIFT]),
        "gift_id": nullable(STRING),
        "target": whole(1),
        "progress": COUNT,
        "created": MS,
        "reached": nullable(MS),
    }
)
GOAL = component("Goal", GOAL_FIELDS)
ROOM_GOAL = component("RoomGoal", obj({"room": ROOM, "goal": nullable(GOAL)}))
SET_GOAL = component("SetGoal", obj({"goal": GOAL}))
NO_GOAL = component("NoGoal", obj({"goal": {"type": "null"}}))
TITLE = text(description=f"1 to {MAX_TITLE_CHARS} characters")
GOAL_REQUEST = component(
    "GoalRequest",
    {
        "oneOf": [
            obj({"title": TITLE, "target_coins": whole(1, maximum=MAX_TARGET_COINS)}),
            obj(
                {
                    "title": TITLE,
                    "gift_id": STRING,
                    "target_count": whole(1, maximum=MAX_TARGET_COUNT),
                }
            ),
        ]
    },
)
FANCLUB = component(
    "Fanclub",
    obj(
        {"room": ROOM, "price_coins": whole(1), "level_coins": array(COUNT)},
        {
            "you": obj(
                {
                    "member": BOOLEAN,
                    "joined": nullable(MS),
                    "fan_level": COUNT,
                    "fan_coins": COUNT,
                },
                description="with a viewer's token: the caller's membership",
            )
        },
    ),
)
FANCLUB_JOIN_REQUEST = component("FanclubJoinRequest", obj({"request_id": REQUEST}))
FANCLUB_JOIN = component(
    "FanclubJoin",
    obj(
        {
            "room": ROOM,
            "member": BOOLEAN,
            "joined": nullable(MS),
            "fan_level": COUNT,
            "fan_coins": COUNT,
            "coins": whole(0, "what joining cost"),
            "balance": COUNT,
            "duplicate": BOOLEAN,
        }
    ),
)
