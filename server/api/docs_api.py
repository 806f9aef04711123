"""The API describing itself: ``/openapi.json``, the page that reads it, and
files served to pages of any origin.

``GET /openapi.json`` is built from the app's own route table the first time
it is asked for (``server/api/openapi_spec.py``), so it lists exactly the
routes this server runs. ``GET /docs`` is a plain page (``client_demo/docs.html``)
whose script fetches it and lays it out; nothing is loaded from elsewhere.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response

from server.api.http_api import Handler, typed_errors
from server.api.openapi import describe, text_answer
from server.api.openapi_spec import openapi_document
from server.api.schemas import OPENAPI_DOCUMENT
from server.errors import NotFound

JAVASCRIPT = "text/javascript"
HTML = "text/html"


@describe(summary="This API's OpenAPI 3.1 document", answers={200: OPENAPI_DOCUMENT})
@typed_errors
async def openapi_json(request: Request) -> Response:
    """Generated from the route descriptions in server/api, once per process."""
    state = request.app.state
    document: dict[str, Any] | None = getattr(state, "openapi", None)
    if document is None:
        document = openapi_document(request.app.routes)
        state.openapi = document
    return JSONResponse(document)


def _file(path: Path, media_type: str, headers: dict[str, str] | None = None) -> Response:
    if not path.is_file():
        raise NotFound(f"{path.name} is not installed with this server")
    return FileResponse(path, media_type=media_type, headers=headers)


def docs_page(page: Path) -> Handler:
    """The handler of ``GET /docs``: ``page``, which renders ``/openapi.json``."""

    @describe(
        summary="The API's reference, rendered from /openapi.json",
        answers={200: text_answer(HTML, "An HTML page")},
        errors=[NotFound],
    )
    @typed_errors
    async def docs(request: Request) -> Response:
        return _file(page, HTML)

    return docs


def shared_script(script: Path) -> Handler:
    """The handler serving ``script`` to pages of every origin."""

    @describe(
        summary="The browser client library, an ES module (README, giftstream.js)",
        answers={200: text_answer(JAVASCRIPT, "JavaScript, with Access-Control-Allow-Origin: *")},
        errors=[NotFound],
    )
    @typed_errors
    async def library(request: Request) -> Response:
        # A module script from another origin runs only when its answer allows
        # that origin (CORS); the library holds no secret and takes none.
        return _file(script, JAVASCRIPT, {"access-control-allow-origin": "*"})

    return library
