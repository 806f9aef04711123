"""The composition root: routes, the lifespan that owns every resource."""

from __future__ import annotations

import contextlib
import logging
import re
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket

from server import demo
from server.api import (
    admin_api,
    docs_api,
    engagement_api,
    http_api,
    payer_api,
    streams_api,
    stripe_api,
)
from server.api.hosts import ANY_HOST_PATHS, host_allowed, host_name, refuse_host, request_host
from server.api.openapi import describe, text_answer
from server.api.schemas import NOT_READY, STATUS_OK
from server.api.ws_session import room_endpoint
from server.errors import Unavailable
from server.metrics import CONTENT_TYPE_LATEST
from server.ops.embedded import EmbeddedState
from server.services import Services, running_services
from server.settings import Settings
from server.store.calls import guarded

log = logging.getLogger(__name__)
CLIENT_DEMO_DIR = Path(__file__).resolve().parent.parent / "client_demo"


def _services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


async def internal_error(request: Request, exc: Exception) -> Response:
    """Whatever escaped a handler: logged once, answered as a problem document.

    The answer and the log line share a request id, so that a user's report
    finds its traceback; the log has the method and path, never the body.
    """
    request_id = secrets.token_hex(8)
    log.error(
        "unhandled error",
        exc_info=exc,
        extra={"request_id": request_id, "method": request.method, "path": request.url.path},
    )
    body = {
        "code": "internal",
        "title": "Internal error",
        "status": 500,
        "detail": f"internal error (request {request_id})",
        "temporary": True,
        "request_id": request_id,
    }
    return JSONResponse(body, status_code=500, media_type="application/problem+json")


async def http_error(request: Request, exc: Exception) -> Response:
    """Starlette's own refusals (no such path, a method the route does not
    take) as problem documents, like every other error of the API."""
    assert isinstance(exc, HTTPException)
    code = "not_found" if exc.status_code == 404 else "bad_request"
    body = {
        "code": code,
        "title": "NotFound" if code == "not_found" else "BadRequest",
        "status": exc.status_code,
        "detail": exc.detail,
        "temporary": False,
    }
    return JSONResponse(
        body,
        status_code=exc.status_code,
        headers=exc.headers,
        media_type="application/problem+json",
    )


@describe(summary="Whether the process runs", answers={200: STATUS_OK})
async def livez(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


@describe(
    summary="Whether the server can serve: Redis answers a PING",
    answers={200: STATUS_OK, 503: NOT_READY},
)
async def readyz(request: Request) -> Response:
    try:
        await guarded(_services(request).redis.ping())
    except Unavailable as exc:
        body = {"status": "unavailable", "detail": exc.message}
        if EmbeddedState.up is False:
            body["embedded_valkey"] = "restarting"
        return JSONResponse(body, status_code=503)
    return JSONResponse({"status": "ok"})


@describe(
    summary="This process's metrics (docs/protocol.md#health-and-metrics)",
    answers={200: text_answer("text/plain", "Prometheus text exposition")},
)
async def metrics(request: Request) -> Response:
    services = _services(request)
    gauge = services.metrics.connections
    for role, count in services.hub.count_by_role().items():
        gauge.labels(role=str(role)).set(count)
    return Response(services.metrics.exposition(), media_type=CONTENT_TYPE_LATEST)


ROOM_PATH = re.compile(r"/ws/rooms/(?P<room_id>[^/]+)")


class RoomSocketsFirst:
    """Room sockets go straight to their endpoint; everything else to Starlette.

    A room socket lives as long as the viewer watches, and every layer it
    passes through stays suspended with it: Starlette's two exception
    middlewares, its router and route wrappers are a dozen coroutine frames
    per socket, about 2 KB each of tens of thousands of idle viewers pay for
    nothing (docs/benchmarks.md, memory). The endpoint is the same one the
    route table names, and sees the same scope.
    """

    def __init__(self, app: Starlette, allowed_hosts: tuple[str, ...]) -> None:
        self.app = app
        self.allowed_hosts = allowed_hosts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Here rather than in a middleware of its own, which would stay on
        # every room socket's stack as the dispatch below does not.
        if (
            scope["type"] in ("http", "websocket")
            and scope["path"] not in ANY_HOST_PATHS
            and not host_allowed(host_name(request_host(scope)), self.allowed_hosts)
        ):
            await refuse_host(scope, receive, send)
            return
        if scope["type"] == "websocket":
            match = ROOM_PATH.fullmatch(scope["path"])
            if match is not None:
                scope["app"] = self.app
                scope["path_params"] = {"room_id": match["room_id"]}
                await room_endpoint(WebSocket(scope, receive, send))
                return
        await self.app(scope, receive, send)


def create_app(settings: Settings) -> RoomSocketsFirst:
    settings.validate()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with running_services(settings) as services:
            if settings.demo:
                await demo.seed(services)
            app.state.services = services
            yield

    routes = [
        Route("/livez", livez, methods=["GET"]),
        Route("/healthz", livez, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
        *http_api.routes,
        *admin_api.routes,
        *streams_api.routes,
        *payer_api.routes,
        *engagement_api.routes,
        *stripe_api.routes,
        Route("/openapi.json", docs_api.openapi_json, methods=["GET"]),
        Route("/docs", docs_api.docs_page(CLIENT_DEMO_DIR / "docs.html"), methods=["GET"]),
        WebSocketRoute("/ws/rooms/{room_id}", room_endpoint),
    ]
    if CLIENT_DEMO_DIR.is_dir():
        # Ahead of the pages: pages of other origins import the client library
        # as a module, which a browser runs only with Access-Control-Allow-Origin.
        library = docs_api.shared_script(CLIENT_DEMO_DIR / "giftstream.js")
        routes.append(Route("/giftstream.js", library, methods=["GET"]))
        routes.append(Mount("/", StaticFiles(directory=CLIENT_DEMO_DIR, html=True)))
    return RoomSocketsFirst(
        Starlette(
            routes=routes,
            lifespan=lifespan,
            exception_handlers={HTTPException: http_error, Exception: internal_error},
        ),
        settings.allowed_hosts,
    )
