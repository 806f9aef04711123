"""The payer's own side over HTTP: where their coins went, and their limits.

``GET /api/wallet/history?cursor=&limit=&kind=``: every movement of the
caller's money, newest first, a page at a time (``server/money/history.py``).
``GET`` and ``PUT /api/wallet/budget``: the caller's own spending limits,
what each window has spent and has left (``server/money/budgets.py``).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from server.api import schemas
from server.api.http_api import json_body, paying_user, services_of, typed_errors
from server.api.openapi import describe
from server.errors import BadField
from server.money.budgets import parse_changes
from server.money.history import History, check_query
from server.money.settlement import now_ms


@describe(
    summary="Every movement of the caller's coins and diamonds, newest first, a page at a time",
    answers={200: schemas.HISTORY},
    errors=[BadField],
    auth="viewer",
    query=schemas.HISTORY_QUERY,
)
@typed_errors
async def get_history(request: Request) -> Response:
    user = await paying_user(request)
    query = request.query_params
    cursor, limit, kind = check_query(query.get("cursor"), query.get("limit"), query.get("kind"))
    services = services_of(request)
    history = History(services.redis, services.settings.key_prefix)
    return JSONResponse(await history.page(user, cursor, limit, kind))


@describe(
    summary="The caller's spending limits, and what each window has left",
    answers={200: schemas.BUDGET},
    auth="viewer",
)
@typed_errors
async def get_budget(request: Request) -> Response:
    user = await paying_user(request)
    budgets = services_of(request).budgets
    answer = await budgets.get(user, now_ms())
    return JSONResponse(answer | {"cooling_seconds": cooling_seconds(budgets.cooling_ms)})


@describe(
    summary="Change the caller's spending limits (a raise waits the cooling time)",
    body=schemas.BUDGET_REQUEST,
    answers={200: schemas.BUDGET},
    errors=[BadField],
    auth="viewer",
)
@typed_errors
async def put_budget(request: Request) -> Response:
    user = await paying_user(request)
    changes = parse_changes(await json_body(request))
    budgets = services_of(request).budgets
    answer = await budgets.set(user, changes, now_ms())
    return JSONResponse(answer | {"cooling_seconds": cooling_seconds(budgets.cooling_ms)})


def cooling_seconds(ms: int) -> int | float:
    """Whole seconds as an integer (the default, 86400), else with the fraction."""
    return ms // 1000 if ms % 1000 == 0 else ms / 1000


routes = [
    Route("/api/wallet/history", get_history, methods=["GET"]),
    Route("/api/wallet/budget", get_budget, methods=["GET"]),
    Route("/api/wallet/budget", put_budget, methods=["PUT"]),
]
