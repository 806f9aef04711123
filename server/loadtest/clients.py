"""Room sockets: a viewer (or overlay) that counts what it is sent, and a sender.

Every socket reads all the time, so the server never sees the load
generator as a slow consumer. Times are this process's monotonic clock:
a sender's ack latency and send-to-delivery latency (its request until the
room event of that gift reaches its own socket) need no clock agreement
with the server.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, field

from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from server.client.connection import open_room_socket
from server.client.errors import ConnectionFailed, HandshakeRefused
from server.client.frames import Message, decode, encode, gift_frame
from server.loadtest.config import LoadConfig
from server.loadtest.patterns import GiftMix, Retry, SenderPattern
from server.loadtest.population import SocketSpec
from server.loadtest.stats import Stats
from server.loadtest.wire import FrameCache, RoomFrame

# Events frames hold at most 200 events of ~300 bytes: far below this.
MAX_FRAME_BYTES = 4 * 1024 * 1024
OPEN_TIMEOUT_SECONDS = 60.0
CLOSE_TIMEOUT_SECONDS = 5.0
# Acknowledged requests a sender keeps, to retry some of them.
RETRY_POOL = 256


@dataclass
class Context:
    """What a process's sockets share."""

    config: LoadConfig
    mix: GiftMix
    stats: Stats = field(default_factory=Stats)
    cache: FrameCache = field(default_factory=FrameCache)
    # Start of the sending phase (seconds of the timeline count from it).
    t0: float = field(default_factory=time.monotonic)
    last_event: float = 0.0

    def second(self, now: float) -> int:
        return int(now - self.t0) if now >= self.t0 else -1


class RoomSocket:
    """A viewer or an overlay: counts events, checks seqs for gaps."""

    def __init__(self, spec: SocketSpec, ctx: Context) -> None:
        self.spec = spec
        self.ctx = ctx
        self.ws: ClientConnection | None = None
        self.baseline = 0  # welcome.last_seq
        self.last_seq = 0
        self.lost = 0
        self.events = 0
        self.gift_events = 0
        self.closing = False
        self.reader: asyncio.Task[None] | None = None

    async def open(self) -> bool:
        config = self.ctx.config
        errors = self.ctx.stats.errors
        try:
            self.ws = ws = await open_room_socket(
                config.ws_url_for(self.spec.index),
                self.spec.room,
                dict(self.spec.credential),
                config.subprotocol,
                compression="deflate" if config.deflate else None,
                proxy=None,
                ping_interval=None,
                max_size=MAX_FRAME_BYTES,
                open_timeout=OPEN_TIMEOUT_SECONDS,
                close_timeout=CLOSE_TIMEOUT_SECONDS,
            )
        except HandshakeRefused as refused:
            errors[f"handshake_{refused.status}_{refused.code}"] += 1
            return False
        except ConnectionFailed:
            errors["connect_failed"] += 1
            return False
        try:
            # Bounded too: a server that accepts the socket but never says welcome
            # must cost one failed socket, not a run that never starts.
            welcome = decode(await asyncio.wait_for(ws.recv(), OPEN_TIMEOUT_SECONDS))
        except (TimeoutError, ConnectionClosed) as exc:
            errors[f"connect_{type(exc).__name__}"] += 1
            ws.transport.abort()
            return False
        if welcome is None or welcome.get("type") != "welcome":
            errors["first_message_not_welcome"] += 1
            await ws.close()
            return False
        self.baseline = self.last_seq = int(welcome["last_seq"])
        self.on_welcome(welcome)
        self.reader = asyncio.create_task(self._read())
        return True

    def on_welcome(self, welcome: Message) -> None:
        pass

    async def _read(self) -> None:
        assert self.ws is not None
        try:
            async for frame in self.ws:
                self._on_frame(frame)
        except ConnectionClosed:
            pass
        if not self.closing:
            code = self.ws.close_code if self.ws.close_code is not None else 1006
            self.ctx.stats.errors[f"closed_{code}"] += 1
            self.ctx.stats.second(self.ctx.second(time.monotonic())).errors += 1

    def _on_frame(self, frame: bytes | str) -> None:
        now = time.monotonic()
        try:
            item = self.ctx.cache.read(frame)
        except (ValueError, TypeError, KeyError):
            self.ctx.stats.errors["undecodable_frame"] += 1
            return
        if isinstance(item, RoomFrame):
            self.on_room_frame(item, now)
        else:
            self.on_message(item, now)

    def on_room_frame(self, frame: RoomFrame, now: float) -> None:
        stats = self.ctx.stats
        stats.events += frame.count
        stats.frames += 1
        bucket = stats.second(self.ctx.second(now))
        bucket.events += frame.count
        bucket.frames += 1
        self.ctx.last_event = now
        self.events += frame.count
        if frame.contiguous and frame.seqs[0] == self.last_seq + 1:
            # The common case, in O(1): the next events, in order.
            self.last_seq = frame.seqs[-1]
            self.gift_events += len(frame.gifts)
            return
        for seq in frame.seqs:
            # seq <= last: sent right after the welcome, from before it; not new.
            if seq > self.last_seq:
                self.lost += seq - self.last_seq - 1
                self.last_seq = seq
        self.gift_events += sum(1 for _, seq in frame.gifts if seq > self.baseline)

    def on_message(self, message: Message, now: float) -> None:
        if message.get("type") == "error":
            self.ctx.stats.errors[str(message.get("code"))] += 1

    async def close(self) -> None:
        self.closing = True
        if self.ws is not None:
            await self.ws.close()
        if self.reader is not None:
            await self.reader

    def contribute(self) -> None:
        """Add this socket's view of its room to the room's stats."""
        room = self.ctx.stats.room(self.spec.room)
        room.sockets += 1
        room.lost_gaps += self.lost
        room.events += self.events
        room.max_seq = max(room.max_seq, self.last_seq)
        if self.spec.kind != "sender":
            room.last_seqs.append(self.last_seq)
            room.gift_events.append(self.gift_events)


@dataclass(slots=True)
class Pending:
    sent_at: float
    gift: str
    count: int
    coins: int


class Sender(RoomSocket):
    """A viewer who sends gifts, and measures its own acks and deliveries."""

    def __init__(self, spec: SocketSpec, ctx: Context) -> None:
        super().__init__(spec, ctx)
        seed = ctx.config.seed if ctx.config.seed is not None else random.randrange(1 << 30)
        self.rng = random.Random(seed * 1_000_003 + spec.index)
        self.pattern = SenderPattern(
            self.rng, ctx.mix, ctx.config.big_fraction, ctx.config.retry_fraction
        )
        self.balance = 0
        self.in_flight_coins = 0
        self.counter = 0
        self.pending: dict[str, Pending] = {}
        self.retries: dict[str, tuple[float, int]] = {}  # id -> (sent at, first seq)
        self.retry_pool: list[tuple[str, str, int, int]] = []  # id, gift, count, seq
        self.sent_at_of_seq: dict[int, float] = {}
        self.seen_at_of_seq: dict[int, float] = {}

    def on_welcome(self, welcome: Message) -> None:
        self.balance = int(welcome.get("balance") or 0)

    @property
    def unanswered(self) -> int:
        return len(self.pending) + len(self.retries)

    @property
    def settled(self) -> bool:
        """Every request answered, and every acked gift's event seen by this socket."""
        return not (self.pending or self.retries or self.sent_at_of_seq)

    async def send_loop(self, start: float, end: float, rate: float) -> None:
        """Send at ``rate`` gifts a second, Poisson, from ``start`` until ``end``."""
        assert self.ws is not None
        gifts = self.ctx.stats.gifts
        codec = self.ctx.config.codec
        next_at = start
        while True:
            next_at += self.pattern.interval(rate)
            if next_at >= end:
                return
            delay = next_at - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            spendable = self.balance - self.in_flight_coins
            action = self.pattern.next(spendable, bool(self.retry_pool))
            if action is None:
                gifts["skipped_no_coins"] += 1
                continue
            if isinstance(action, Retry):
                slot = self.rng.randrange(len(self.retry_pool))
                request_id, gift, count, seq = self.retry_pool.pop(slot)
                self.retries[request_id] = (time.monotonic(), seq)
                gifts["retries_sent"] += 1
            else:
                self.counter += 1
                request_id = f"{self.spec.user}-{self.counter}"
                gift, count = action.gift, action.count
                self.pending[request_id] = Pending(time.monotonic(), gift, count, action.coins)
                self.in_flight_coins += action.coins
                gifts["sent"] += 1
            # The load tool's senders confirm every send, big gifts included.
            message = gift_frame(request_id, gift, count, confirm=True)
            try:
                await self.ws.send(encode(message, codec))
            except ConnectionClosed:
                return

    def on_room_frame(self, frame: RoomFrame, now: float) -> None:
        super().on_room_frame(frame, now)
        me = self.spec.user
        for sender, seq in frame.gifts:
            if sender != me:
                continue
            sent_at = self.sent_at_of_seq.pop(seq, None)
            if sent_at is None:
                # The event overtook its ack: the ack will close the measure.
                self.seen_at_of_seq[seq] = now
            else:
                self._delivered(now - sent_at, now)

    def _delivered(self, latency: float, now: float) -> None:
        self.ctx.stats.delivery.add(latency)
        self.ctx.stats.second(self.ctx.second(now)).delivery.add(latency)

    def on_message(self, message: Message, now: float) -> None:
        kind = message.get("type")
        if kind == "ack":
            self._on_ack(message, now)
        elif kind == "error":
            self._on_error(message, now)

    def _on_ack(self, ack: Message, now: float) -> None:
        stats = self.ctx.stats
        request_id = str(ack.get("id"))
        seq = int(ack["seq"])
        duplicate = ack.get("duplicate") is True
        bucket = stats.second(self.ctx.second(now))
        retry = self.retries.pop(request_id, None)
        if retry is not None:
            good = duplicate and seq == retry[1]
            stats.gifts["retries_acked_duplicate" if good else "retries_not_duplicate"] += 1
            stats.ack.add(now - retry[0])
            bucket.ack.add(now - retry[0])
            return
        pending = self.pending.pop(request_id, None)
        if pending is None:
            stats.errors["ack_for_unknown_id"] += 1
            return
        self.in_flight_coins -= pending.coins
        latency = now - pending.sent_at
        stats.ack.add(latency)
        bucket.ack.add(latency)
        if duplicate:
            stats.gifts["fresh_acked_duplicate"] += 1
            return
        stats.gifts["acked"] += 1
        bucket.acks += 1
        self.balance = min(self.balance, int(ack["balance"]))
        if len(self.retry_pool) < RETRY_POOL:
            self.retry_pool.append((request_id, pending.gift, pending.count, seq))
        seen_at = self.seen_at_of_seq.pop(seq, None)
        if seen_at is None:
            self.sent_at_of_seq[seq] = pending.sent_at
        else:
            self._delivered(seen_at - pending.sent_at, seen_at)

    def _on_error(self, error: Message, now: float) -> None:
        stats = self.ctx.stats
        code = str(error.get("code"))
        stats.errors[code] += 1
        stats.second(self.ctx.second(now)).errors += 1
        request_id = error.get("id")
        if not isinstance(request_id, str):
            return
        pending = self.pending.pop(request_id, None)
        if pending is not None:
            self.in_flight_coins -= pending.coins
            stats.gifts["refused"] += 1
        elif self.retries.pop(request_id, None) is not None:
            stats.gifts["refused"] += 1

    def contribute(self) -> None:
        super().contribute()
        self.ctx.stats.gifts["unanswered"] += self.unanswered
        self.ctx.stats.gifts["own_events_missing"] += len(self.sent_at_of_seq)
