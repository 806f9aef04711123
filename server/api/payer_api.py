"""The payer's own side over HTTP: where their coins and diamonds went.

``GET /api/wallet/history?cursor=&limit=&kind=``: every movement of the
caller's money, newest first, a page at a time (``server/money/history.py``).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from server.api.http_api import paying_user, services_of, typed_errors
from server.money.history import History, check_query


@typed_errors
async def get_history(request: Request) -> Response:
    user = paying_user(request)
    query = request.query_params
    cursor, limit, kind = check_query(query.get("cursor"), query.get("limit"), query.get("kind"))
    services = services_of(request)
    history = History(services.redis, services.settings.key_prefix)
    return JSONResponse(await history.page(user, cursor, limit, kind))


routes = [
    Route("/api/wallet/history", get_history, methods=["GET"]),
]
