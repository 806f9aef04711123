"""A creator's streams over HTTP: go live, stay seen, end, list.

``POST /api/creator/streams`` goes live (201 with a new stream, 200 with the
live one: going live twice is one stream), ``POST
/api/creator/streams/{stream_id}/heartbeat`` keeps it live,
``POST /api/creator/streams/{stream_id}/end`` ends it (again: its record),
``GET /api/creator/streams`` lists them. Only the creator's own token.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from server.api import schemas
from server.api.http_api import creator_of, services_of, typed_errors
from server.api.openapi import describe
from server.errors import StreamEnded, UnknownStream
from server.money.settlement import now_ms
from server.money.streams import STREAM_ID

LISTED_STREAMS = 50
STREAM_PATH = {"stream_id": schemas.STREAM}


def stream_id_of(request: Request) -> str:
    stream_id = str(request.path_params["stream_id"])
    if not STREAM_ID.match(stream_id):
        raise UnknownStream(f"no stream {stream_id[:64]!r}")
    return stream_id


@describe(
    summary="Go live: a new stream (201), or the live one (200)",
    answers={201: schemas.STREAM_INFO, 200: schemas.STREAM_INFO},
    auth="creator",
    tag="streams",
)
@typed_errors
async def post_stream(request: Request) -> Response:
    creator = await creator_of(request)
    info, started = await services_of(request).streams.go_live(creator, now_ms())
    return JSONResponse(info.to_dict(), status_code=201 if started else 200)


@describe(
    summary="Say the stream is still being broadcast",
    answers={200: schemas.HEARTBEAT},
    errors=[UnknownStream, StreamEnded],
    auth="creator",
    path=STREAM_PATH,
    tag="streams",
)
@typed_errors
async def post_heartbeat(request: Request) -> Response:
    creator = await creator_of(request)
    stream_id = stream_id_of(request)
    info = await services_of(request).streams.heartbeat(creator, stream_id, now_ms())
    return JSONResponse(
        info.to_dict() | {"idle_seconds": services_of(request).streams.idle_seconds}
    )


@describe(
    summary="End the stream (again: its record)",
    answers={200: schemas.STREAM_INFO},
    errors=[UnknownStream],
    auth="creator",
    path=STREAM_PATH,
    tag="streams",
)
@typed_errors
async def post_end(request: Request) -> Response:
    creator = await creator_of(request)
    stream_id = stream_id_of(request)
    info = await services_of(request).streams.end(creator, stream_id, now_ms())
    return JSONResponse(info.to_dict())


@describe(
    summary="The live stream and the latest ones",
    answers={200: schemas.STREAMS},
    auth="creator",
    tag="streams",
)
@typed_errors
async def get_streams(request: Request) -> Response:
    """The live stream (``live``, or None) and the latest streams, newest first."""
    creator = await creator_of(request)
    streams = services_of(request).streams
    live = await streams.current(creator)
    recent = await streams.recent(creator, LISTED_STREAMS)
    return JSONResponse(
        {
            "live": live.to_dict() if live else None,
            "streams": [info.to_dict() for info in recent],
            "idle_seconds": streams.idle_seconds,
        }
    )


routes = [
    Route("/api/creator/streams", post_stream, methods=["POST"]),
    Route("/api/creator/streams", get_streams, methods=["GET"]),
    Route("/api/creator/streams/{stream_id}/heartbeat", post_heartbeat, methods=["POST"]),
    Route("/api/creator/streams/{stream_id}/end", post_end, methods=["POST"]),
]
