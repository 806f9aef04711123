"""Which hosts this server answers for, and which pages may open its sockets.

A DNS-rebinding page points a name it controls at 127.0.0.1: the browser
then sends that name as ``Host`` and its own origin as ``Origin``, both
chosen by the attacker, so judging ``Origin`` against ``Host`` lets it in.
Here both are judged against the operator's list instead
(``GIFTSTREAM_ALLOWED_HOSTS``): a request whose ``Host`` is not on it gets
400 ``bad_host`` before anything else reads it, and a room socket opens from
a page whose origin's host is on it, or whose origin is listed whole in
``GIFTSTREAM_ALLOWED_ORIGINS``.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.responses import JSONResponse
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket

from server.errors import BadHost

# Probes and scrapers name a machine by its address, which no list may know:
# these answer for any host and hold nothing a page could misuse.
ANY_HOST_PATHS = frozenset({"/livez", "/healthz", "/readyz", "/metrics"})


def host_name(header: str | None) -> str | None:
    """The name in a ``Host`` header, lowercased, without its port; None if malformed."""
    if not header:
        return None
    if header.startswith("["):  # an IPv6 literal: [::1]:8000
        name, bracket, _ = header[1:].partition("]")
        return name.lower() if bracket else None
    name = header.rsplit(":", 1)[0] if header.count(":") == 1 else header
    return name.lower() or None


def host_allowed(name: str | None, allowed: tuple[str, ...]) -> bool:
    """Whether ``name`` is on the list: exact, ``*.example.com`` for its subdomains, or ``*``."""
    if name is None:
        return False
    for entry in allowed:
        entry = entry.lower()
        if entry == "*" or entry == name:
            return True
        if entry.startswith("*.") and name.endswith(entry[1:]):
            return True
    return False


def origin_allowed(
    origin: str | None, allowed_hosts: tuple[str, ...], allowed_origins: tuple[str, ...]
) -> bool:
    """Non-browser clients send no Origin; a browser page's origin must be listed."""
    if origin is None:
        return True
    if origin in allowed_origins:
        return True
    parts = urlsplit(origin)
    if parts.scheme not in ("http", "https"):
        return False
    return host_allowed(parts.hostname, allowed_hosts)


def request_host(scope: Scope) -> str | None:
    for name, value in scope.get("headers", []):
        if name == b"host":
            return str(value.decode("latin-1"))
    return None


async def refuse_host(scope: Scope, receive: Receive, send: Send) -> None:
    """400 ``bad_host``, as a problem document; to a WebSocket, as its handshake's answer."""
    error = BadHost("this server does not answer for that Host; see GIFTSTREAM_ALLOWED_HOSTS")
    response = JSONResponse(
        {
            "code": error.code,
            "title": "BadHost",
            "status": 400,
            "detail": error.message,
            "temporary": error.temporary,
        },
        status_code=400,
        media_type="application/problem+json",
    )
    if scope["type"] == "websocket":
        await WebSocket(scope, receive, send).send_denial_response(response)
    else:
        await response(scope, receive, send)
