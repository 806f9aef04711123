"""One room, kept connected until ``close()``.

After a drop the room reconnects with a capped, jittered exponential backoff
and resumes from the last ``seq`` it delivered, so every room event reaches
the handlers once, in order. A gift that got no answer is sent again, with
the same request id, after the next welcome: the server answers a repeat
with the first outcome, so nothing is paid twice.

The websockets library answers and sends keepalive pings on its own, and
closes a socket whose peer stopped answering: that is how a silently dead
connection is noticed and replaced.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from dataclasses import dataclass, replace
from types import TracebackType
from typing import Any, Literal

from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from server.client.backoff import Backoff
from server.client.connection import messages_of, open_room_socket
from server.client.errors import (
    ConnectionFailed,
    GiftstreamError,
    closed_error,
    too_large_error,
)
from server.client.frames import (
    SUBPROTOCOL,
    CodecName,
    Message,
    decode,
    encode,
    frame_bytes,
    gift_frame,
    is_request_id,
    new_request_id,
    room_url,
)
from server.client.listeners import Handlers, MessageStreams
from server.client.sends import PendingGift, PendingSends
from server.core.protocol import CloseCode

ConnectionState = Literal["connecting", "open", "reconnecting", "closed"]
TokenSource = str | Callable[[], Awaitable[str | None]] | None
MessageHandler = Callable[[Message], object]

# Subscribe with this instead of a type for every room message.
ANY_MESSAGE = "*"
# Before the first welcome says otherwise (welcome.limits.max_frame_bytes).
DEFAULT_MAX_FRAME_BYTES = 4096
DEFAULT_OPEN_TIMEOUT = 10.0
# A closing socket's handshake should not hold up a reconnect or an exit.
CLOSE_TIMEOUT = 2.0
# Answers, frames and the client's own notions: never room messages, even
# inside an `events` frame.
NOT_ROOM_MESSAGES = frozenset({"welcome", "ack", "error", "pong", "events"})
CLOSE_REASONS = {
    CloseCode.INTERNAL_ERROR: "server error",
    CloseCode.SERVICE_RESTART: "the server is restarting",
    CloseCode.SLOW_CONSUMER: "fell too far behind the room",
    CloseCode.TOKEN_REVOKED: "the token was revoked",
    1006: "the connection was lost",
}


@dataclass(frozen=True)
class Position:
    """Where a client is in a room's sequence: enough to resume in a new process."""

    seq: int = 0
    epoch: str | None = None


@dataclass(frozen=True)
class StateDetail:
    reason: str | None = None
    close_code: int | None = None
    # Seconds until the next attempt, while reconnecting.
    retry_in: float | None = None
    # Connections lost or refused in a row.
    failures: int = 0


@dataclass(frozen=True)
class WelcomeInfo:
    """What the client adds to each welcome."""

    # Not the room's first welcome.
    reconnected: bool
    # Events went by that will not be delivered (the room's history no longer
    # holds them, or its sequence began again): what was shown may be stale.
    missed: bool


class GiftstreamRoom:
    """A room socket that reconnects and resumes until ``close()``.

    ``server`` is the server's base URL (http, https, ws or wss). Without a
    ``token`` the room is watch-only; ``key``, the room's overlay key, stands
    in for a token. ``token`` may be a coroutine function, called before each
    connection, so that a fresh token can replace an expired one.
    """

    def __init__(
        self,
        server: str,
        room: str,
        *,
        token: TokenSource = None,
        key: str | None = None,
        codec: CodecName = "msgpack",
        resume_from: Position | None = None,
        backoff: Backoff | None = None,
        open_timeout: float = DEFAULT_OPEN_TIMEOUT,
    ) -> None:
        if codec not in SUBPROTOCOL:
            raise ValueError('codec must be "msgpack" or "json"')
        # The server would read the key and ignore the token: one of them, then.
        if key is not None and token:
            raise ValueError("give a token or a key, not both")
        room_url(server, room, {})  # a bad server URL fails here, not on connecting
        self.server = server
        self.room = room
        self.codec: CodecName = codec
        self._token = token
        self._key = key
        self._backoff = backoff or Backoff()
        self._open_timeout = open_timeout

        self._state: ConnectionState = "connecting"
        self._socket: ClientConnection | None = None
        # Whether the current socket has had its welcome: sends wait for it.
        self._welcomed = False
        self._welcome: Message | None = None
        self._first_welcome: asyncio.Future[Message] | None = None
        self._failures = 0
        self._runner: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[None]] = set()

        start = resume_from or Position()
        self._last_seq = start.seq
        self._epoch = start.epoch
        self._asked_since: int | None = None

        self._sends = PendingSends(resend=self._write_later)

        self._message_handlers: dict[str, Handlers[MessageHandler]] = {}
        self._frame_handlers: Handlers[MessageHandler] = Handlers()
        self._welcome_handlers: Handlers[Callable[[Message, WelcomeInfo], object]] = Handlers()
        self._state_handlers: Handlers[Callable[[ConnectionState, StateDetail], object]] = (
            Handlers()
        )
        self._error_handlers: Handlers[Callable[[GiftstreamError], object]] = Handlers()
        self._streams = MessageStreams()

    # ------------------------------------------------------------ what it knows

    @property
    def state(self) -> ConnectionState:
        """ "connecting" (the first time), "open", "reconnecting" or "closed" (for good)."""
        return self._state

    @property
    def welcome(self) -> Message | None:
        """The latest welcome: who the client is (``you``), its balance then, the limits."""
        return self._welcome

    @property
    def position(self) -> Position:
        """The last room event delivered; keep it to resume elsewhere (``resume_from``)."""
        return Position(self._last_seq, self._epoch)

    @property
    def connection(self) -> ClientConnection | None:
        """The socket in use now, if any: for diagnostics, not for sending."""
        return self._socket

    # ------------------------------------------------------------ handlers

    def on(self, kind: str, handler: MessageHandler) -> Callable[[], None]:
        """Calls ``handler`` for each room message of type ``kind`` (``gift``,
        ``combo_end``, ``stream_started``, ``goal``, ``viewers``...), or of any type
        for ``ANY_MESSAGE``. Returns a function that stops it."""
        return self._message_handlers.setdefault(kind, Handlers()).add(handler)

    def on_frame(self, handler: MessageHandler) -> Callable[[], None]:
        """Every frame as the server sent it (``events`` batches whole), welcomes,
        answers and pongs included: for logging and debugging."""
        return self._frame_handlers.add(handler)

    def on_welcome(self, handler: Callable[[Message, WelcomeInfo], object]) -> Callable[[], None]:
        return self._welcome_handlers.add(handler)

    def on_state(
        self, handler: Callable[[ConnectionState, StateDetail], object]
    ) -> Callable[[], None]:
        return self._state_handlers.add(handler)

    def on_error(self, handler: Callable[[GiftstreamError], object]) -> Callable[[], None]:
        """Error frames that answer no send of this client (a frame the server
        could not read, say)."""
        return self._error_handlers.add(handler)

    def messages(self) -> AsyncIterator[Message]:
        """Every room message from this call on, until the room is closed.
        Subscribed at once, so that nothing between this call and the first
        read is lost."""
        return self._streams.open(
            lambda handler: self.on(ANY_MESSAGE, handler), ended=self._state == "closed"
        )

    # ------------------------------------------------------------ opening and closing

    async def start(self) -> Message:
        """Connects and returns the first welcome. Raises ``HandshakeRefused`` or
        ``ConnectionFailed`` when that first connection fails: later drops are
        retried, but a wrong URL or token should be told at once."""
        if self._runner is not None:
            raise RuntimeError("the room is already started")
        self._first_welcome = asyncio.get_running_loop().create_future()
        socket = await self._open()
        self._runner = asyncio.create_task(self._keep_connected(socket))
        try:
            return await asyncio.wait_for(asyncio.shield(self._first_welcome), self._open_timeout)
        except TimeoutError:
            await self.close()
            raise ConnectionFailed(f"no welcome within {self._open_timeout:g} s") from None

    async def close(self) -> None:
        """Closes the room for good: no reconnects; unanswered sends fail with
        ``closed`` (``outcome_unknown`` when they went out)."""
        if self._state == "closed":
            return
        socket = self._socket
        self._set_state("closed", StateDetail(reason="closed by the client"))
        for task in [self._runner, *self._background]:
            if task is not None and task is not asyncio.current_task():
                task.cancel()
        if self._runner is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._runner
        if socket is not None:
            await socket.close()
        for pending in self._sends.waiting():
            self._sends.fail(pending, closed_error(pending.request_id, pending.written))
        self._streams.end_all()
        if self._first_welcome is not None and not self._first_welcome.done():
            self._first_welcome.cancel()

    async def __aenter__(self) -> GiftstreamRoom:
        await self.start()
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    # ------------------------------------------------------------ sending

    async def send_gift(
        self, gift: str, count: int = 1, *, confirm: bool = False, request_id: str | None = None
    ) -> Message:
        """Sends ``count`` of ``gift`` and returns the server's ``ack`` once it is
        paid for; raises ``GiftstreamError`` when refused. While the room is not
        open the send waits. Temporary refusals are retried, and a send whose
        answer was lost in a drop goes again after the reconnect, always with
        the same request id. Pass the ``request_id`` of an earlier send to
        retry it without risk of paying twice."""
        request_id = request_id or new_request_id()
        if not is_request_id(request_id):
            raise ValueError("request_id must be 1-64 characters of A-Z a-z 0-9 _ . : -")
        pending = self._sends.get(request_id)
        if pending is None:
            if self._state == "closed":
                raise closed_error(request_id, written=False)
            pending = self._sends.add(request_id, gift_frame(request_id, gift, count, confirm))
            await self._write(pending)
        # Shielded: a caller that stops waiting leaves the send to finish.
        return await asyncio.shield(pending.answer)

    async def _write(self, pending: PendingGift) -> None:
        pending.stop_retry_timer()
        socket = self._socket
        # Not open, or answered meanwhile: the next welcome sends what still waits.
        if not self._welcomed or socket is None or pending.answer.done():
            return
        data = encode(pending.frame, self.codec)
        limit = self._limit("max_frame_bytes", DEFAULT_MAX_FRAME_BYTES)
        # The server would close the socket on it, and it would go again after
        # each reconnect: refused here instead.
        if frame_bytes(data) > limit:
            self._sends.fail(pending, too_large_error(pending.request_id, limit))
            return
        # Marked first: a send cut short may still have reached the server.
        pending.written = True
        with contextlib.suppress(ConnectionClosed):
            await socket.send(data)

    def _write_later(self, pending: PendingGift) -> None:
        self._spawn(self._write(pending))

    def _limit(self, name: str, default: int) -> int:
        limits = (self._welcome or {}).get("limits")
        value = limits.get(name) if isinstance(limits, dict) else None
        return value if isinstance(value, int) and not isinstance(value, bool) else default

    # ------------------------------------------------------------ connecting

    async def _open(self) -> ClientConnection:
        return await open_room_socket(
            self.server,
            self.room,
            await self._query(),
            SUBPROTOCOL[self.codec],
            open_timeout=self._open_timeout,
            close_timeout=CLOSE_TIMEOUT,
            compression=None,
        )

    async def _query(self) -> dict[str, str]:
        query: dict[str, str] = {}
        if self._key is not None:
            query["key"] = self._key
        else:
            token = self._token
            if callable(token):
                try:
                    token = await token()
                except Exception as exc:
                    raise ConnectionFailed(f"no token: {exc}") from exc
            if token:
                query["token"] = token
        # Resume from the last event delivered, once the client has a place in
        # the room's sequence (since=0 too: a room with no events yet).
        has_place = self._epoch is not None or self._last_seq > 0
        self._asked_since = self._last_seq if has_place else None
        if self._asked_since is not None:
            query["since"] = str(self._asked_since)
            if self._epoch is not None:
                query["epoch"] = self._epoch
        return query

    async def _keep_connected(self, socket: ClientConnection) -> None:
        while True:
            detail = await self._serve(socket)
            while True:
                if self._state == "closed":
                    return
                retry_in = self._backoff.delay(self._failures)
                self._failures += 1
                self._set_state(
                    "reconnecting", replace(detail, retry_in=retry_in, failures=self._failures)
                )
                await asyncio.sleep(retry_in)
                try:
                    socket = await self._open()
                    break
                except GiftstreamError as refused:
                    detail = StateDetail(reason=str(refused))

    async def _serve(self, socket: ClientConnection) -> StateDetail:
        """Reads ``socket`` until it ends; why it ended."""
        self._socket = socket
        self._welcomed = False
        try:
            async for data in socket:
                self._receive(data)
        except ConnectionClosed:
            pass
        finally:
            self._socket = None
            self._welcomed = False
        code = socket.close_code
        reason = socket.close_reason or CLOSE_REASONS.get(code or 1006, f"closed ({code})")
        return StateDetail(reason=reason, close_code=code)

    def _set_state(self, state: ConnectionState, detail: StateDetail) -> None:
        self._state = state
        self._state_handlers.emit(state, detail)

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # ------------------------------------------------------------ receiving

    def _receive(self, data: bytes | str) -> None:
        message = decode(data)
        if message is None:
            return  # not a frame this version can read: ignored, like an unknown type
        self._frame_handlers.emit(message)
        kind = message.get("type")
        if kind == "welcome":
            self._on_welcome(message)
        elif kind == "ack":
            self._sends.on_ack(message)
        elif kind == "error":
            error = GiftstreamError(message)
            if not self._sends.on_error(error):
                self._error_handlers.emit(error)
        elif kind != "pong":
            # An events frame's elements each as if it had come in a frame of
            # its own, in order.
            for room_message in messages_of(message):
                self._on_room_message(room_message)

    def _on_welcome(self, welcome: Message) -> None:
        reconnected = self._welcome is not None
        resume = welcome.get("resume")
        status = resume.get("status") if isinstance(resume, dict) else None
        # The missed events follow this welcome only when a resume was asked
        # for and granted; otherwise carry on from the room's present.
        resumed = self._asked_since is not None and status == "ok"
        last_seq = welcome.get("last_seq")
        last_seq = last_seq if isinstance(last_seq, int) else 0
        missed = not resumed and (status == "resync" or (reconnected and last_seq > self._last_seq))
        if not resumed:
            self._last_seq = last_seq
        epoch = welcome.get("epoch")
        self._epoch = epoch if isinstance(epoch, str) else None
        self._welcome = welcome
        self._welcomed = True
        self._failures = 0
        self._set_state("open", StateDetail())
        if self._first_welcome is not None and not self._first_welcome.done():
            self._first_welcome.set_result(welcome)
        self._welcome_handlers.emit(welcome, WelcomeInfo(reconnected, missed))
        for pending in self._sends.waiting():
            self._spawn(self._write(pending))

    def _on_room_message(self, message: Message) -> None:
        kind = message.get("type")
        if not isinstance(kind, str) or kind in NOT_ROOM_MESSAGES:
            return
        seq = message.get("seq")
        # A positive seq places an event in the room's sequence: each is
        # delivered once, in order (seq 0, a goal or a test alert, is no place).
        if isinstance(seq, int) and not isinstance(seq, bool) and seq > 0:
            if seq <= self._last_seq:
                return
            self._last_seq = seq
        if kind == "gift":
            message["own"] = self._is_own_gift(message)
        for key in (kind, ANY_MESSAGE):
            handlers = self._message_handlers.get(key)
            if handlers is not None:
                handlers.emit(message)

    def _is_own_gift(self, event: Message) -> bool:
        # Request ids are each sender's own: a match counts only from our user.
        you = (self._welcome or {}).get("you")
        user = you.get("user") if isinstance(you, dict) else None
        return (
            user is not None
            and event.get("sender") == user
            and event.get("request_id") in self._sends.sent_ids
        )


# ``connect(server, room, token=...)``, as in giftstream.js: a room to open
# with ``async with``, or with ``await room.start()``.
connect = GiftstreamRoom
