"""uvicorn's h11 HTTP protocol with a deadline for each request head.

uvicorn (0.54, with h11 or httptools alike) arms no timer on a connection
until it has answered a first request: its ``timeout_keep_alive`` starts only
after a response. A client that connects and sends nothing, or half a
request head, or one byte now and then, holds a socket, a file descriptor
and a protocol object for as long as it likes, and thousands of them cost
the process its memory and its file descriptors. Here each request head
(the request line and headers, which carry a room socket's whole WebSocket
handshake) must be complete within ``head_timeout`` seconds of the
connection being accepted, or of the first byte of a later request on a
kept-alive connection; otherwise the connection is closed without an answer.
Bytes trickled in do not extend the deadline. Once the head has arrived,
the deadline is off: bodies, responses and WebSocket sessions keep their
own limits (request body caps, uvicorn's keep-alive timeout, WebSocket
pings).

``giftstream serve`` passes ``with_head_timeout(settings.handshake_timeout_seconds)``
as uvicorn's ``http`` protocol class.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from server.tuning.transports import break_transport_cycle

logger = logging.getLogger(__name__)


class HeadDeadlineProtocol(H11Protocol):
    """Closes a connection whose request head is not complete in time."""

    # Overridden per server by ``with_head_timeout``.
    head_timeout: float = 10.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_timer: asyncio.TimerHandle | None = None
        self._upgraded = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._watch_head()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._watch_head()

    def handle_websocket_upgrade(self, event: h11.Request) -> None:
        # The WebSocket protocol owns the transport from here on.
        self._upgraded = True
        self._stop_head_timer()
        super().handle_websocket_upgrade(event)

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_head_timer()
        transport = self.transport
        super().connection_lost(exc)
        break_transport_cycle(transport)

    def _watch_head(self) -> None:
        # h11 is IDLE on the client's side until a whole request head is parsed.
        waiting = (
            not self._upgraded
            and self.conn.their_state is h11.IDLE
            and not self.transport.is_closing()
        )
        if waiting and self._head_timer is None:
            self._head_timer = self.loop.call_later(self.head_timeout, self._head_too_slow)
        elif not waiting:
            self._stop_head_timer()

    def _stop_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_too_slow(self) -> None:
        self._head_timer = None
        if not self.transport.is_closing():
            logger.debug("request head not complete in %g s: closing", self.head_timeout)
            self.transport.close()


def with_head_timeout(seconds: float) -> type[HeadDeadlineProtocol]:
    """The protocol class for uvicorn's ``http`` setting, with this deadline."""
    return type("HeadDeadlineProtocol", (HeadDeadlineProtocol,), {"head_timeout": seconds})
