"""The room's stage for its gifters over HTTP.

``GET /api/rooms/{room}/leaderboard?period=stream|day|all``: the room's top
gifters by coins (``server/money/leaderboard.py``); anyone may read it, as
the room shows it to everyone.
``GET`` and ``PUT /api/me/privacy`` (``{"anonymous": true}``): whether the
caller appears in rankings by name; an anonymous gifter is still ranked.
``GET /api/rooms/{room}/goal``: the room's goal and how far it is filled;
``POST`` and ``DELETE /api/creator/goals``: the creator sets or clears it
(``server/money/goals.py``).
``POST /api/rooms/{room}/fanclub/join`` (``{"request_id"}``): the caller
joins the creator's fan club, paying its price (``server/money/fanclub.py``);
``GET /api/rooms/{room}/fanclub``: its price and levels, and with a token
the caller's membership.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from server.api import schemas
from server.api.http_api import (
    caller,
    creator_of,
    json_body,
    paying_user,
    services_of,
    typed_errors,
)
from server.api.openapi import describe
from server.core.goal_rules import parse_goal
from server.core.protocol import REQUEST_ID, ROOM_ID
from server.errors import (
    AgeRestricted,
    AlreadyMember,
    BadField,
    BudgetExceeded,
    GiftingOff,
    GiftsDisabled,
    InsufficientCoins,
    NotFound,
    RateLimited,
    RoomOffline,
    Suspended,
    Unavailable,
    UnknownGift,
)
from server.money.leaderboard import PERIODS
from server.money.settlement import now_ms

ROOM_PATH = {"room": schemas.ROOM}


@describe(
    summary="The room's top gifters by coins",
    answers={200: schemas.LEADERBOARD},
    errors=[BadField, NotFound, Unavailable],
    query={"period": schemas.one_of(PERIODS, "stream (the default), day or all")},
    path=ROOM_PATH,
)
@typed_errors
async def get_leaderboard(request: Request) -> Response:
    room = room_of(request)
    period = request.query_params.get("period", "stream")
    if period not in PERIODS:
        raise BadField("period must be stream, day or all")
    board = await services_of(request).leaderboards.top(room, period, now_ms())
    return JSONResponse({"room": room} | board)


@describe(
    summary="Whether the caller's name is hidden in rankings",
    answers={200: schemas.PRIVACY},
    auth="viewer",
)
@typed_errors
async def get_privacy(request: Request) -> Response:
    user = await paying_user(request)
    anonymous = await services_of(request).leaderboards.is_anonymous(user)
    return JSONResponse({"anonymous": anonymous})


@describe(
    summary="Hide or show the caller's name in rankings",
    body=schemas.PRIVACY,
    answers={200: schemas.PRIVACY},
    errors=[BadField],
    auth="viewer",
)
@typed_errors
async def put_privacy(request: Request) -> Response:
    user = await paying_user(request)
    body = await json_body(request)
    anonymous = body.get("anonymous")
    if not isinstance(anonymous, bool):
        raise BadField("anonymous must be true or false")
    await services_of(request).leaderboards.set_anonymous(user, anonymous)
    return JSONResponse({"anonymous": anonymous})


def room_of(request: Request) -> str:
    room = str(request.path_params["room"])
    if not ROOM_ID.match(room):
        raise NotFound("room ids are 1-64 of A-Z a-z 0-9 _ -")
    return room


@describe(
    summary="The room's goal and how far it is filled",
    answers={200: schemas.ROOM_GOAL},
    errors=[NotFound, Unavailable],
    path=ROOM_PATH,
)
@typed_errors
async def get_goal(request: Request) -> Response:
    room = room_of(request)
    return JSONResponse({"room": room, "goal": await services_of(request).goals.get(room)})


@describe(
    summary="Set the creator's goal, replacing any",
    body=schemas.GOAL_REQUEST,
    answers={201: schemas.SET_GOAL},
    errors=[BadField, UnknownGift],
    auth="creator",
    tag="goals",
)
@typed_errors
async def post_goal(request: Request) -> Response:
    creator = await creator_of(request)
    services = services_of(request)
    ask = parse_goal(await json_body(request), services.catalog)
    return JSONResponse({"goal": await services.goals.set(creator, ask)}, status_code=201)


@describe(
    summary="Clear the creator's goal",
    answers={200: schemas.NO_GOAL},
    auth="creator",
    tag="goals",
)
@typed_errors
async def delete_goal(request: Request) -> Response:
    creator = await creator_of(request)
    await services_of(request).goals.clear(creator)
    return JSONResponse({"goal": None})


@describe(
    summary="Join the creator's fan club, paying its price as a gift",
    body=schemas.FANCLUB_JOIN_REQUEST,
    answers={200: schemas.FANCLUB_JOIN},
    errors=[
        BadField,
        NotFound,
        AlreadyMember,
        InsufficientCoins,
        BudgetExceeded,
        RateLimited,
        AgeRestricted,
        Suspended,
        GiftingOff,
        GiftsDisabled,
        RoomOffline,
    ],
    auth="viewer",
    path=ROOM_PATH,
    tag="fanclub",
)
@typed_errors
async def post_fanclub_join(request: Request) -> Response:
    room = room_of(request)
    identity = await caller(request)
    body = await json_body(request)
    request_id = body.get("request_id")
    if not isinstance(request_id, str) or not REQUEST_ID.match(request_id):
        raise BadField("request_id must be 1-64 of A-Z a-z 0-9 _ - . :")
    services = services_of(request)
    stream_id = await services.gifting.admit_payment(identity, room, now_ms())
    assert identity.user is not None  # admit_payment refuses a token without one
    joined = await services.fanclubs.join(identity.user, room, request_id, stream_id, now_ms())
    return JSONResponse(joined)


@describe(
    summary="The fan club's price and levels; with a token, the caller's membership",
    answers={200: schemas.FANCLUB},
    errors=[NotFound],
    auth="optional",
    path=ROOM_PATH,
    tag="fanclub",
)
@typed_errors
async def get_fanclub(request: Request) -> Response:
    room = room_of(request)
    fans = services_of(request).fanclubs
    answer: dict[str, object] = {
        "room": room,
        "price_coins": fans.price_coins,
        "level_coins": list(fans.thresholds),
    }
    if request.headers.get("authorization"):
        user = await paying_user(request)
        membership = await fans.membership(user, room)
        answer["you"] = {
            "member": membership is not None,
            "joined": membership.joined_ms if membership else None,
            "fan_level": fans.level_of(membership),
            "fan_coins": membership.coins if membership else 0,
        }
    return JSONResponse(answer)


routes = [
    Route("/api/rooms/{room}/leaderboard", get_leaderboard, methods=["GET"]),
    Route("/api/me/privacy", get_privacy, methods=["GET"]),
    Route("/api/me/privacy", put_privacy, methods=["PUT"]),
    Route("/api/rooms/{room}/goal", get_goal, methods=["GET"]),
    Route("/api/creator/goals", post_goal, methods=["POST"]),
    Route("/api/creator/goals", delete_goal, methods=["DELETE"]),
    Route("/api/rooms/{room}/fanclub", get_fanclub, methods=["GET"]),
    Route("/api/rooms/{room}/fanclub/join", post_fanclub_join, methods=["POST"]),
]
