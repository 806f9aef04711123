"""Request bodies read against a cap, and JSON parsed with a depth bound.

Starlette's ``request.body()`` reads a body whole before anyone can look at
its size, so one 400 MiB upload is 400 MiB of the process. Here a declared
``Content-Length`` over the cap is refused before a byte of the body is
read, and a body without one (chunked) is cut off the moment it crosses
the cap: what the process holds for a request never passes the cap.

Python's JSON parser recurses once per nesting level, so ``[[[[...]]]]``
a few thousand deep raises ``RecursionError``; and a document nested far
deeper than any request of ours needs costs every walk over it. Both are a
typed ``bad_request`` here.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from starlette.requests import ClientDisconnect, Request

from server.core.nesting import depth
from server.errors import BadRequest, BodyTooLarge
from server.ops.socket_faults import OncePerSecond, SocketFaults

_gone = OncePerSecond(logging.getLogger(__name__), "clients gone before their body was complete")

# No request body of the API nests deeper than 2; 32 leaves room for a
# provider's callback and stays far from the parser's recursion limit.
MAX_JSON_DEPTH = 32


async def read_body(request: Request, limit: int) -> bytes:
    """The body, at most ``limit`` bytes; ``body_too_large`` (413) past it."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise BadRequest("Content-Length is not a whole number")
        if int(declared) > limit:
            raise BodyTooLarge(f"body of {int(declared):,} bytes is over the {limit:,}-byte cap")
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise BodyTooLarge(f"body is over the {limit:,}-byte cap")
            chunks.append(chunk)
    except ClientDisconnect as exc:
        # Gone mid-body (or cut off by the request's deadline): nobody reads
        # the answer, and it is no fault of ours to log with a traceback.
        SocketFaults.gone_mid_body += 1
        _gone()
        raise BadRequest("the client went away before its body was complete") from exc
    return b"".join(chunks)


def parse_json(raw: bytes) -> Any:
    """A JSON document nested at most ``MAX_JSON_DEPTH`` deep, or ``bad_request``."""
    try:
        document = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest("body is not JSON") from exc
    except RecursionError as exc:
        raise BadRequest(f"body nests deeper than {MAX_JSON_DEPTH} levels") from exc
    if depth(document) > MAX_JSON_DEPTH:
        raise BadRequest(f"body nests deeper than {MAX_JSON_DEPTH} levels")
    return document
