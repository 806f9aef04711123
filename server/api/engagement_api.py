"""The room's stage for its gifters over HTTP.

``GET /api/rooms/{room}/leaderboard?period=stream|day|all``: the room's top
gifters by coins (``server/money/leaderboard.py``); anyone may read it, as
the room shows it to everyone.
``GET`` and ``PUT /api/me/privacy`` (``{"anonymous": true}``): whether the
caller appears in rankings by name; an anonymous gifter is still ranked.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from server.api.http_api import json_body, paying_user, services_of, typed_errors
from server.core.protocol import ROOM_ID
from server.errors import BadField, NotFound
from server.money.leaderboard import PERIODS
from server.money.settlement import now_ms


@typed_errors
async def get_leaderboard(request: Request) -> Response:
    room = request.path_params["room"]
    if not ROOM_ID.match(room):
        raise NotFound("room ids are 1-64 of A-Z a-z 0-9 _ -")
    period = request.query_params.get("period", "stream")
    if period not in PERIODS:
        raise BadField("period must be stream, day or all")
    board = await services_of(request).leaderboards.top(room, period, now_ms())
    return JSONResponse({"room": room} | board)


@typed_errors
async def get_privacy(request: Request) -> Response:
    user = paying_user(request)
    anonymous = await services_of(request).leaderboards.is_anonymous(user)
    return JSONResponse({"anonymous": anonymous})


@typed_errors
async def put_privacy(request: Request) -> Response:
    user = paying_user(request)
    body = await json_body(request)
    anonymous = body.get("anonymous")
    if not isinstance(anonymous, bool):
        raise BadField("anonymous must be true or false")
    await services_of(request).leaderboards.set_anonymous(user, anonymous)
    return JSONResponse({"anonymous": anonymous})


routes = [
    Route("/api/rooms/{room}/leaderboard", get_leaderboard, methods=["GET"]),
    Route("/api/me/privacy", get_privacy, methods=["GET"]),
    Route("/api/me/privacy", put_privacy, methods=["PUT"]),
]
