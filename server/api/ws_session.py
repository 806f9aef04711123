"""One viewer's WebSocket in one room, from handshake to goodbye.

Before the socket opens: the room id, the Origin and the token are checked,
and a bad one is refused with an HTTP error (the browser never gets a
socket). After: the viewer is welcomed, joins the room's fan-out, and each
frame it sends is decoded, rate-limited and handled. A bad frame gets a
typed ``error`` and changes nothing; nothing a client sends ends the process.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

from starlette.responses import JSONResponse
from starlette.websockets import WebSocket

from server.api.hosts import origin_allowed
from server.api.openapi import describe
from server.api.schemas import ROOM
from server.core.auth import ANONYMOUS, Identity, Role
from server.core.protocol import (
    ROOM_ID,
    SUBPROTOCOLS,
    CloseCode,
    Codec,
    Ping,
    Pong,
    SendGift,
    Welcome,
    choose_codec,
    decode,
    error_message,
    parse_client_message,
    request_id_of,
    to_wire,
)
from server.core.ratelimit import TokenBucket
from server.errors import AuthError, GiftError, RateLimited
from server.rooms.hub import LocalRoom, Member
from server.rooms.room_log import RoomView
from server.rooms.ws_protocol import WRITER_EXTENSION, FrameWriter
from server.services import Services

log = logging.getLogger(__name__)
# Gifts one socket may have in flight before the server stops reading it.
MAX_IN_FLIGHT = 32


async def deny(
    websocket: WebSocket,
    status: int,
    code: str,
    message: str,
    details: dict[str, object] | None = None,
) -> None:
    body = {"code": code, "message": message} | (details or {})
    await websocket.send_denial_response(JSONResponse(body, status_code=status))


async def admit(websocket: WebSocket, services: Services) -> Identity | None:
    """The caller's identity, or None after refusing the handshake."""
    settings = services.settings
    room = websocket.path_params["room_id"]
    if not ROOM_ID.match(room):
        await deny(websocket, 404, "unknown_room", "room ids are 1-64 of A-Z a-z 0-9 _ -")
        return None
    origin = websocket.headers.get("origin")
    if not origin_allowed(origin, settings.allowed_hosts, settings.allowed_origins):
        await deny(websocket, 403, "forbidden_origin", "this Origin may not open room sockets")
        return None
    offered = list(websocket.scope.get("subprotocols", []))
    if offered and not set(offered) & set(SUBPROTOCOLS):
        await deny(websocket, 400, "unsupported_subprotocol", f"speak one of {list(SUBPROTOCOLS)}")
        return None
    overlay_key = websocket.query_params.get("key")
    if overlay_key is not None:
        if await services.overlay_keys.opens(room, overlay_key):
            return Identity(user=room, role=Role.OVERLAY)
        await deny(websocket, 401, "unauthorized", "this overlay key does not open this room")
        return None
    token = websocket.query_params.get("token")
    if token is None:
        return ANONYMOUS
    try:
        identity = await services.authenticator.identify(token, time.time())
    except AuthError as exc:
        await deny(websocket, 401, exc.code, exc.message, exc.details)
        return None
    user = counted_user(identity)
    if user is not None:
        # Counted here, atomically with the check: released when the socket ends.
        held = await services.user_sockets.admit(user, settings.max_sockets_per_user)
        if held is not None:
            await deny(
                websocket,
                429,
                "too_many_sockets",
                f"{held} room sockets open for this user; close one first",
            )
            return None
    return identity


def counted_user(identity: Identity) -> str | None:
    """The user whose room sockets this one counts against, if any."""
    if identity.user is None or identity.role is Role.OVERLAY:
        return None
    return identity.user


@dataclass(frozen=True, slots=True)
class ResumeRequest:
    """Where a reconnecting client left off: ``since`` and ``epoch`` in its URL."""

    since: int | None = None
    epoch: str | None = None


def resume_request(websocket: WebSocket) -> ResumeRequest | None:
    """The query's resume point; None when it is malformed."""
    since = websocket.query_params.get("since")
    epoch = websocket.query_params.get("epoch")
    if since is None:
        return ResumeRequest()
    if not (since.isascii() and since.isdigit() and len(since) <= 15):
        return None
    if epoch is not None and not (epoch.isascii() and epoch.isdigit() and len(epoch) <= 32):
        return None
    return ResumeRequest(int(since), epoch)


def resume_outcome(
    request: ResumeRequest, view: RoomView
) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """The events to replay and the welcome's ``resume`` field."""
    if request.since is None:
        return [], None
    if view.status == "ahead" or (request.epoch is not None and request.epoch != view.epoch):
        return [], {"status": "resync", "reason": "epoch_changed"}
    if view.status != "ok":
        return [], {"status": "resync", "reason": "too_far_behind"}
    return view.missed, {"status": "ok", "replayed": len(view.missed)}


class RoomSession:
    __slots__ = (
        "_counted",
        "_in_flight",
        "_tasks",
        "bucket",
        "member",
        "resume",
        "room",
        "services",
        "websocket",
    )

    def __init__(
        self,
        services: Services,
        websocket: WebSocket,
        identity: Identity,
        writer: FrameWriter,
        resume: ResumeRequest,
    ) -> None:
        settings = services.settings
        self.services = services
        self.resume = resume
        self.websocket = websocket
        self.room: str = websocket.path_params["room_id"]
        codec = choose_codec(list(websocket.scope.get("subprotocols", [])))
        self.member = Member(writer=writer, codec=codec, identity=identity)
        self.bucket = TokenBucket(settings.gift_rate_per_second, settings.gift_rate_burst)
        self._in_flight = asyncio.Semaphore(MAX_IN_FLIGHT)
        self._tasks: set[asyncio.Task[None]] = set()
        self._counted = False

    @property
    def identity(self) -> Identity:
        return self.member.identity

    async def run(self) -> None:
        offered = self.websocket.scope.get("subprotocols", [])
        await self.websocket.accept(subprotocol=self.member.codec if offered else None)
        # The handshake's headers have been read (admit's Origin check), and a
        # room socket may stay open for hours: let their 1.2 KB go.
        self.websocket.scope["headers"].clear()
        metrics = self.services.metrics.connections.labels(role=str(self.identity.role))
        metrics.inc()
        try:
            room = await self.services.hub.join(self.room, self.member)
            await self._count_in(+1)
            await self._welcome(room)
            await self._read_loop()
        except Exception as exc:  # the socket ends; the process does not
            log.warning("room session ended by error", extra={"error": repr(exc)})
            self.member.writer.close(CloseCode.INTERNAL_ERROR, "server error; reconnect")
        finally:
            metrics.dec()
            await self._goodbye()

    async def _count_in(self, delta: int) -> None:
        """This socket in the room's viewer count (its user's count is the endpoint's)."""
        if delta < 0 and not self._counted:
            return
        self._counted = delta > 0
        await self.services.presence.change(self.room, delta)

    async def _welcome(self, room: LocalRoom) -> None:
        s = self.services
        balance = None
        if self.identity.user is not None and self.identity.role is not Role.OVERLAY:
            balance = (await s.wallets.balances(self.identity.user))["coins"]
        view = await s.room_log.view(self.room, self.resume.since)
        # Read after the view, and afresh: a stream that starts or ends after
        # this read has its event numbered after view.last_seq, which this
        # socket then hears; one that changed before is in what is read here.
        live = await s.streams.current(self.room)
        replay, resume = resume_outcome(self.resume, view)
        welcome = Welcome(
            room=self.room,
            you={
                "user": self.identity.user,
                "role": str(self.identity.role),
                "can_send": self.identity.can_send,
            },
            balance=balance,
            viewers=await s.presence.count(self.room),
            last_seq=view.last_seq,
            epoch=view.epoch,
            resume=resume,
            live=live is not None,
            stream_id=live.id if live is not None else None,
            limits={
                "max_count": s.settings.max_gift_count,
                "confirm_above_coins": s.settings.confirm_above_coins,
                "max_send_coins": s.settings.max_send_coins,
                "max_frame_bytes": s.settings.max_frame_bytes,
                "gift_rate_per_second": s.settings.gift_rate_per_second,
                "gift_rate_burst": s.settings.gift_rate_burst,
            },
        )
        room.admit(self.member, to_wire(welcome), replay, view.last_seq)

    async def _read_loop(self) -> None:
        while True:
            message = await self.websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            frame = message.get("bytes")
            await self._on_frame(frame if frame is not None else message.get("text", ""))

    async def _on_frame(self, frame: bytes | str) -> None:
        decoded: dict[str, Any] = {}
        try:
            # Decoded first so that a refusal can quote the request id; every
            # frame, good or bad, spends a token.
            allowed = self.bucket.allow(time.monotonic())
            decoded = decode(frame)
            if not allowed:
                raise RateLimited("too many requests on this socket; slow down")
            request = parse_client_message(decoded, self.services.settings.max_gift_count)
        except GiftError as exc:
            self._reply_error(exc, request_id_of(decoded))
            return
        except Exception as exc:  # a bug of ours must not end the socket
            log.exception("frame could not be handled")
            self._reply_error(exc, None)
            return
        if isinstance(request, Ping):
            self.member.send_message(to_wire(Pong(id=request.id)))
            return
        await self._in_flight.acquire()
        task = asyncio.create_task(self._send_gift(request, time.perf_counter()))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send_gift(self, request: SendGift, received_at: float) -> None:
        try:
            ack = await self.services.gifting.send(self.identity, self.room, request)
            self.member.send_message(to_wire(ack))
            self.services.metrics.ack_seconds.observe(time.perf_counter() - received_at)
        except Exception as exc:  # every failure becomes an error frame
            if not isinstance(exc, GiftError):
                log.exception("gift failed unexpectedly")
            self._reply_error(exc, request.id)
        finally:
            self._in_flight.release()

    def _reply_error(self, exc: Exception, request_id: str | None) -> None:
        error = error_message(exc, request_id)
        self.services.metrics.errors.labels(code=error.code).inc()
        # What the error says besides its code (a budget's remaining, a
        # send's coins), as the HTTP problem document carries it.
        details = exc.details if isinstance(exc, GiftError) else {}
        self.member.send_message(to_wire(error) | details)

    async def _goodbye(self) -> None:
        if self.member.writer.dropped_slow:
            self.services.metrics.slow_consumers.inc()
        # Gifts in flight finish (their money has moved or not, atomically).
        # The sender's combos outlive the socket: they end when their window
        # passes (ComboEnds), and a new socket of theirs continues them.
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.services.hub.leave(self.room, self.member)
        try:
            await self._count_in(-1)
        except GiftError:
            log.warning("presence not updated on leave")


@describe(
    summary="A room's gifts and live events, over a WebSocket",
    answers={},
    query={
        "token": {"type": "string", "description": "a platform token; none: watch-only"},
        "key": {"type": "string", "description": "the room's overlay key (opens it as an overlay)"},
        "since": {"type": "string", "description": "resuming: the last seq seen (digits)"},
        "epoch": {"type": "string", "description": "resuming: the epoch of that seq (digits)"},
    },
    path={"room_id": ROOM},
)
async def room_endpoint(websocket: WebSocket) -> None:
    """The handshake's checks (refused with an HTTP answer), then the room session:
    docs/protocol.md, from "Connecting to a room"."""
    services: Services = websocket.app.state.services
    writer = websocket.scope.get("extensions", {}).get(WRITER_EXTENSION)
    if not isinstance(writer, FrameWriter):
        log.error("the server must run with giftstream's WebSocket protocol (giftstream serve)")
        await deny(websocket, 500, "misconfigured", "server misconfigured")
        return
    resume = resume_request(websocket)
    if resume is None:
        await deny(websocket, 400, "bad_field", "since must be a seq (digits), epoch digits")
        return
    try:
        identity = await admit(websocket, services)
    except GiftError as exc:  # Redis unreachable while checking the caller
        await deny(websocket, 503, exc.code, exc.message)
        return
    if identity is None:
        return
    writer.limit_bytes = services.settings.outgoing_buffer_bytes
    try:
        await RoomSession(services, websocket, identity, writer, resume).run()
    finally:
        await release_user_socket(services, identity)


async def release_user_socket(services: Services, identity: Identity) -> None:
    """The socket ``admit`` counted for its user is closed: uncount it."""
    user = counted_user(identity)
    if user is None:
        return
    try:
        await services.user_sockets.change(user, -1)
    except GiftError:
        # The refresh writes the count again once Redis is back.
        log.warning("a user's socket count not updated on leave")


__all__ = ["Codec", "room_endpoint"]
