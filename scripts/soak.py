"""Crash soak: viewers buy coins and send gifts, creators withdraw diamonds,
while processes die; then every coin and diamond is counted.

Starts its own Valkey (the embedded binary, AOF with ``appendfsync always``)
and N ``giftstream serve`` processes on loopback ports, all sharing it. Many
viewers (asyncio, ``websockets``) buy coins through the server's own API
(dev tokens, orders, sandbox payments) and send gifts over room sockets in a
few rooms, retrying with the *same* request id after a timeout, a dropped
socket or a ``temporary`` error, on whichever server process is alive. Each
room's creator withdraws diamonds now and then (the same request id on every
retry), and has some of them paid or failed at once through the sandbox
payout provider, which pays the others a moment later; and the operator
grants viewers promotional coins now and then.
Meanwhile a chaos loop SIGKILLs server processes and restarts them, and
SIGKILLs Valkey and restarts it on the same data directory.

Every client action is logged as ok, failed (nothing moved) or unknown.
After the run the unknowns are retried by id until answered, the settlement
sweepers are given time to finish, and the books are checked: acknowledged
gifts missing from the sender's ledger, request ids debited twice, debits
nobody was told about, ``giftstream reconcile --settled``, and each viewer's
coins (credited by confirmed recharges, minus coins held, must equal the
cost of the gifts acknowledged), and each withdrawal acknowledged: reserved
once, and paid or failed by the end. Exits 1 unless all of them are zero.

    .venv/bin/python scripts/soak.py --minutes 10 --json soak.json

SIGKILL of Valkey tests crash consistency, not power loss: the operating
system keeps what Valkey wrote before it died (see docs/money.md#durability).
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import contextlib
import json
import os
import random
import secrets
import shutil
import signal
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import httpx
import msgpack
from redis.asyncio import Redis
from websockets.asyncio.client import ClientConnection, connect

from server.core import payments
from server.core.credit_entries import credit_fields
from server.money.creators import ADULT, CreatorProfile, Creators, Eligibility
from server.money.streams import Streams
from server.ops.embedded import EmbeddedValkey, free_port
from server.rooms.room_log import RoomLog
from server.settings import ENV_PREFIX, Settings
from server.store.calls import as_text
from server.store.scripts import Scripts

Message = dict[str, Any]

REPO_ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
KEY_PREFIX = "soak"
SUBPROTOCOL = "giftstream.v1.msgpack"
# Longer than anything a live server can take to answer (a 5 s wait for a
# pooled Redis connection, then a 5 s Redis timeout): a request given up on
# earlier could still be running when its retry gets a refusal.
REPLY_TIMEOUT = 15.0
# A gift unanswered this long is left "unknown" for the end of the run.
GIVE_UP_AFTER = 20.0
MAX_BACKOFF = 1.0
SERVER_START_TIMEOUT = 60.0
SETTLE_TIMEOUT = 120.0
RESOLVE_TIMEOUT = 180.0
# (gift id, count, weight): mostly small gifts, now and then a bigger one.
GIFT_MIX = (("rose", 1, 50), ("rose", 5, 15), ("finger_heart", 1, 15),
            ("doughnut", 1, 12), ("hand_hearts", 1, 6), ("corgi", 1, 2))  # fmt: skip
PACKAGES = ("coins_330", "coins_660", "coins_1321")
# The operator grants a viewer 100 to 1,000 promotional coins about this often.
GRANT_EVERY = (0.5, 1.5)
# A viewer joins their room's fan club about this often (each once).
JOIN_EVERY = (0.3, 1.0)
# The operator refunds one of a viewer's paid orders about this often.
REFUND_EVERY = (1.0, 3.0)
GRANT_COINS = (100, 1000)
# The sandbox provider pays a withdrawal left to it this long after it was asked for.
PAYOUT_DELAY_SECONDS = 2.0
# The rooms are live for the whole soak: no stream ends for want of a heartbeat.
STREAM_IDLE_SECONDS = 86_400
# A creator asks for a withdrawal about this often, of 200 (the minimum) to 3,000 diamonds.
WITHDRAW_EVERY = (0.5, 1.5)
WITHDRAW_DIAMONDS = (200, 3000)
PAYOUT_PROFILE = {"method": "paypal", "legal_name": "Soak Creator", "tax_id": "00-0000000",
                  "account": "soak@example.com"}  # fmt: skip

OK, FAILED, UNKNOWN = "ok", "failed", "unknown"


# ---------------------------------------------------------------- configuration


@dataclass(frozen=True)
class SoakConfig:
    seconds: float = 600.0
    servers: int = 3
    viewers: int = 40
    rooms: int = 4
    # Gifts one viewer has in flight at once, on its one socket.
    inflight: int = 2
    # The first seconds run without kills: the throughput baseline of the run.
    calm_seconds: float = 60.0
    # Seconds between two chaos actions, drawn uniformly. Longer than a
    # restart takes on a busy machine (Valkey replays its AOF, a server
    # imports its code), so that the system is seen both failing and recovered.
    chaos_interval: tuple[float, float] = (5.0, 15.0)
    # How long a killed process stays down, drawn uniformly.
    down_for: tuple[float, float] = (0.5, 3.0)
    # Every n-th chaos action kills Valkey; the others kill a server process.
    valkey_every: int = 3
    seed: int | None = None
    # Kept after the run when given; otherwise a temporary one, kept only on failure.
    work_dir: Path | None = None
    quiet: bool = False

    def server_environment(self, url: str, token_secret: str) -> dict[str, str]:
        env = {
            k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIX) and k != "REDIS_URL"
        }
        env.update(
            PYTHONUNBUFFERED="1",
            REDIS_URL=url,
            GIFTSTREAM_KEY_PREFIX=KEY_PREFIX,
            GIFTSTREAM_JWT_SECRET=token_secret,
            GIFTSTREAM_WEBHOOK_SECRET=token_secret + "-webhook",
            # The equivalent of --demo without its seeding, so that a server
            # can start while Valkey is down: tokens and coins for anyone.
            GIFTSTREAM_DEV_TOKENS="1",
            GIFTSTREAM_SANDBOX_PAYMENTS="1",
            GIFTSTREAM_SANDBOX_PAYOUTS="1",
            GIFTSTREAM_SANDBOX_PAYOUT_DELAY_SECONDS=str(PAYOUT_DELAY_SECONDS),
            GIFTSTREAM_PAYOUT_WEBHOOK_SECRET=token_secret + "-payouts",
            GIFTSTREAM_OPERATOR_TOKEN=token_secret + "-operator",
            GIFTSTREAM_STREAM_IDLE_SECONDS=str(STREAM_IDLE_SECONDS),
            # A sweeper that settles what a killed process left within seconds.
            GIFTSTREAM_SWEEP_INTERVAL_SECONDS="0.5",
            GIFTSTREAM_SWEEP_MIN_AGE_SECONDS="1",
            # The soak tests crashes, not abuse limits: sockets of killed
            # processes linger in the per-user count for the presence TTL.
            GIFTSTREAM_GIFT_RATE_PER_SECOND="1000",
            GIFTSTREAM_GIFT_RATE_BURST="1000",
            GIFTSTREAM_USER_GIFT_RATE_PER_SECOND="1000",
            GIFTSTREAM_USER_GIFT_RATE_BURST="1000",
            GIFTSTREAM_MAX_SOCKETS_PER_USER="1000",
            # The soak's users buy again and again, and pay some orders late.
            GIFTSTREAM_ORDERS_PER_MINUTE="100000",
            GIFTSTREAM_MAX_OPEN_ORDERS="100000",
            GIFTSTREAM_LOG_LEVEL="WARNING",
        )
        return env


# ---------------------------------------------------------------- the journal


class Journal:
    """Every client action, one JSON line each, and counts by kind and outcome."""

    def __init__(self, path: Path) -> None:
        self.started = time.monotonic()
        self.counts: Counter[tuple[str, str]] = Counter()
        self._file: TextIO = path.open("w", encoding="utf-8")

    def log(self, kind: str, key: str, outcome: str, detail: str = "") -> None:
        self.counts[kind, outcome] += 1
        line = {"t": round(time.monotonic() - self.started, 3), "kind": kind, "key": key,
                "outcome": outcome, "detail": detail}  # fmt: skip
        self._file.write(json.dumps(line) + "\n")

    def by_kind(self) -> dict[str, dict[str, int]]:
        table: dict[str, dict[str, int]] = {}
        for (kind, outcome), n in sorted(self.counts.items()):
            table.setdefault(kind, {})[outcome] = n
        return table

    def close(self) -> None:
        self._file.close()


# ---------------------------------------------------------------- Valkey


class Store:
    """The embedded Valkey on one port and one data directory, killable."""

    def __init__(self, data_dir: Path, port: int) -> None:
        self.data_dir = data_dir
        self.port = port
        self.valkey: EmbeddedValkey | None = None
        # One password for every start: the servers keep the URL across crashes.
        self.password = secrets.token_urlsafe(16)

    @property
    def url(self) -> str:
        return f"redis://:{self.password}@{HOST}:{self.port}/0"

    @property
    def running(self) -> bool:
        return self.valkey is not None and self.valkey.running

    def client(self) -> Redis:
        return Redis(host=HOST, port=self.port, password=self.password, socket_timeout=10.0)

    async def start(self) -> None:
        for attempt in range(5):
            valkey = EmbeddedValkey(
                self.data_dir, port=self.port, appendfsync="always", password=self.password
            )
            try:
                await valkey.start()
            except Exception:
                if attempt == 4:
                    raise
                await asyncio.sleep(0.5)
                continue
            self.valkey = valkey
            return

    async def crash(self) -> None:
        """SIGKILL: no shutdown, no final flush; what the AOF holds is what survives."""
        if self.valkey is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.valkey.pid, signal.SIGKILL)
        # Let asyncio reap it first: stop() would otherwise signal a zombie,
        # and Popen's check before signalling reaps it behind asyncio's back.
        for _ in range(500):
            if not self.valkey.running:
                break
            await asyncio.sleep(0.01)
        await self.valkey.stop()  # releases the data directory lock
        self.valkey = None

    async def stop(self) -> None:
        if self.valkey is not None:
            await self.valkey.stop()
            self.valkey = None


# ---------------------------------------------------------------- server processes


@dataclass
class ServerSlot:
    index: int
    port: int
    process: asyncio.subprocess.Process | None = None
    up: bool = False

    @property
    def http(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def ws(self) -> str:
        return f"ws://{HOST}:{self.port}"


class Fleet:
    """N ``giftstream serve`` processes; clients pick any that is up."""

    def __init__(
        self,
        count: int,
        env: dict[str, str],
        log_dir: Path,
        stopping: asyncio.Event,
        rng: random.Random,
    ) -> None:
        self.slots = [ServerSlot(i, free_port()) for i in range(count)]
        self._env = env
        self.operator_token = env["GIFTSTREAM_OPERATOR_TOKEN"]
        self.webhook_secret = env["GIFTSTREAM_WEBHOOK_SECRET"]
        self._log_dir = log_dir
        self._stopping = stopping
        self._rng = rng

    def up(self) -> list[ServerSlot]:
        return [slot for slot in self.slots if slot.up]

    async def pick(self) -> ServerSlot:
        """A server that is up, waiting while none is."""
        while True:
            live = self.up()
            if live:
                return self._rng.choice(live)
            if self._stopping.is_set():
                raise Stopped
            await asyncio.sleep(0.05)

    async def start(self, slot: ServerSlot) -> None:
        """Start (or restart) until it answers /livez; a fresh port if its own is taken."""
        deadline = time.monotonic() + SERVER_START_TIMEOUT
        while True:
            if await self._spawn_and_wait(slot):
                slot.up = True
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"server {slot.index} did not start; see {self._log(slot)}")
            await self._reap(slot)
            slot.port = free_port()
            await asyncio.sleep(0.2)

    def _log(self, slot: ServerSlot) -> Path:
        return self._log_dir / f"server-{slot.index}.log"

    async def _spawn_and_wait(self, slot: ServerSlot) -> bool:
        with self._log(slot).open("ab") as log:
            slot.process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "server", "serve", "--host", HOST, "--port", str(slot.port),
                cwd=REPO_ROOT, env=self._env,
                stdin=asyncio.subprocess.DEVNULL, stdout=log, stderr=log,
            )  # fmt: skip
        async with httpx.AsyncClient(timeout=2.0) as http:
            for _ in range(int(SERVER_START_TIMEOUT / 0.05)):
                if slot.process.returncode is not None:
                    return False
                with contextlib.suppress(httpx.HTTPError):
                    if (await http.get(f"{slot.http}/livez")).status_code == 200:
                        return True
                await asyncio.sleep(0.05)
        return False

    async def kill(self, slot: ServerSlot) -> None:
        slot.up = False
        await self._reap(slot, signal.SIGKILL)

    async def _reap(self, slot: ServerSlot, sig: signal.Signals = signal.SIGKILL) -> None:
        process, slot.process = slot.process, None
        if process is None:
            return
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(sig)
        try:
            await asyncio.wait_for(process.wait(), 15.0)
        except TimeoutError:
            process.kill()
            await process.wait()

    async def stop_all(self) -> None:
        for slot in self.slots:
            slot.up = False
            await self._reap(slot, signal.SIGTERM)

    async def all_ready(self, within: float = SERVER_START_TIMEOUT) -> None:
        """Every slot running and answering /readyz (Redis reachable)."""
        for slot in self.slots:
            if slot.process is None or slot.process.returncode is not None:
                slot.up = False
                await self.start(slot)
        deadline = time.monotonic() + within
        async with httpx.AsyncClient(timeout=2.0) as http:
            for slot in self.slots:
                while True:
                    with contextlib.suppress(httpx.HTTPError):
                        if (await http.get(f"{slot.http}/readyz")).status_code == 200:
                            break
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"server {slot.index} not ready")
                    await asyncio.sleep(0.1)


class Stopped(Exception):
    """The run is ending: stop what you were doing."""


# ---------------------------------------------------------------- one room socket


class LinkLost(Exception):
    """The socket closed before the answer came: outcome unknown."""


class Link:
    """A room socket whose acks and errors are matched to request ids."""

    def __init__(self, socket: ClientConnection) -> None:
        self.socket = socket
        self.closed = False
        self._waiting: dict[str, asyncio.Future[Message]] = {}
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def open(cls, ws_base: str, room: str, token: str) -> Link:
        socket = await connect(
            f"{ws_base}/ws/rooms/{room}?token={token}",
            subprotocols=[SUBPROTOCOL],  # type: ignore[list-item]
            open_timeout=5.0,
            close_timeout=1.0,
            compression=None,
            max_size=1 << 22,
        )
        return cls(socket)

    async def _read(self) -> None:
        try:
            async for frame in self.socket:
                message = msgpack.unpackb(frame, raw=False) if isinstance(frame, bytes) else {}
                if message.get("type") in ("ack", "error"):
                    waiter = self._waiting.pop(str(message.get("id")), None)
                    if waiter is not None and not waiter.done():
                        waiter.set_result(message)
        except Exception:  # a dropped connection, whatever its form, ends the link
            pass
        finally:
            self.closed = True
            for waiter in self._waiting.values():
                if not waiter.done():
                    waiter.set_exception(LinkLost())
            self._waiting.clear()

    async def ask(self, message: Message, within: float) -> Message:
        if self.closed:
            raise LinkLost
        request_id = str(message["id"])
        waiter: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
        self._waiting[request_id] = waiter
        try:
            await self.socket.send(msgpack.packb(message))
            return await asyncio.wait_for(waiter, within)
        except (OSError, LinkLost) as exc:
            raise LinkLost from exc
        except TimeoutError:
            raise
        except Exception as exc:  # websockets' ConnectionClosed and friends
            raise LinkLost from exc
        finally:
            if self._waiting.get(request_id) is waiter:
                del self._waiting[request_id]
            if waiter.done() and not waiter.cancelled():
                waiter.exception()  # seen, even when this call was cancelled meanwhile

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.socket.close(), 2.0)
        self._reader.cancel()
        # wait(), not await: the reader's end is no error of ours, but a
        # cancellation of this task must still get through.
        await asyncio.wait([self._reader])


# ---------------------------------------------------------------- viewers


def http_outcome(response: httpx.Response) -> str:
    """A refused HTTP call moved nothing, unless the server could not tell (5xx)."""
    return UNKNOWN if response.status_code >= 500 else FAILED


@dataclass
class GiftRequest:
    viewer: str
    id: str
    room: str
    gift: str
    count: int
    state: str = "pending"  # pending -> acked | failed | unknown
    code: str = ""
    cost: int = 0
    acks: int = 0
    # The first ack said duplicate: paid on an attempt whose answer was lost.
    first_ack_duplicate: bool = False
    attempts: int = 0

    def frame(self) -> Message:
        # The soak's viewers confirm every send, large ones included.
        return {
            "type": "gift",
            "id": self.id,
            "gift": self.gift,
            "count": self.count,
            "confirm": True,
        }


@dataclass
class Order:
    id: str
    coins: int
    state: str = "pending"  # pending -> credited | failed | unknown
    price: str = ""
    currency: str = ""
    unknown_attempts: int = 0


@dataclass
class Ack:
    sent: float
    at: float


class Soak:
    """What every viewer shares: the fleet, the journal, the clock, the stop flag."""

    def __init__(
        self,
        config: SoakConfig,
        fleet: Fleet,
        journal: Journal,
        rng: random.Random,
        stopping: asyncio.Event,
    ) -> None:
        self.config = config
        self.fleet = fleet
        self.journal = journal
        self.rng = rng
        self.stopping = stopping
        self.http = httpx.AsyncClient(timeout=REPLY_TIMEOUT)
        self.acks: list[Ack] = []
        self.anomalies: list[str] = []
        # Payments answered order_paid: an earlier attempt, whose answer was lost, paid.
        self.recharges_answered_late = 0
        self.run_tag = secrets.token_hex(3)


class Viewer:
    def __init__(self, soak: Soak, index: int, room: str) -> None:
        self.soak = soak
        self.user = f"sv{index}"
        self.room = room
        self.token = ""
        self.requests: list[GiftRequest] = []
        self.orders: list[Order] = []
        # Promotional grants to this viewer: request id -> coins, once answered.
        self.grants: dict[str, int] = {}
        # The operator's refunds of this viewer's orders: order id -> coins
        # taken back, once answered.
        self.refunds: dict[str, int] = {}
        # Their join of their room's fan club: its request id once tried, and
        # the coins it cost once answered (None while not joined).
        self.join_id: str | None = None
        self.joined: int | None = None
        self._link: Link | None = None
        self._link_lock = asyncio.Lock()
        self._buy_lock = asyncio.Lock()
        self._sent = 0

    @property
    def credited(self) -> int:
        return sum(order.coins for order in self.orders if order.state == "credited")

    @property
    def granted(self) -> int:
        return sum(self.grants.values())

    @property
    def refunded(self) -> int:
        return sum(self.refunds.values())

    # --- the run ---

    async def run(self) -> None:
        with contextlib.suppress(Stopped):
            await self.sign_in()
            await self.buy()
            await asyncio.gather(*(self._keep_sending() for _ in range(self.soak.config.inflight)))

    async def _keep_sending(self) -> None:
        rng = self.soak.rng
        # Stopped ends this worker only: its siblings stop on their own.
        with contextlib.suppress(Stopped):
            while not self.soak.stopping.is_set():
                request = self.new_request()
                await self.deliver(request, give_up_at=time.monotonic() + GIVE_UP_AFTER)
                if request.code == "insufficient_coins":
                    await self.buy()
                await asyncio.sleep(rng.uniform(0.0, 0.02))

    def new_request(self) -> GiftRequest:
        gift, count, _ = self.soak.rng.choices(GIFT_MIX, weights=[w for *_, w in GIFT_MIX])[0]
        self._sent += 1
        request = GiftRequest(self.user, f"{self.soak.run_tag}-{self.user}-{self._sent}",
                              self.room, gift, count)  # fmt: skip
        self.requests.append(request)
        return request

    # --- sockets ---

    async def link(self) -> Link:
        async with self._link_lock:
            backoff = 0.05
            while self._link is None or self._link.closed:
                slot = await self.soak.fleet.pick()
                try:
                    self._link = await Link.open(slot.ws, self.room, self.token)
                    self.soak.journal.log("connect", slot.http, OK)
                except Exception as exc:  # refused, reset, timed out: another try
                    self.soak.journal.log("connect", slot.http, FAILED, type(exc).__name__)
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, MAX_BACKOFF)
            return self._link

    async def drop(self, link: Link) -> None:
        if self._link is link:
            self._link = None
        await link.close()

    # --- gifts ---

    async def deliver(self, request: GiftRequest, give_up_at: float | None) -> None:
        """Send until answered; the same request id on every attempt."""
        backoff = 0.05
        while True:
            if give_up_at is not None and (
                time.monotonic() > give_up_at or self.soak.stopping.is_set()
            ):
                request.state = UNKNOWN
                return
            link = await self.link()
            sent = time.monotonic()
            request.attempts += 1
            try:
                reply = await link.ask(request.frame(), REPLY_TIMEOUT)
            except (TimeoutError, LinkLost) as exc:
                self.soak.journal.log("gift", request.id, UNKNOWN, type(exc).__name__)
                await self.drop(link)
            else:
                if self._answered(request, reply, sent):
                    return
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF)

    def _answered(self, request: GiftRequest, reply: Message, sent: float) -> bool:
        journal = self.soak.journal
        if reply["type"] == "ack":
            journal.log("gift", request.id, OK, "duplicate" if reply["duplicate"] else "")
            if request.acks and request.cost != reply["coins"]:
                self.soak.anomalies.append(f"{request.id}: acked for {request.cost} and "
                                           f"{reply['coins']} coins")  # fmt: skip
            request.state, request.cost, request.code = "acked", int(reply["coins"]), ""
            request.acks += 1
            if request.acks == 1:  # throughput and recovery count gifts, not repeats
                request.first_ack_duplicate = bool(reply["duplicate"])
                self.soak.acks.append(Ack(sent, time.monotonic()))
            return True
        code = str(reply["code"])
        request.code = code
        if reply.get("temporary"):
            # rate_limited moved nothing; unavailable and internal may have.
            outcome = FAILED if code == "rate_limited" else UNKNOWN
            journal.log("gift", request.id, outcome, code)
            return False
        journal.log("gift", request.id, FAILED, code)
        request.state = FAILED
        return True

    # --- the HTTP API ---

    async def _post(self, path: str, body: Message | None = None) -> httpx.Response:
        slot = await self.soak.fleet.pick()
        headers = {"authorization": f"Bearer {self.token}"} if self.token else {}
        return await self.soak.http.post(f"{slot.http}{path}", json=body, headers=headers)

    async def sign_in(self) -> None:
        while True:
            if self.soak.stopping.is_set():
                raise Stopped
            try:
                response = await self._post("/api/dev/token", {"user": self.user})
            except httpx.HTTPError as exc:
                self.soak.journal.log("token", self.user, UNKNOWN, type(exc).__name__)
            else:
                if response.status_code == 200:
                    self.token = str(response.json()["token"])
                    self.soak.journal.log("token", self.user, OK)
                    return
                self.soak.journal.log(
                    "token", self.user, http_outcome(response), str(response.status_code)
                )
            await asyncio.sleep(0.2)

    async def buy(self) -> None:
        async with self._buy_lock:
            order = await self._create_order(self.soak.rng.choice(PACKAGES))
            await self.pay(order, give_up_at=time.monotonic() + GIVE_UP_AFTER)

    async def _create_order(self, package: str) -> Order:
        # An order that was created but whose answer was lost costs nothing:
        # it is never paid. So a failed creation is simply tried again.
        while True:
            if self.soak.stopping.is_set():
                raise Stopped
            try:
                response = await self._post("/api/orders", {"package": package})
            except httpx.HTTPError as exc:
                self.soak.journal.log("order", package, UNKNOWN, type(exc).__name__)
            else:
                if response.status_code == 201:
                    body = response.json()
                    order = Order(
                        str(body["order_id"]),
                        int(body["coins"]),
                        price=str(body["price"]),
                        currency=str(body["currency"]),
                    )
                    self.orders.append(order)
                    self.soak.journal.log("order", order.id, OK)
                    return order
                self.soak.journal.log(
                    "order", package, http_outcome(response), str(response.status_code)
                )
            await asyncio.sleep(0.2)

    async def pay(self, order: Order, give_up_at: float | None) -> None:
        """Pay through the sandbox until it answers; a retry of the order is idempotent."""
        while True:
            if give_up_at is not None and (
                time.monotonic() > give_up_at or self.soak.stopping.is_set()
            ):
                order.state = UNKNOWN
                return
            try:
                response = await self._post(f"/api/sandbox/pay/{order.id}")
            except httpx.HTTPError as exc:
                order.unknown_attempts += 1
                self.soak.journal.log("pay", order.id, UNKNOWN, type(exc).__name__)
            else:
                if self._paid(order, response):
                    return
            await asyncio.sleep(0.2)

    def _paid(self, order: Order, response: httpx.Response) -> bool:
        journal = self.soak.journal
        if response.status_code == 200:
            status = response.json()["status"]
            journal.log("pay", order.id, OK, status)
            if status == "order_paid":
                self.soak.recharges_answered_late += 1
                if not order.unknown_attempts:
                    self.soak.anomalies.append(f"order {order.id}: paid before it was ever paid")
            order.state = "credited"
            return True
        if response.status_code >= 500:  # unavailable or internal: outcome unknown
            order.unknown_attempts += 1
            journal.log("pay", order.id, UNKNOWN, str(response.status_code))
            return False
        journal.log("pay", order.id, FAILED, response.text[:200])
        self.soak.anomalies.append(f"order {order.id}: refused {response.status_code}")
        order.state = FAILED
        return True

    async def close(self) -> None:
        if self._link is not None:
            await self.drop(self._link)


# ---------------------------------------------------------------- creators


@dataclass
class WithdrawalAsk:
    id: str  # the request id, the same on every attempt
    diamonds: int
    # Settled at once through the sandbox ("paid" or "failed"), or left to it.
    settle_with: str | None
    state: str = "pending"  # pending -> reserved | refused | unknown
    withdrawal_id: str = ""
    code: str = ""


class Payee:
    """A room's creator, withdrawing diamonds through the sandbox payout provider."""

    def __init__(self, soak: Soak, room: str) -> None:
        self.soak = soak
        self.room = room
        self.token = ""
        self.asks: list[WithdrawalAsk] = []

    async def _call(self, method: str, path: str, body: Message | None = None) -> httpx.Response:
        slot = await self.soak.fleet.pick()
        headers = {"authorization": f"Bearer {self.token}"} if self.token else {}
        return await self.soak.http.request(method, f"{slot.http}{path}", json=body,
                                            headers=headers)  # fmt: skip

    async def _until_answered(self, kind: str, method: str, path: str, body: Message) -> Message:
        """Call until a 2xx; a 5xx or a lost connection is tried again, the same call."""
        while True:
            if self.soak.stopping.is_set():
                raise Stopped
            try:
                response = await self._call(method, path, body)
            except httpx.HTTPError as exc:
                self.soak.journal.log(kind, self.room, UNKNOWN, type(exc).__name__)
            else:
                if response.status_code < 300:
                    self.soak.journal.log(kind, self.room, OK)
                    answer: Message = response.json()
                    return answer
                self.soak.journal.log(kind, self.room, http_outcome(response),
                                      str(response.status_code))  # fmt: skip
            await asyncio.sleep(0.2)

    async def run(self) -> None:
        rng = self.soak.rng
        with contextlib.suppress(Stopped):
            self.token = str((await self._until_answered(
                "token", "POST", "/api/dev/token", {"user": self.room, "role": "creator"}
            ))["token"])  # fmt: skip
            await self._until_answered("payout-profile", "PUT", "/api/creator/payout-profile",
                                       PAYOUT_PROFILE)  # fmt: skip
            while not self.soak.stopping.is_set():
                await asyncio.sleep(rng.uniform(*WITHDRAW_EVERY))
                ask = WithdrawalAsk(
                    f"{self.soak.run_tag}-{self.room}-w{len(self.asks)}",
                    rng.randint(*WITHDRAW_DIAMONDS),
                    rng.choice(("paid", "failed", None)),
                )
                self.asks.append(ask)
                await self.withdraw(ask, give_up_at=time.monotonic() + GIVE_UP_AFTER)
                if ask.state == "reserved" and ask.settle_with is not None:
                    await self.settle(ask)

    async def withdraw(self, ask: WithdrawalAsk, give_up_at: float | None) -> None:
        body = {"diamonds": ask.diamonds, "request_id": ask.id}
        journal = self.soak.journal
        while True:
            if give_up_at is not None and (
                time.monotonic() > give_up_at or self.soak.stopping.is_set()
            ):
                ask.state = UNKNOWN
                return
            try:
                response = await self._call("POST", "/api/creator/withdrawals", body)
            except httpx.HTTPError as exc:
                journal.log("withdraw", ask.id, UNKNOWN, type(exc).__name__)
            else:
                if response.status_code in (200, 201):
                    journal.log("withdraw", ask.id, OK, str(response.status_code))
                    answer = response.json()
                    if ask.withdrawal_id and ask.withdrawal_id != answer["withdrawal_id"]:
                        self.soak.anomalies.append(f"{ask.id}: two withdrawals")
                    ask.state, ask.withdrawal_id = "reserved", str(answer["withdrawal_id"])
                    return
                if response.status_code < 500:  # a typed refusal: nothing moved
                    journal.log("withdraw", ask.id, FAILED, response.text[:100])
                    ask.state, ask.code = "refused", str(response.json().get("code"))
                    return
                journal.log("withdraw", ask.id, UNKNOWN, str(response.status_code))
            await asyncio.sleep(0.2)

    async def settle(self, ask: WithdrawalAsk) -> None:
        answer = await self._until_answered(
            "payout", "POST", f"/api/sandbox/payouts/{ask.withdrawal_id}",
            {"outcome": ask.settle_with},
        )  # fmt: skip
        # "conflict": the sandbox paid it first, on its own; nothing moved.
        if answer["status"] not in ("ok", "duplicate", "conflict"):
            self.soak.anomalies.append(f"{ask.id}: payout answered {answer['status']}")


async def resolve_withdrawals(payees: list[Payee]) -> int:
    """Retry every unanswered withdrawal by its request id until answered."""
    retried = [ask for payee in payees for ask in payee.asks if ask.state in ("pending", UNKNOWN)]

    async def one(payee: Payee) -> None:
        for ask in payee.asks:
            if ask.state in ("pending", UNKNOWN):
                await payee.withdraw(ask, give_up_at=None)

    await asyncio.wait_for(asyncio.gather(*(one(p) for p in payees)), RESOLVE_TIMEOUT)
    return len(retried)


async def wait_payouts(redis: Redis, payees: list[Payee], within: float = SETTLE_TIMEOUT) -> float:
    """Until no withdrawal is pending (the sandbox pays those left to it)."""
    started = time.monotonic()
    while time.monotonic() - started < within:
        statuses = await withdrawal_statuses(redis, payees)
        if "pending" not in statuses.values():
            break
        await asyncio.sleep(0.2)
    return time.monotonic() - started


async def withdrawal_statuses(redis: Redis, payees: list[Payee]) -> dict[str, str]:
    """Each acknowledged withdrawal's status in Redis ("missing" without a record)."""
    statuses = {}
    for payee in payees:
        for ask in payee.asks:
            if ask.state == "reserved":
                key = f"{KEY_PREFIX}:{{w:{payee.room}}}:wd:{ask.withdrawal_id}"
                status = await redis.hget(key, "status")
                statuses[ask.id] = as_text(status) if status is not None else "missing"
    return statuses


async def check_withdrawals(redis: Redis, payees: list[Payee]) -> dict[str, list[str]]:
    """Each creator's ledger and records against what the creator was told."""
    statuses = await withdrawal_statuses(redis, payees)
    found: dict[str, list[str]] = {"lost": [], "twice": [], "unsettled": [], "not_told": []}
    for payee in payees:
        reserved: Counter[str] = Counter()
        for _, raw in await redis.xrange(f"{KEY_PREFIX}:{{w:{payee.room}}}:ledger") or []:
            entry = {as_text(k): as_text(v) for k, v in (raw or {}).items()}
            if entry.get("kind") == "withdraw":
                reserved[entry["req"]] += 1
        told = {ask.id for ask in payee.asks if ask.state == "reserved"}
        found["lost"] += [rid for rid in told if not reserved[rid]]
        found["twice"] += [rid for rid, n in reserved.items() if n > 1]
        found["not_told"] += [rid for rid in reserved if rid not in told]
    found["unsettled"] = [
        rid for rid, status in statuses.items() if status not in ("paid", "failed")
    ]
    return found


async def check_streams(redis: Redis, streams: dict[str, str]) -> list[str]:
    """The gift keys of credits not in their room's stream: every room is live
    for the whole run, so each credit, however it was settled (in the call
    that paid it, by the settler, or by the sweeper after a kill), must
    carry that stream."""
    outside = []
    for room, stream_id in streams.items():
        for _, raw in await redis.xrange(f"{KEY_PREFIX}:{{w:{room}}}:ledger") or []:
            entry = {as_text(k): as_text(v) for k, v in (raw or {}).items()}
            # A credit entry of its own, or a record of a call's credits entry.
            outside += [
                credit.get("gift_key", "?")
                for credit in credit_fields(entry)
                if credit.get("stream") != stream_id
            ]
    return outside


# ---------------------------------------------------------------- the operator


GAVE_UP, ANSWERED, REFUSED = "gave_up", "answered", "refused"


async def post_until_answered(
    soak: Soak,
    kind: str,
    key: str,
    request: Callable[[str], tuple[str, bytes, dict[str, str]]],
    give_up_at: float | None,
) -> tuple[str, Message | None]:
    """POST ``request(server)`` to a live server until one answers 200 or 201
    (ANSWERED and its body), refuses it (REFUSED: an anomaly), or the deadline
    passes (GAVE_UP: for the end of the run). Every attempt is journalled
    under ``kind`` and ``key``."""
    journal = soak.journal
    while True:
        if give_up_at is not None and (time.monotonic() > give_up_at or soak.stopping.is_set()):
            return GAVE_UP, None
        slot = await soak.fleet.pick()
        url, body, headers = request(slot.http)
        try:
            response = await soak.http.post(url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            journal.log(kind, key, UNKNOWN, type(exc).__name__)
        else:
            if response.status_code in (200, 201):
                answer: Message = response.json()
                journal.log(kind, key, OK, str(answer.get("status", "")))
                return ANSWERED, answer
            if response.status_code < 500:
                soak.anomalies.append(f"{kind} refused: {response.text[:200]}")
                return REFUSED, None
            journal.log(kind, key, UNKNOWN, str(response.status_code))
        await asyncio.sleep(0.2)


class Granter:
    """The operator, granting viewers promotional coins now and then."""

    def __init__(self, soak: Soak, viewers: list[Viewer], token: str) -> None:
        self.soak = soak
        self.viewers = viewers
        self.headers = {"authorization": f"Bearer {token}"}
        self.unanswered: list[tuple[Viewer, Message]] = []
        self.made = 0

    async def run(self) -> None:
        rng = self.soak.rng
        with contextlib.suppress(Stopped):
            while not self.soak.stopping.is_set():
                await asyncio.sleep(rng.uniform(*GRANT_EVERY))
                viewer = rng.choice(self.viewers)
                self.made += 1
                body = {
                    "user": viewer.user,
                    "coins": rng.randint(*GRANT_COINS),
                    "reason": "soak",
                    "request_id": f"{self.soak.run_tag}-g{self.made}",
                }
                await self.grant(viewer, body, give_up_at=time.monotonic() + GIVE_UP_AFTER)

    async def grant(self, viewer: Viewer, body: Message, give_up_at: float | None) -> None:
        """Until answered, the same request id every time; unanswered by the deadline,
        kept for the end of the run."""

        def request(http: str) -> tuple[str, bytes, dict[str, str]]:
            headers = self.headers | {"content-type": "application/json"}
            return f"{http}/api/admin/grants", json.dumps(body).encode(), headers

        outcome, answer = await post_until_answered(
            self.soak, "grant", str(body["request_id"]), request, give_up_at
        )
        if outcome == GAVE_UP:
            self.unanswered.append((viewer, body))
        elif answer is not None:
            viewer.grants[str(body["request_id"])] = int(body["coins"])

    async def resolve(self) -> int:
        left, self.unanswered = self.unanswered, []
        for viewer, body in left:
            await self.grant(viewer, body, give_up_at=None)
        return len(left)


class Joiner:
    """Viewers join their room's creator's fan club now and then, each once
    (fanclub.lua: the price paid as a gift to the creator)."""

    def __init__(self, soak: Soak, viewers: list[Viewer]) -> None:
        self.soak = soak
        self.viewers = viewers
        self.unanswered: list[Viewer] = []

    async def run(self) -> None:
        rng = self.soak.rng
        with contextlib.suppress(Stopped):
            while not self.soak.stopping.is_set():
                await asyncio.sleep(rng.uniform(*JOIN_EVERY))
                waiting = [v for v in self.viewers if v.join_id is None and v.token]
                if waiting:
                    viewer = rng.choice(waiting)
                    viewer.join_id = f"{self.soak.run_tag}-join-{viewer.user}"
                    await self.join(viewer, give_up_at=time.monotonic() + GIVE_UP_AFTER)

    async def join(self, viewer: Viewer, give_up_at: float | None) -> None:
        """The same request id until answered: 200 (joined, or joined before by
        this id), or a refusal that moved nothing (too few coins)."""
        assert viewer.join_id is not None
        journal = self.soak.journal
        while True:
            if give_up_at is not None and (
                time.monotonic() > give_up_at or self.soak.stopping.is_set()
            ):
                self.unanswered.append(viewer)
                return
            slot = await self.soak.fleet.pick()
            try:
                response = await self.soak.http.post(
                    f"{slot.http}/api/rooms/{viewer.room}/fanclub/join",
                    json={"request_id": viewer.join_id},
                    headers={"authorization": f"Bearer {viewer.token}"},
                )
            except httpx.HTTPError as exc:
                journal.log("join", viewer.join_id, UNKNOWN, type(exc).__name__)
            else:
                if response.status_code == 200:
                    viewer.joined = int(response.json()["coins"])
                    journal.log("join", viewer.join_id, OK)
                    return
                if response.status_code in (402, 429):
                    # Too few coins, or the user's gift bucket empty: nothing moved.
                    journal.log("join", viewer.join_id, FAILED, str(response.status_code))
                    return
                if response.status_code < 500:
                    self.soak.anomalies.append(f"join refused: {response.text[:200]}")
                    return
                journal.log("join", viewer.join_id, UNKNOWN, str(response.status_code))
            await asyncio.sleep(0.2)

    async def resolve(self) -> int:
        left, self.unanswered = self.unanswered, []
        for viewer in left:
            await self.join(viewer, give_up_at=None)
        return len(left)


class Refunder:
    """A viewer's paid order taken back now and then, what is left of its coins
    out of the wallet, once per order: half by the operator's refund, half by
    the payment provider's chargeback (a signed callback), after which the
    operator clears the account's flag so that its owner can buy again."""

    def __init__(self, soak: Soak, viewers: list[Viewer], token: str, webhook_secret: str) -> None:
        self.soak = soak
        self.viewers = viewers
        self.headers = {"authorization": f"Bearer {token}"}
        self.webhook_secret = webhook_secret
        self.unanswered: list[tuple[Viewer, Order]] = []
        self.chargebacks: set[str] = set()

    async def run(self) -> None:
        rng = self.soak.rng
        with contextlib.suppress(Stopped):
            while not self.soak.stopping.is_set():
                await asyncio.sleep(rng.uniform(*REFUND_EVERY))
                viewer = rng.choice(self.viewers)
                paid = [o for o in viewer.orders if o.state == "credited"]
                fresh = [order for order in paid if order.id not in viewer.refunds]
                if fresh:
                    order = rng.choice(fresh)
                    if rng.random() < 0.5:
                        self.chargebacks.add(order.id)
                    await self.refund(viewer, order, give_up_at=time.monotonic() + GIVE_UP_AFTER)

    def _request(self, slot_http: str, order: Order) -> tuple[str, bytes, dict[str, str]]:
        """The URL, body and headers of this order's refund or chargeback."""
        if order.id not in self.chargebacks:
            body = json.dumps({"order_id": order.id, "reason": "other"}).encode()
            headers = self.headers | {"content-type": "application/json"}
            return f"{slot_http}/api/admin/refunds", body, headers
        event = payments.PaymentConfirmation(
            payment_id=f"dispute_{order.id}",
            order_id=order.id,
            price=order.price,
            currency=order.currency,
            type=payments.CHARGED_BACK,
        )
        body = payments.confirmation_body(event)
        signature = payments.sign(self.webhook_secret, body, time.time())
        headers = {payments.SIGNATURE_HEADER: signature, "content-type": "application/json"}
        return f"{slot_http}/api/payments/webhook", body, headers

    async def refund(self, viewer: Viewer, order: Order, give_up_at: float | None) -> None:
        """Until answered, the same order every time; unanswered by the deadline,
        kept for the end of the run. A chargeback's flag is cleared after it."""
        outcome, answer = await post_until_answered(
            self.soak, "refund", order.id, lambda http: self._request(http, order), give_up_at
        )
        if outcome == GAVE_UP:
            self.unanswered.append((viewer, order))
        elif answer is not None:
            viewer.refunds[order.id] = int(answer["coins_taken_back"])
            if order.id in self.chargebacks:
                await self.unflag(viewer)

    async def unflag(self, viewer: Viewer) -> None:
        """The operator clears the chargeback's flag, until answered."""
        while True:
            slot = await self.soak.fleet.pick()
            with contextlib.suppress(httpx.HTTPError):
                response = await self.soak.http.post(
                    f"{slot.http}/api/admin/users/{viewer.user}/unflag", headers=self.headers
                )
                if response.status_code == 200:
                    return
            await asyncio.sleep(0.2)

    async def resolve(self) -> int:
        left, self.unanswered = self.unanswered, []
        for viewer, order in left:
            await self.refund(viewer, order, give_up_at=None)
        return len(left)


# ---------------------------------------------------------------- chaos


@dataclass
class Kill:
    kind: str  # "server" or "valkey"
    target: str
    at: float
    down_for: float


class Chaos:
    def __init__(self, config: SoakConfig, fleet: Fleet, store: Store, rng: random.Random):
        self.config = config
        self.fleet = fleet
        self.store = store
        self.rng = rng
        self.kills: list[Kill] = []
        self._restarts: set[asyncio.Task[None]] = set()

    async def run(self, until: asyncio.Event) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(until.wait(), self.config.calm_seconds)
            return
        actions = 0
        while not until.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(until.wait(), self.rng.uniform(*self.config.chaos_interval))
                return
            actions += 1
            if actions % self.config.valkey_every == 0:
                await self._crash_valkey()
            else:
                await self._crash_server()

    async def _crash_valkey(self) -> None:
        down = self.rng.uniform(*self.config.down_for)
        self.kills.append(Kill("valkey", "valkey", time.monotonic(), down))
        await self.store.crash()
        await asyncio.sleep(down)
        await self.store.start()

    async def _crash_server(self) -> None:
        live = [slot for slot in self.fleet.slots if slot.up]
        if not live:
            return
        slot = self.rng.choice(live)
        down = self.rng.uniform(*self.config.down_for)
        self.kills.append(Kill("server", f"server-{slot.index}", time.monotonic(), down))
        await self.fleet.kill(slot)
        task = asyncio.create_task(self._restart_later(slot, down))
        self._restarts.add(task)
        task.add_done_callback(self._restarts.discard)

    async def _restart_later(self, slot: ServerSlot, delay: float) -> None:
        await asyncio.sleep(delay)
        await self.fleet.start(slot)

    def pending(self) -> list[asyncio.Task[None]]:
        """Restarts still to come, cancelled: for an interrupted run."""
        for task in self._restarts:
            task.cancel()
        return list(self._restarts)

    async def settle_down(self) -> None:
        """Wait for restarts in progress; Valkey up again."""
        await asyncio.gather(*self._restarts)
        if not self.store.running:
            await self.store.start()


# ---------------------------------------------------------------- after the run


async def resolve(viewers: list[Viewer], journal: Journal) -> tuple[int, int]:
    """Retry every unanswered gift and payment by its id until answered."""
    gifts = 0
    payments = 0
    limit = asyncio.Semaphore(32)

    async def one_viewer(viewer: Viewer) -> None:
        nonlocal gifts, payments
        async with limit:
            for order in viewer.orders:
                if order.state not in ("credited", FAILED):
                    payments += 1
                    journal.log("resolve-pay", order.id, UNKNOWN)
                    await viewer.pay(order, give_up_at=None)
            for request in viewer.requests:
                if request.state not in ("acked", FAILED):
                    gifts += 1
                    request.state = UNKNOWN
                    journal.log("resolve-gift", request.id, UNKNOWN)
                    await viewer.deliver(request, give_up_at=None)
            await viewer.close()

    await asyncio.wait_for(asyncio.gather(*(one_viewer(v) for v in viewers)), RESOLVE_TIMEOUT)
    return gifts, payments


async def credits_pending(redis: Redis) -> int:
    """Creator credits still waiting in senders' outboxes."""
    pending = 0
    async for key in redis.scan_iter(match=f"{KEY_PREFIX}:{{w:*}}:outbox", count=1000):
        pending += await redis.hlen(key)
    return pending


async def wait_settled(redis: Redis, within: float = SETTLE_TIMEOUT) -> float:
    """Until every outbox is empty (the sweepers have settled all); the seconds it took."""
    started = time.monotonic()
    for _ in range(int(within / 0.2)):
        if not await credits_pending(redis):
            break
        await asyncio.sleep(0.2)
    return time.monotonic() - started


async def reconcile_command(url: str, tries: int = 3) -> tuple[int, list[str]]:
    """The operator's own ``giftstream reconcile --settled``: exit code and breaches.

    A run that printed no report at all (a Redis timeout on a loaded machine)
    is tried again; a report with breaches is final.
    """
    for _ in range(tries):
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "server", "reconcile", "--redis-url", url,
            "--key-prefix", KEY_PREFIX, "--settled", "--json",
            cwd=REPO_ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, err = await process.communicate()
        try:
            return process.returncode or 0, [str(b) for b in json.loads(out)["breaches"]]
        except (ValueError, KeyError, TypeError):
            failure = f"reconcile printed no report: {err.decode(errors='replace')[-500:]}"
    return process.returncode or 1, [failure]


async def ledger_audit(url: str) -> list[str]:
    """The operator's own ``giftstream ledger export`` then ``ledger verify``
    (offline): what went wrong, nothing when every chain is whole."""
    with tempfile.TemporaryDirectory(prefix="soak-ledger-") as folder:
        path = str(Path(folder) / "ledger.jsonl")
        for argv in (
            ["ledger", "export", path, "--redis-url", url, "--key-prefix", KEY_PREFIX],
            ["ledger", "verify", path],
        ):
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "server", *argv,
                cwd=REPO_ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
            )  # fmt: skip
            out, _ = await process.communicate()
            if process.returncode != 0:
                return [f"ledger {argv[1]} exited {process.returncode}: {out.decode()[-500:]}"]
    return []


@dataclass
class LedgerFacts:
    acked_but_lost: list[str] = field(default_factory=list)
    charged_twice: list[str] = field(default_factory=list)
    debited_not_acked: list[str] = field(default_factory=list)
    conservation: list[str] = field(default_factory=list)
    recharges: list[str] = field(default_factory=list)
    # lost, twice, unsettled, not_told: withdrawal request ids (check_withdrawals).
    withdrawals: dict[str, list[str]] = field(default_factory=dict)
    # Promotional grants acknowledged but not in the ledger, in it twice, or
    # in it though never acknowledged.
    grants_lost: list[str] = field(default_factory=list)
    grants_twice: list[str] = field(default_factory=list)
    grants_not_told: list[str] = field(default_factory=list)
    # Gift keys of credits that do not carry their room's stream (check_streams).
    outside_stream: list[str] = field(default_factory=list)
    # Refunds acknowledged but not in the ledger, taking back an order twice,
    # or in it though never acknowledged: order ids.
    refunds_lost: list[str] = field(default_factory=list)
    refunds_twice: list[str] = field(default_factory=list)
    refunds_not_told: list[str] = field(default_factory=list)
    # The ledger exported and verified offline (ledger_audit): what failed.
    ledger_audit: list[str] = field(default_factory=list)


async def money_fields(redis: Redis, key: str) -> dict[str, int]:
    """A wallet's amounts; its fields that are not amounts (the ledger's chain
    head, spending limits) left out."""
    raw = await redis.hgetall(key)
    return {as_text(k): int(v) for k, v in raw.items() if as_text(v).lstrip("-").isdigit()}


async def check_ledgers(redis: Redis, viewers: list[Viewer]) -> LedgerFacts:
    """Each viewer's ledger against what the viewer was told."""
    facts = LedgerFacts()
    for viewer in viewers:
        base = f"{KEY_PREFIX}:{{w:{viewer.user}}}"
        debits: Counter[str] = Counter()
        entries = [
            {as_text(k): as_text(v) for k, v in (raw or {}).items()}
            for _, raw in await redis.xrange(f"{base}:ledger") or []
        ]
        for entry in entries:
            if entry.get("kind") == "gift":
                debits[entry["req"]] += 1
        acked = {r.id: r.cost for r in viewer.requests if r.state == "acked"}
        # A fan club's price is paid as a gift (fanclub.lua): a debit told.
        if viewer.join_id is not None and viewer.joined is not None:
            acked[viewer.join_id] = viewer.joined
        facts.acked_but_lost += [f"{viewer.user}:{rid}" for rid in acked if rid not in debits]
        facts.charged_twice += [f"{viewer.user}:{rid}" for rid, n in debits.items() if n > 1]
        facts.debited_not_acked += [f"{viewer.user}:{rid}" for rid in debits if rid not in acked]
        wallet = await money_fields(redis, f"{base}:wallet")
        coins, stored_credit = (
            wallet.get("coins", 0),
            wallet.get("recharged", 0) + wallet.get("bonus", 0),
        )
        if viewer.credited + viewer.granted - viewer.refunded - coins != sum(acked.values()):
            facts.conservation.append(
                f"{viewer.user}: credited {viewer.credited} + granted {viewer.granted} - "
                f"refunded {viewer.refunded} - held {coins} != acked gifts {sum(acked.values())}"
            )
        refunds: Counter[str] = Counter(
            entry["order"] for entry in entries if entry.get("kind") in ("refund", "chargeback")
        )
        facts.refunds_lost += [order for order in viewer.refunds if not refunds[order]]
        facts.refunds_twice += [order for order, n in refunds.items() if n > 1]
        facts.refunds_not_told += [order for order in refunds if order not in viewer.refunds]
        promos: Counter[str] = Counter(
            entry["req"] for entry in entries if entry.get("kind") == "promo"
        )
        facts.grants_lost += [rid for rid in viewer.grants if not promos[rid]]
        facts.grants_twice += [rid for rid, n in promos.items() if n > 1]
        facts.grants_not_told += [rid for rid in promos if rid not in viewer.grants]
        if stored_credit != viewer.credited:
            facts.recharges.append(
                f"{viewer.user}: recharges confirmed {viewer.credited}, wallet says {stored_credit}"
            )
    return facts


def recovery_times(kills: list[Kill], acks: list[Ack]) -> dict[str, list[float]]:
    """Per kill: from the kill to the first ack of a gift sent after it."""
    by_sent = sorted(acks, key=lambda a: a.sent)
    # Earliest ack time among attempts sent at or after each position.
    earliest = [float("inf")] * (len(by_sent) + 1)
    for i in range(len(by_sent) - 1, -1, -1):
        earliest[i] = min(by_sent[i].at, earliest[i + 1])
    sent_times = [a.sent for a in by_sent]
    times: dict[str, list[float]] = {"server": [], "valkey": []}
    for kill in kills:
        first = earliest[bisect.bisect_left(sent_times, kill.at)]
        if first != float("inf"):
            times[kill.kind].append(first - kill.at)
    return times


def throughput(
    acks: list[Ack], started: float, calm: float, elapsed: float
) -> dict[str, float | None]:
    """Gifts acked per second: without kills (the baseline), with them, and their ratio."""
    calm = min(calm, elapsed)
    in_calm = sum(started <= a.at < started + calm for a in acks)
    in_chaos = sum(started + calm <= a.at <= started + elapsed for a in acks)
    calm_rate = in_calm / calm if calm > 0 else None
    chaos_rate = in_chaos / (elapsed - calm) if elapsed > calm else None
    ratio = chaos_rate / calm_rate if calm_rate and chaos_rate is not None else None
    return {
        "calm": None if calm_rate is None else round(calm_rate, 1),
        "under_kills": None if chaos_rate is None else round(chaos_rate, 1),
        "ratio": None if ratio is None else round(ratio, 2),
        "whole_run": round((in_calm + in_chaos) / elapsed, 1) if elapsed else None,
    }


def summary(values: list[float]) -> dict[str, float | int | None]:
    if not values:
        return {"n": 0, "p50": None, "max": None}
    return {"n": len(values), "p50": round(statistics.median(values), 3),
            "max": round(max(values), 3)}  # fmt: skip


# ---------------------------------------------------------------- the run


async def seed_rooms(store: Store, rooms: list[str]) -> dict[str, str]:
    """Each room's creator, eligible, on and live: the stream id of each room."""
    redis = store.client()
    live: dict[str, str] = {}
    try:
        creators = Creators(redis, KEY_PREFIX, Eligibility(min_followers=0))
        scripts = Scripts.register(redis)
        room_log = RoomLog(redis, scripts, Settings(key_prefix=KEY_PREFIX))
        # Live for the whole run (the idle time is longer than any soak).
        streams = Streams(redis, scripts, KEY_PREFIX, creators, room_log, STREAM_IDLE_SECONDS)
        for room in rooms:
            await creators.save(
                CreatorProfile(user=room, gifts_enabled=True, followers=50_000, age=ADULT)
            )
            stream, _ = await streams.go_live(room, int(time.time() * 1000))
            live[room] = stream.id
    finally:
        await redis.aclose()
    return live


def say(config: SoakConfig, text: str) -> None:
    if not config.quiet:
        print(text, flush=True)


async def run_soak(config: SoakConfig) -> dict[str, Any]:
    """The whole soak; returns the report (``report["passed"]`` says whether it held)."""
    work = config.work_dir or Path(tempfile.mkdtemp(prefix="giftstream-soak-"))
    work.mkdir(parents=True, exist_ok=True)
    rng = random.Random(config.seed)
    journal = Journal(work / "journal.jsonl")
    store = Store(work / "valkey", free_port())
    stopping = asyncio.Event()
    env = config.server_environment(store.url, secrets.token_urlsafe(32))
    fleet = Fleet(config.servers, env, work, stopping, random.Random(rng.random()))
    try:
        report = await _run(config, work, rng, journal, store, fleet, stopping)
    finally:
        stopping.set()
        await fleet.stop_all()
        await store.stop()
        journal.close()
    report["work_dir"] = str(work)
    if report["passed"] and config.work_dir is None:
        shutil.rmtree(work, ignore_errors=True)
        report["work_dir"] = None
    return report


async def _run(
    config: SoakConfig,
    work: Path,
    rng: random.Random,
    journal: Journal,
    store: Store,
    fleet: Fleet,
    stopping: asyncio.Event,
) -> dict[str, Any]:
    rooms = [f"soakroom{i}" for i in range(config.rooms)]
    await store.start()
    streams = await seed_rooms(store, rooms)
    await asyncio.gather(*(fleet.start(slot) for slot in fleet.slots))
    say(config, f"soak: Valkey {store.url}, servers {[s.http for s in fleet.slots]}, "
                f"{config.viewers} viewers in {len(rooms)} rooms, {config.seconds:g} s; "
                f"work dir {work}")  # fmt: skip
    soak = Soak(config, fleet, journal, rng, stopping)
    viewers = [Viewer(soak, i, rooms[i % len(rooms)]) for i in range(config.viewers)]
    payees = [Payee(soak, room) for room in rooms]
    granter = Granter(soak, viewers, fleet.operator_token)
    refunder = Refunder(soak, viewers, fleet.operator_token, fleet.webhook_secret)
    joiner = Joiner(soak, viewers)
    chaos = Chaos(config, fleet, store, random.Random(rng.random()))
    chaos_over = asyncio.Event()
    started = time.monotonic()
    tasks = [asyncio.create_task(v.run()) for v in viewers]
    tasks += [asyncio.create_task(p.run()) for p in payees]
    tasks.append(asyncio.create_task(granter.run()))
    tasks.append(asyncio.create_task(refunder.run()))
    tasks.append(asyncio.create_task(joiner.run()))
    chaos_task = asyncio.create_task(chaos.run(chaos_over))
    try:
        await _wait_with_progress(config, started, soak, chaos)
        elapsed = time.monotonic() - started
        acked_in_run = sum(r.state == "acked" for v in viewers for r in v.requests)
        chaos_over.set()
        await chaos_task
        stopping.set()
        await _finish(tasks)
        await chaos.settle_down()
        stopping.clear()  # the resolution below uses the fleet again
        await fleet.all_ready()
        say(config, "soak: run over; resolving unknown outcomes")
        unknown_after_run = sum(
            r.state not in ("acked", FAILED) for v in viewers for r in v.requests
        )
        resolved_gifts, resolved_payments = await resolve(viewers, journal)
        resolved_withdrawals = await resolve_withdrawals(payees)
        resolved_grants = await granter.resolve()
        resolved_refunds = await refunder.resolve()
        resolved_joins = await joiner.resolve()
        say(config, "soak: waiting for settlement and payouts")
        redis = store.client()
        try:
            settle_seconds = await wait_settled(redis)
            payout_seconds = await wait_payouts(redis, payees)
            # Settled: the servers are done. Stopped, they leave the machine
            # (and Redis) to the checks, which read every ledger whole.
            await fleet.stop_all()
            facts = await check_ledgers(redis, viewers)
            facts.withdrawals = await check_withdrawals(redis, payees)
            facts.outside_stream = await check_streams(redis, streams)
        finally:
            await redis.aclose()
        reconcile_exit, breaches = await reconcile_command(store.url)
        facts.ledger_audit = await ledger_audit(store.url)
    finally:
        # Interrupted (Ctrl-C) or failed: nothing may go on killing and restarting.
        stopping.set()
        chaos_over.set()
        for task in [chaos_task, *tasks]:
            task.cancel()
        await asyncio.gather(chaos_task, *tasks, *chaos.pending(), return_exceptions=True)
        await soak.http.aclose()
    rates = throughput(soak.acks, started, config.calm_seconds, elapsed)
    report = _report(config, viewers, soak, chaos, journal, elapsed, rates, acked_in_run,
                     unknown_after_run, resolved_gifts, resolved_payments, settle_seconds, facts,
                     reconcile_exit, breaches)  # fmt: skip
    report = _with_withdrawals(report, payees, facts, resolved_withdrawals, payout_seconds)
    report = _with_grants(report, viewers, facts, resolved_grants)
    report = _with_refunds(report, viewers, facts, resolved_refunds)
    report["joins"] = {
        "joined": sum(v.joined is not None for v in viewers),
        "resolved": resolved_joins,
    }
    return report


def _with_checks(report: dict[str, Any], found: dict[str, list[str]]) -> dict[str, Any]:
    """Add checks that must each find nothing: their counts, a few examples of
    what they found, and the verdict."""
    checks = {name: len(ids) for name, ids in found.items()}
    report["checks"] |= checks
    report["examples"] |= {name: ids[:5] for name, ids in found.items() if ids}
    report["passed"] = report["passed"] and not any(checks.values())
    return report


def _with_refunds(
    report: dict[str, Any], viewers: list[Viewer], facts: LedgerFacts, resolved: int
) -> dict[str, Any]:
    """The orders taken back: how many, what they took back, and their checks."""
    report["refunds"] = {
        "refunded": sum(len(v.refunds) for v in viewers),
        "coins_taken_back": sum(v.refunded for v in viewers),
        "resolved": resolved,
    }
    return _with_checks(
        report,
        {
            "refunds_lost": facts.refunds_lost,
            "refunds_twice": facts.refunds_twice,
            "refunds_not_told": facts.refunds_not_told,
            "ledger_export_not_verified": facts.ledger_audit,
        },
    )


def _with_grants(
    report: dict[str, Any], viewers: list[Viewer], facts: LedgerFacts, resolved: int
) -> dict[str, Any]:
    """The operator's grants: how many, and their checks."""
    report["grants"] = {
        "granted": sum(len(v.grants) for v in viewers),
        "coins": sum(v.granted for v in viewers),
        "resolved": resolved,
    }
    return _with_checks(
        report,
        {
            "grants_lost": facts.grants_lost,
            "grants_twice": facts.grants_twice,
            "grants_not_told": facts.grants_not_told,
        },
    )


def _with_withdrawals(
    report: dict[str, Any],
    payees: list[Payee],
    facts: LedgerFacts,
    resolved: int,
    payout_seconds: float,
) -> dict[str, Any]:
    """The creators' side of the report: what they asked for, and its checks."""
    asks = [ask for payee in payees for ask in payee.asks]
    report["withdrawals"] = {
        "asked": len(asks),
        "reserved": sum(ask.state == "reserved" for ask in asks),
        "refused_codes": dict(Counter(ask.code for ask in asks if ask.state == "refused")),
        "settled_by": Counter(
            ask.settle_with or "sandbox" for ask in asks if ask.state == "reserved"
        ),
        "diamonds_reserved": sum(ask.diamonds for ask in asks if ask.state == "reserved"),
        "resolved": resolved,
        "payout_wait_s": round(payout_seconds, 2),
    }
    checks = {f"withdrawals_{name}": len(ids) for name, ids in facts.withdrawals.items()}
    checks["withdrawals_unresolved"] = sum(ask.state not in ("reserved", "refused") for ask in asks)
    checks["credits_outside_their_stream"] = len(facts.outside_stream)
    if facts.outside_stream:
        report["examples"]["credits_outside_their_stream"] = facts.outside_stream[:5]
    report["checks"] |= checks
    examples = {k: v[:5] for k, v in facts.withdrawals.items() if v}
    if examples:
        report["examples"]["withdrawals"] = examples
    report["passed"] = report["passed"] and not any(checks.values())
    return report


async def _wait_with_progress(config: SoakConfig, started: float, soak: Soak, chaos: Chaos) -> None:
    next_note = started + 30.0
    while (now := time.monotonic()) < started + config.seconds:
        await asyncio.sleep(min(1.0, started + config.seconds - now))
        if time.monotonic() >= next_note:
            next_note += 30.0
            say(config, f"soak: {time.monotonic() - started:5.0f} s, {len(soak.acks)} acks, "
                        f"{len(chaos.kills)} kills")  # fmt: skip


async def _finish(tasks: list[asyncio.Task[None]]) -> None:
    """Viewers stop between requests; those stuck waiting are cut off (their gifts stay unknown)."""
    _, stuck = await asyncio.wait(tasks, timeout=3.0)
    for task in stuck:
        task.cancel()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException) and not isinstance(result, asyncio.CancelledError):
            raise result


def _report(
    config: SoakConfig,
    viewers: list[Viewer],
    soak: Soak,
    chaos: Chaos,
    journal: Journal,
    elapsed: float,
    rates: dict[str, float | None],
    acked_in_run: int,
    unknown_after_run: int,
    resolved_gifts: int,
    resolved_payments: int,
    settle_seconds: float,
    facts: LedgerFacts,
    reconcile_exit: int,
    breaches: list[str],
) -> dict[str, Any]:
    requests = [r for v in viewers for r in v.requests]
    states = Counter(r.state for r in requests)
    recovery = recovery_times(chaos.kills, soak.acks)
    checks = {
        "acked_but_lost": len(facts.acked_but_lost),
        "charged_twice": len(facts.charged_twice),
        "debited_not_acked": len(facts.debited_not_acked),
        "conservation_mismatches": len(facts.conservation),
        "recharge_mismatches": len(facts.recharges),
        "reconcile_breaches": len(breaches),
        "unresolved": states["pending"] + states[UNKNOWN],
        "anomalies": len(soak.anomalies),
    }
    passed = not any(checks.values()) and reconcile_exit == 0 and acked_in_run > 0
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "config": {
            "seconds": config.seconds,
            "calm_seconds": config.calm_seconds,
            "servers": config.servers,
            "viewers": config.viewers,
            "rooms": config.rooms,
            "inflight": config.inflight,
            "seed": config.seed,
            "appendfsync": "always",
        },
        "kills": Counter(k.kind for k in chaos.kills),
        "gifts": {
            "requests": len(requests),
            "acknowledged": states["acked"],
            "acknowledged_during_run": acked_in_run,
            "failed": states[FAILED],
            "failed_codes": dict(Counter(r.code for r in requests if r.state == FAILED)),
            "unknown_after_run": unknown_after_run,
            "resolved": resolved_gifts,
            "acked_twice_or_more": sum(r.acks > 1 for r in requests),
            "paid_before_the_answer_was_lost": sum(r.first_ack_duplicate for r in requests),
            "coins_acknowledged": sum(r.cost for r in requests if r.state == "acked"),
        },
        "recharges": {
            "orders_credited": sum(o.state == "credited" for v in viewers for o in v.orders),
            "paid_before_the_answer_was_lost": soak.recharges_answered_late,
            "coins_credited": sum(v.credited for v in viewers),
            "payments_resolved": resolved_payments,
        },
        "attempts": journal.by_kind(),
        "throughput_acks_per_s": rates,
        "recovery_s": {kind: summary(times) for kind, times in recovery.items()},
        "settlement_wait_s": round(settle_seconds, 2),
        "checks": checks,
        "reconcile_exit": reconcile_exit,
        "examples": {
            "acked_but_lost": facts.acked_but_lost[:5],
            "charged_twice": facts.charged_twice[:5],
            "debited_not_acked": facts.debited_not_acked[:5],
            "conservation": facts.conservation[:5],
            "recharges": facts.recharges[:5],
            "reconcile": breaches[:5],
            "anomalies": soak.anomalies[:5],
        },
        "elapsed_s": round(elapsed, 1),
        "passed": passed,
    }


def describe(report: dict[str, Any]) -> str:
    g, c, r = report["gifts"], report["checks"], report["recovery_s"]
    cfg, w = report["config"], report["withdrawals"]

    def rec(kind: str) -> str:
        s = r[kind]
        return f"{s['n']} kills, p50 {s['p50']} s, max {s['max']} s" if s["n"] else "no kills"

    lines = [
        f"crash soak, {report['date']}: {cfg['servers']} server processes, {cfg['viewers']} "
        f"viewers in {cfg['rooms']} rooms, {report['elapsed_s']} s, appendfsync always",
        f"kills: {report['kills'].get('server', 0)} server (SIGKILL), "
        f"{report['kills'].get('valkey', 0)} Valkey (SIGKILL)",
        f"gift requests: {g['requests']}; acknowledged {g['acknowledged']} "
        f"({g['coins_acknowledged']} coins), failed {g['failed']} {g['failed_codes']}",
        f"  paid on an attempt whose answer was lost, acked on a retry (duplicate): "
        f"{g['paid_before_the_answer_was_lost']}",
        f"  unknown when the run ended: {g['unknown_after_run']}, all retried by id "
        f"({g['resolved']} resolved); acked more than once: {g['acked_twice_or_more']}",
        f"recharges: {report['recharges']['orders_credited']} orders, "
        f"{report['recharges']['coins_credited']} coins credited "
        f"({report['recharges']['paid_before_the_answer_was_lost']} paid by an attempt "
        "whose answer was lost)",
        f"withdrawals: {w['asked']} asked, {w['reserved']} reserved "
        f"({w['diamonds_reserved']} diamonds; paid or failed at once, or left to the sandbox: "
        f"{dict(w['settled_by'])}), refused {w['refused_codes']}; {w['resolved']} retried "
        f"by id after the run; none pending {w['payout_wait_s']} s after it",
        f"promotional grants: {report['grants']['granted']} ({report['grants']['coins']} coins), "
        f"{report['grants']['resolved']} retried by id after the run",
        f"operator refunds: {report['refunds']['refunded']} orders "
        f"({report['refunds']['coins_taken_back']} coins taken back), "
        f"{report['refunds']['resolved']} retried by order after the run",
        f"attempts: {report['attempts']}",
        f"throughput, acked gifts/s: {report['throughput_acks_per_s']}",
        f"recovery after a server kill: {rec('server')}",
        f"recovery after a Valkey kill: {rec('valkey')}",
        f"settlement finished {report['settlement_wait_s']} s after the resolution",
        f"acknowledged but lost:    {c['acked_but_lost']}",
        f"charged twice:            {c['charged_twice']}",
        f"debited, never acked:     {c['debited_not_acked']}",
        f"coins conservation fails: {c['conservation_mismatches']} "
        f"(recharges: {c['recharge_mismatches']})",
        f"reconcile breaches:       {c['reconcile_breaches']} (exit {report['reconcile_exit']})",
        f"unresolved / anomalies:   {c['unresolved']} / {c['anomalies']}",
        f"withdrawals lost / reserved twice / unsettled / never told / unresolved: "
        f"{c['withdrawals_lost']} / {c['withdrawals_twice']} / {c['withdrawals_unsettled']} / "
        f"{c['withdrawals_not_told']} / {c['withdrawals_unresolved']}",
        f"credits outside their room's stream: {c.get('credits_outside_their_stream', 0)}",
        f"refunds lost / twice / never told: {c.get('refunds_lost', 0)} / "
        f"{c.get('refunds_twice', 0)} / {c.get('refunds_not_told', 0)}",
        f"fan club joins: {report['joins']['joined']}, "
        f"{report['joins']['resolved']} retried by id after the run",
        f"ledger exported, then verified offline: "
        f"{'yes' if not c.get('ledger_export_not_verified') else 'NO'}",
        f"grants lost / twice / never told: {c['grants_lost']} / {c['grants_twice']} / "
        f"{c['grants_not_told']}",
    ]
    examples = {k: v for k, v in report["examples"].items() if v}
    if examples:
        lines.append(f"examples: {json.dumps(examples)}")
    lines.append("PASSED" if report["passed"] else "FAILED")
    if report.get("work_dir"):
        lines.append(f"work dir kept: {report['work_dir']}")
    return "\n".join(lines)


DEFAULTS = SoakConfig()


def parse_arguments(argv: list[str] | None = None) -> tuple[SoakConfig, Path | None]:
    doc = __doc__ or ""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--seconds", type=float, help="run length in seconds (overrides --minutes)")
    parser.add_argument("--servers", type=int, default=3)
    parser.add_argument("--viewers", type=int, default=40)
    parser.add_argument("--rooms", type=int, default=4)
    parser.add_argument("--inflight", type=int, default=2, help="gifts in flight per viewer")
    pair: dict[str, Any] = {"type": float, "nargs": 2, "metavar": ("MIN", "MAX")}
    parser.add_argument(
        "--chaos-interval", default=DEFAULTS.chaos_interval, help="seconds between kills", **pair
    )
    parser.add_argument(
        "--down-for", default=DEFAULTS.down_for, help="seconds a kill lasts", **pair
    )
    parser.add_argument("--valkey-every", type=int, default=3, help="every n-th kill is Valkey's")
    parser.add_argument(
        "--calm-seconds", type=float, default=60.0, help="first seconds without kills (baseline)"
    )
    parser.add_argument("--seed", type=int)
    parser.add_argument("--work-dir", type=Path, help="keep data and logs here")
    parser.add_argument("--json", type=Path, help="also write the report as JSON to this file")
    args = parser.parse_args(argv)
    config = SoakConfig(
        seconds=args.seconds if args.seconds is not None else args.minutes * 60,
        servers=args.servers,
        viewers=args.viewers,
        rooms=args.rooms,
        inflight=args.inflight,
        chaos_interval=tuple(args.chaos_interval),
        down_for=tuple(args.down_for),
        valkey_every=args.valkey_every,
        calm_seconds=args.calm_seconds,
        seed=args.seed,
        work_dir=args.work_dir,
    )
    return config, args.json


async def run_until_signalled(config: SoakConfig) -> dict[str, Any] | None:
    """The soak; SIGINT or SIGTERM ends it early, its processes stopped, with no report."""
    soak = asyncio.create_task(run_soak(config))
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, soak.cancel)
    try:
        return await soak
    except asyncio.CancelledError:
        return None


def main(argv: list[str] | None = None) -> int:
    config, json_path = parse_arguments(argv)
    report = asyncio.run(run_until_signalled(config))
    if report is None:
        print("soak: interrupted", file=sys.stderr)
        return 130
    print(describe(report))
    if json_path is not None:
        json_path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return 0 if report["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
