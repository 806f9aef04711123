"""``scripts/bench``: giftstream against the machine's baselines, in one run.

Three sections, each baseline measured in the same run as giftstream so that
the ratios hold while the absolute figures move with the neighbours' load:

- money: a minimal gift script (``scripts/bench_minimal_gift.lua``) driven
  by redis-py pipelining 100 calls per round trip (the baseline), giftstream's
  own gift script driven the same way and by a raw pipelined EVALSHA client
  (Valkey's own rate), and giftstream over WebSockets (gifts acknowledged,
  and their ack latency at half that rate), the senders a C program
  (``scripts/bench_clients.c``) so that their own delays stay out of it;
  then what a gift costs Valkey (CPU, commands, time in scripts, bytes of
  its append-only file) for the minimal script and giftstream, closed loop
  and at set offered rates;
- fan-out to one room of V viewers: a bare Python server writing a pre-built
  frame to each transport (the baseline), ``websockets.broadcast()``, a C
  program doing one ``write()`` per connection, and giftstream during a
  gift storm (frames and events delivered); then a big gift's reach to
  every viewer, from the C program, the bare Python server and giftstream,
  read by viewers in C (``scripts/bench_clients.c``, never sleeping);
- memory per idle connection, clients offering permessage-deflate (and the
  CPU each server spends on those connections while they idle): the bare
  ``websockets`` server with compression off (the baseline) and on,
  uvicorn's default WebSocket implementation, and giftstream.

The server under test is pinned to one core and the clients to the other;
Valkey may run on either (on the server's core alone when it is the one
measured). Everything listens on loopback and everything started here is
stopped here.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import platform
import re
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from bench_costs import GiftCosts, Measured, ValkeyAccounts, medians, ratio
from bench_env import cpu_model, server_environment
from bench_money import grant, sender_name
from bench_publish import RoomPublisher
from bench_wsclient import ClientPool, Tally, Target, percentile
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from server.commands.banner import LISTENING
from server.core.auth import Role
from server.core.tokens import issue_token
from server.ops.embedded import EmbeddedValkey
from server.settings import Settings

SCRIPTS = Path(__file__).resolve().parent
REPO_ROOT = SCRIPTS.parent
HOST = "127.0.0.1"
TOKEN_SECRET = "bench-token-secret-" + uuid.uuid4().hex
ROOM = "carol"  # the demo creator, who takes gifts
SUBPROTOCOL = "giftstream.v1.msgpack"
FANOUT_PAYLOAD = 120  # bytes: about one gift event in MessagePack
CHILD_TIMEOUT = 120.0
# Events per second offered to the room in the busy phase of fan-out alone:
# far more than one frame per event could carry to 10,000 viewers, and
# what one process on this machine can keep up with (at 1,000 a second the
# frames grow to 180 events and the kernel copies 800 MB/s; the room fell
# behind by seconds).
BUSY_ROOM_EVENTS_PER_SECOND = 250
# uvicorn's default keepalive ping interval, and giftstream's.
PING_INTERVAL_SECONDS = 20.0
# In the busy phase, one event in this many is a big gift, timed to every viewer.
BUSY_BIG_EVERY = 50
# A quiet room's big gifts come seconds apart, and each reach round (the
# floors' and giftstream's alike) starts this long after every viewer read
# the last. The pause must pass the readers' retransmission timeout (200 ms
# at least on Linux): after such a pause a reader's kernel acks the next
# segment at once instead of delaying its ACK, and on loopback that ACK is
# sent and taken inside the writer's write(). Back to back, a floor's rounds
# came faster than that and its writes went without most ACKs (1.5 packets
# a delivery in the writer instead of 2.0, and a quarter less CPU), while
# giftstream's rounds, slower than 200 ms, never did.
QUIET_ROOM_PAUSE_SECONDS = 0.5


@dataclass(frozen=True)
class Plan:
    viewers: int
    memory_connections: int
    seconds: float
    rounds: int
    # Times the baseline and giftstream are measured in turn, for the money
    # ratio and the one-frame-per-event fan-out ratio: their medians make it.
    pairs: int
    senders: int
    storm_senders: int
    window: int
    # The share of the maximum gift rate at which ack latency is measured.
    latency_fraction: float
    # Offered rates (gifts a second, paced) at which what a gift costs Valkey
    # is measured, besides the closed loop's.
    cost_rates: tuple[float, ...]
    client_processes: int
    server_cpu: int | None
    client_cpu: int | None
    appendfsync: str
    profile_dir: Path | None
    # How long idle connections are left before the CPU of a server that
    # pings them is read, and the least it is read over: its ping interval.
    idle_settle_seconds: float
    # The checkout whose server package giftstream runs from: this one, or
    # another (an earlier commit) to compare with, drivers and baselines
    # staying this one's.
    server_root: Path = REPO_ROOT
    # Settings of every giftstream server of the run, by name (gift_gather_ms="1"),
    # under those a section sets itself.
    server_settings: tuple[tuple[str, str], ...] = ()


@dataclass
class Row:
    section: str
    name: str
    value: float
    unit: str
    ratio: float | None = None
    note: str = ""
    # For fan-out: the same rate per CPU second of the server process, which
    # the neighbours' load moves much less than the wall-clock rate.
    per_cpu: float | None = None
    cpu_ratio: float | None = None
    # The figures of the note, by name, for the JSON report.
    figures: dict[str, float | None] = field(default_factory=dict)


# ---------------------------------------------------------------- processes

_POOLS: list[ClientPool] = []


def client_pool() -> ClientPool:
    """The run's client worker processes, started once (``run`` makes them)."""
    return _POOLS[0]


def raise_fd_limit() -> None:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def pin_all_threads(pid: int, cpus: set[int | None]) -> None:
    """Pin every thread of ``pid`` (Valkey has a few) to these cores; with no
    pinning (one core, or ``--no-pin``), leave it."""
    cores = {cpu for cpu in cpus if cpu is not None}
    if len(cores) < len(cpus):
        return
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(ProcessLookupError):
            os.sched_setaffinity(int(task.name), cores)


def valkey_cores(plan: Plan) -> set[int | None]:
    """Where Valkey runs while giftstream is measured: either core, wherever
    the kernel finds room. Pinned to the clients' core it waited behind them
    (ack latency p99 higher in 5 of 5 runs in turn, medians 91 and 68 ms)."""
    return {plan.server_cpu, plan.client_cpu}


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class CoreTime:
    """The cores' time so far, and how much of it the host gave to others.

    On a virtual machine the host runs other guests on the same cores; the
    time a core was ready to run ours but was not let to is "steal" in
    /proc/stat. It comes in bursts, and it is paid most by a workload that
    sleeps and wakes often, like a gift's round trips: in one paced phase of
    2026-12-01 the host kept 30 to 70% of the cores' time, and the ack p99
    was 213 ms where quieter runs of the same code gave about 20. So a
    latency figure is printed with the steal it was measured under.
    """

    steal: int
    total: int

    @classmethod
    def now(cls) -> CoreTime:
        # cpu  user nice system idle iowait irq softirq steal guest guest_nice;
        # guest time is counted in user already.
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
        return cls(steal=fields[7] if len(fields) == 8 else 0, total=sum(fields))

    def stolen_since(self, before: CoreTime) -> float:
        """The share of the cores' time the host kept since ``before``."""
        return (self.steal - before.steal) / max(1, self.total - before.total)

    def note_since(self, before: CoreTime) -> str:
        return f"the host kept {self.stolen_since(before):.0%} of the cores' time (steal)"


class Child:
    """A child process whose output is read as it comes; stopped by ``stop``."""

    def __init__(self, process: asyncio.subprocess.Process, name: str) -> None:
        self.process = process
        self.name = name
        self.lines: asyncio.Queue[str] = asyncio.Queue()
        self.errors: list[str] = []
        self._readers = [
            asyncio.create_task(self._read(process.stdout, self.lines.put_nowait)),
            asyncio.create_task(self._read(process.stderr, self.errors.append)),
        ]

    @classmethod
    async def start(
        cls,
        name: str,
        argv: Sequence[str],
        cpu: int | None,
        env: dict[str, str] | None = None,
        cwd: Path = REPO_ROOT,
    ) -> Child:
        def prepare() -> None:
            raise_fd_limit()
            if cpu is not None:
                os.sched_setaffinity(0, {cpu})

        process = await asyncio.create_subprocess_exec(
            *argv,
            cwd=cwd,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            preexec_fn=prepare,
            limit=1 << 20,
        )
        return cls(process, name)

    @staticmethod
    async def _read(stream: asyncio.StreamReader | None, sink: Callable[[str], None]) -> None:
        assert stream is not None
        async for raw in stream:
            sink(raw.decode(errors="replace").rstrip("\n"))

    async def line(self, pattern: str, within: float = CHILD_TIMEOUT) -> re.Match[str]:
        deadline = time.monotonic() + within
        while True:
            remaining = deadline - time.monotonic()
            try:
                text = await asyncio.wait_for(self.lines.get(), max(0.01, remaining))
            except TimeoutError:
                await self.fail(f"printed no line matching {pattern!r} within {within:g} s")
            found = re.search(pattern, text)
            if found:
                return found

    async def say(self, line: str) -> None:
        """One line to its stdin."""
        stdin = self.process.stdin
        assert stdin is not None
        stdin.write(line.encode() + b"\n")
        await stdin.drain()

    async def json_line(self, within: float = CHILD_TIMEOUT) -> dict[str, Any]:
        found = await self.line(r"^\{.*\}$", within)
        result: dict[str, Any] = json.loads(found.group(0))
        return result

    async def fail(self, why: str) -> None:
        await self.stop()
        tail = "\n".join(self.errors[-20:])
        raise RuntimeError(f"{self.name} {why}; its stderr:\n{tail}")

    async def stop(self, sig: signal.Signals | None = None) -> None:
        """Close its stdin (or send ``sig``); SIGKILL if it lingers."""
        process = self.process
        if process.returncode is None:
            if sig is None and process.stdin is not None:
                process.stdin.close()
            elif sig is not None:
                with contextlib.suppress(ProcessLookupError):
                    process.send_signal(sig)
            try:
                await asyncio.wait_for(process.wait(), 15)
            except TimeoutError:
                process.kill()
                await process.wait()
        await asyncio.wait(self._readers, timeout=5)


@contextlib.asynccontextmanager
async def child(
    name: str,
    argv: Sequence[str],
    cpu: int | None,
    env: dict[str, str] | None = None,
    cwd: Path = REPO_ROOT,
) -> AsyncIterator[Child]:
    started = await Child.start(name, argv, cpu, env, cwd)
    try:
        yield started
    finally:
        await started.stop()


# ---------------------------------------------------------------- giftstream


@contextlib.asynccontextmanager
async def giftstream(
    redis_url: str, prefix: str, plan: Plan, work: Path, **settings: str
) -> AsyncIterator[tuple[Child, int]]:
    """A ``giftstream serve`` process; ``settings`` as GIFTSTREAM_<NAME> variables."""
    argv = [sys.executable, "-m", "server", "serve", "--port", "0"]
    argv += ["--redis-url", redis_url, "--key-prefix", prefix]
    env = server_environment(
        TOKEN_SECRET, work / f"data-{prefix}", **{**dict(plan.server_settings), **settings}
    )
    if plan.server_root != REPO_ROOT:
        # ``-m server`` then finds that checkout's package before this one's.
        env["PYTHONPATH"] = str(plan.server_root)
    async with child("giftstream", argv, plan.server_cpu, env, plan.server_root) as server:
        found = await server.line(re.escape(LISTENING) + r" http://[^:]+:(\d+)")
        port = int(found.group(1))
        await wait_ready(port)
        yield server, port
        # Viewers leave first; the server then stops with nothing to drain.
        await server.stop(signal.SIGTERM)


async def wait_ready(port: int) -> None:
    async with httpx.AsyncClient(base_url=f"http://{HOST}:{port}", timeout=2.0) as client:
        for _ in range(300):
            with contextlib.suppress(httpx.TransportError):
                if (await client.get("/readyz")).status_code == 200:
                    return
            await asyncio.sleep(0.1)
    raise RuntimeError("giftstream never became ready")


async def rewrite_aof_only_when_asked(redis_url: str) -> None:
    """Turn off Valkey's own rewrites of its append-only file: ``compact_aof``
    rewrites it between the timed phases instead.

    With ``appendfsync always`` a rewrite stalls every write for up to a
    second or two (docs/deployment.md, which advises rewrites at quiet
    hours). Left to Valkey, one starts whenever the file has doubled since
    the last: compacting before a phase was meant to keep that out of it,
    but a paced phase of 10 s at 1,872 gifts/s still saw two start
    (2026-12-01; the file's base, written in Valkey's compact snapshot
    format, is small against the commands appended after it). A rewrite's
    cost is measured on its own in docs/benchmarks.md ("Ten-minute storm").
    """
    redis = Redis.from_url(redis_url)
    try:
        await redis.config_set("auto-aof-rewrite-percentage", 0)
    finally:
        await redis.aclose()


# Valkey's latency monitor records, per second, its longest stall of each
# kind past this: an fsync of the append-only file, a slow command. An ack
# waits for the fsync that follows its script (``appendfsync always``), and
# Valkey serves nobody while it fsyncs.
STALL_MS = 5


async def watch_valkey_stalls(redis_url: str) -> None:
    """From now on, Valkey's own record of its stalls over ``STALL_MS``."""
    redis = Redis.from_url(redis_url)
    try:
        await redis.config_set("latency-monitor-threshold", STALL_MS)
        await redis.latency_reset()
    finally:
        await redis.aclose()


async def valkey_stalls(redis_url: str) -> str:
    """What Valkey recorded since ``watch_valkey_stalls``: for each kind of
    stall, in how many seconds one came, and the longest."""
    redis = Redis.from_url(redis_url)
    try:
        latest = await redis.latency_latest()
        kinds: dict[str, list[int]] = {}
        for entry in latest:
            kind = entry[0].decode() if isinstance(entry[0], bytes) else str(entry[0])
            history = await redis.latency_history(kind)
            kinds[kind] = [int(milliseconds) for _, milliseconds in history]
    finally:
        await redis.aclose()
    return stalls_note(kinds)


def stalls_note(kinds: dict[str, list[int]]) -> str:
    """``kinds``: each kind of stall's longest, in ms, in each second it came."""
    if not any(kinds.values()):
        return f"Valkey stalled over {STALL_MS} ms in no second"
    parts = [
        f"{kind} in {len(seconds)} s (longest {max(seconds)} ms)"
        for kind, seconds in sorted(kinds.items(), key=lambda kv: -max(kv[1], default=0))
        if seconds
    ]
    return f"Valkey stalled over {STALL_MS} ms: " + ", ".join(parts)


async def compact_aof(redis_url: str, within: float = 60.0) -> None:
    """Rewrite Valkey's append-only file now, and wait for the rewrite to end,
    so that the file each timed phase appends to starts small."""
    redis = Redis.from_url(redis_url)
    try:
        with contextlib.suppress(ResponseError):  # "already in progress"
            await redis.bgrewriteaof()
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            state = await redis.info("persistence")
            if not state.get("aof_rewrite_in_progress") and not state.get("aof_rewrite_scheduled"):
                return
            await asyncio.sleep(0.1)
        raise RuntimeError(f"Valkey's AOF rewrite did not end within {within:g} s")
    finally:
        await redis.aclose()


async def sender_queries(redis_url: str, prefix: str, senders: int) -> list[str]:
    """Coins for each sender (the recharge script), and a token each."""
    redis = Redis.from_url(redis_url)
    try:
        await grant(redis, Settings(key_prefix=prefix), senders)
    finally:
        await redis.aclose()
    now = time.time()
    return [
        "?token=" + issue_token(TOKEN_SECRET, sender_name(i), Role.VIEWER, now, 3600)
        for i in range(senders)
    ]


@contextlib.asynccontextmanager
async def profiled(server: Child, plan: Plan, name: str) -> AsyncIterator[None]:
    """py-spy records the server while the block runs, when --profile asks."""
    spy = shutil.which("py-spy") or shutil.which("py-spy", path=str(Path(sys.executable).parent))
    if plan.profile_dir is None or spy is None:
        yield
        return
    plan.profile_dir.mkdir(parents=True, exist_ok=True)
    out = plan.profile_dir / f"{name}.txt"
    argv = [spy, "record", "--pid", str(server.process.pid), "--format", "raw"]
    argv += ["--output", str(out), "--rate", "200", "--nonblocking"]
    async with child("py-spy", argv, plan.client_cpu) as recorder:
        yield
        await recorder.stop(signal.SIGINT)


# ---------------------------------------------------------------- money


async def money(valkey: EmbeddedValkey, plan: Plan, work: Path) -> list[Row]:
    redis_url = valkey.url
    argv = [sys.executable, str(SCRIPTS / "bench_money.py")]
    common = ["--url", redis_url, "--seconds", str(plan.seconds)]
    common += ["--senders", str(plan.senders), "--depth", "100"]

    async def baselines() -> tuple[Measured, Measured]:
        """The minimal script, then gift.lua, each pipelined by redis-py."""
        minimal = await driven("minimal driver", [*argv, "minimal", *common], plan, redis_url)
        gift_lua = await driven("redis-py driver", [*argv, "redis-py", *common], plan, redis_url)
        return minimal, gift_lua

    # Here Valkey is the server under test: it takes the server core.
    pin_all_threads(valkey.pid, {plan.server_cpu})
    try:
        async with child("raw EVALSHA driver", [*argv, "raw", *common], plan.client_cpu) as driver:
            raw = (await driver.json_line())["gifts_per_second"]
    finally:
        pin_all_threads(valkey.pid, valkey_cores(plan))
    gifts = await giftstream_gifts(redis_url, plan, work, baselines)
    minimal = medians([turn.minimal for turn in gifts.turns])
    gift_lua = medians([turn.gift_lua for turn in gifts.turns])
    ours = medians([turn.giftstream for turn in gifts.turns])
    offered = ours.rate * plan.latency_fraction
    progress(f"  redis-py: the gift script paced at {offered:,.0f} gifts/s, timed")
    paced_argv = [*argv, "paced", *common, "--rate", f"{offered:.0f}"]
    await compact_aof(redis_url)  # as before giftstream's paced phase
    await watch_valkey_stalls(redis_url)
    cores_before = CoreTime.now()
    async with child("paced redis-py driver", paced_argv, plan.server_cpu) as driver:
        floor = await driver.json_line()
    floor["steal"] = CoreTime.now().note_since(cores_before)
    floor["stalls"] = await valkey_stalls(redis_url)
    minimal_at: dict[float, Measured] = {}
    for rate in plan.cost_rates:
        progress(f"  redis-py: the minimal script paced at {rate:,.0f} gifts/s, its costs")
        rated = [*argv, "paced", *common, "--script", "minimal", "--rate", f"{rate:.0f}"]
        minimal_at[rate] = await driven("paced minimal driver", rated, plan, redis_url)
    return [
        Row("money", "Valkey's own rate (raw pipelined EVALSHA of gift.lua)", raw, "gifts/s",
            ratio(raw, minimal.rate)),
        Row("money", "minimal gift script, redis-py pipelines of 100 (baseline)", minimal.rate,
            "gifts/s", 1.0, turns_note(gifts.turns)),
        Row("money", "gift.lua, giftstream's script, redis-py pipelines of 100", gift_lua.rate,
            "gifts/s", ratio(gift_lua.rate, minimal.rate)),
        Row("money", "giftstream, gifts acked over WebSockets", ours.rate, "gifts/s",
            ratio(ours.rate, minimal.rate), acked_note(plan, gifts.errors)),
        ack_floor_row(floor, plan.latency_fraction),
        ack_latency_row(gifts.paced, plan.latency_fraction, gifts.server_acks),
        *cost_rows(minimal, gift_lua, ours, minimal_at, gifts.at_rates),
    ]  # fmt: skip


async def driven(name: str, argv: list[str], plan: Plan, redis_url: str) -> Measured:
    """A ``bench_money.py`` driver's rate, and what Valkey spent a gift over its
    timed phase alone (its set-up done before Valkey's accounts are first read)."""
    async with child(name, [*argv, "--ready"], plan.server_cpu) as driver:
        await driver.line(r"^ready$")
        before = await ValkeyAccounts.read(redis_url)
        await driver.say("go")
        result = await driver.json_line()
        after = await ValkeyAccounts.read(redis_url)
    costs = GiftCosts.between(before, after, int(result["gifts"]), float(result["seconds"]))
    return Measured(float(result["gifts_per_second"]), costs)


@dataclass(frozen=True)
class MoneyTurn:
    """One turn of the three closed loops, run one after the other."""

    minimal: Measured
    gift_lua: Measured
    giftstream: Measured


def turns_note(turns: Sequence[MoneyTurn]) -> str:
    """Each turn's three rates, when there was more than one: the medians hide the spread."""
    if len(turns) < 2:
        return ""
    return f"medians of {len(turns)} turns, minimal / gift.lua / giftstream: " + ", ".join(
        f"{turn.minimal.rate:,.0f} / {turn.gift_lua.rate:,.0f} / {turn.giftstream.rate:,.0f}"
        for turn in turns
    )


def acked_note(plan: Plan, errors: dict[str, int]) -> str:
    note = f"{plan.senders} senders x {plan.window} in flight"
    if errors:
        note += "; errors: " + ", ".join(f"{k} {v}" for k, v in errors.items())
    return note


def cost_rows(
    minimal: Measured,
    gift_lua: Measured,
    ours: Measured,
    minimal_at: dict[float, Measured],
    ours_at: dict[float, Measured],
) -> list[Row]:
    """What a gift cost Valkey, closed loop and at each paced rate; each ratio is
    over the minimal script's at the same load."""
    rows = [
        cost_row("minimal script (baseline)", "closed loop", minimal, minimal),
        cost_row("gift.lua, redis-py", "closed loop", gift_lua, minimal),
        cost_row("giftstream", "closed loop", ours, minimal),
    ]
    for rate in sorted(minimal_at):
        load = f"{rate:,.0f} gifts/s offered"
        rows.append(cost_row("minimal script (baseline)", load, minimal_at[rate], minimal_at[rate]))
        if rate in ours_at:
            rows.append(cost_row("giftstream", load, ours_at[rate], minimal_at[rate]))
    return rows


def cost_row(what: str, load: str, measured: Measured, baseline: Measured) -> Row:
    """Valkey's CPU per gift; the other figures a gift, and its rate, in the note."""
    costs = measured.costs
    return Row(
        "money",
        f"Valkey CPU per gift, {load}: {what}",
        costs.valkey_us,
        "us/gift",
        ratio(costs.valkey_us, baseline.costs.valkey_us),
        measured.note(),
        figures={**costs.figures(), **measured.figures()},
    )


def ack_floor_row(floor: dict[str, Any], fraction: float) -> Row:
    """The gift script's own latency at the paced rate, from redis-py with nothing in front."""
    latency = floor["latency_ms"]
    note = (
        f"{floor['gifts_per_second']:,.0f} gifts/s, one pipeline per 5 ms; p50 "
        f"{latency['p50']:.1f} ms, p99.9 {latency['p99.9']:.1f} ms, max {latency['max']:.1f} ms; "
        f"the driver's loop woke late by p99 {floor['late_ms']:.1f} ms; {floor['steal']}; "
        f"{floor['stalls']}"
    )
    name = f"redis-py, gift script latency p99 at {fraction:.0%} of giftstream's rate (floor)"
    return Row("money", name, latency["p99"], "ms", None, note)


def ack_latency_row(paced: Tally, fraction: float, server_acks: str) -> Row:
    """Ack latency p99 (ms) while the senders offer ``fraction`` of the rate reached."""
    name = f"giftstream, ack latency p99 at {fraction:.0%} of that rate"
    histogram = paced.ack_tenths_ms
    p50, p99, p999 = (percentile(histogram, q) for q in (0.50, 0.99, 0.999))
    if p99 is None or p50 is None or p999 is None:
        return Row("money", name, float("nan"), "ms")
    errors = ", ".join(f"{k} {v}" for k, v in paced.errors.items()) or "no errors"
    note = (
        f"{paced.acks / paced.seconds:,.0f} gifts/s acked, paced; p50 {p50 / 10:.1f} ms, "
        f"p99.9 {p999 / 10:.1f} ms, max {max(histogram) / 10:.1f} ms; {errors}; {server_acks}"
    )
    lag = percentile(paced.pace_lag_tenths_ms, 0.99)
    if lag is not None:
        note += f"; the clients' own loops woke late by p99 {lag / 10:.1f} ms"
    return Row("money", name, p99 / 10, "ms", None, note)


@dataclass(frozen=True)
class GiftstreamMoney:
    """giftstream's money phases: each turn's closed loops (the baselines' and its
    own), the errors its senders met, its paced ack latency, and what a gift cost
    Valkey at each of ``Plan.cost_rates``."""

    turns: list[MoneyTurn]
    errors: dict[str, int]
    paced: Tally
    server_acks: str
    at_rates: dict[float, Measured]


async def giftstream_gifts(
    redis_url: str,
    plan: Plan,
    work: Path,
    baselines: Callable[[], Awaitable[tuple[Measured, Measured]]],
) -> GiftstreamMoney:
    """Gifts acked per second with every sender keeping ``window`` in flight (the most
    the server takes), each time just after a run of ``baselines``: the machine's
    speed moves between minutes, so ``pairs`` turns of all. Then ack latency with the
    same senders offering a share of the median (half, unless ``--latency-fraction``
    says otherwise), and the costs at each of ``cost_rates``."""
    turns: list[MoneyTurn] = []
    errors: dict[str, int] = {}
    binary = await compile_c(work, "bench_clients")
    for turn in range(1, plan.pairs + 1):
        # With no giftstream process up: one idling on the baseline's core
        # with 500 sockets (sweeps, pings) cost the baseline about a tenth.
        minimal, gift_lua = await baselines()
        prefix = "bg" + uuid.uuid4().hex[:8]
        queries = await sender_queries(redis_url, prefix, plan.senders)
        async with (
            giftstream(redis_url, prefix, plan, work) as (server, port),
            c_clients(binary, room_target(port), plan, work, queries) as (senders, opened),
        ):
            check_opened(opened, plan.senders, "gift senders")
            await compact_aof(redis_url)
            async with profiled(server, plan, "gifts"):
                ours, tally = await giftstream_phase(
                    redis_url, server, port, senders, plan, plan.window
                )
            turns.append(MoneyTurn(minimal, gift_lua, ours))
            for code, count in tally.errors.items():
                errors[code] = errors.get(code, 0) + count
            if turn == plan.pairs:
                acked = statistics.median(turn.giftstream.rate for turn in turns)
                paced, server_acks = await paced_gifts(
                    redis_url, server, port, senders, plan, acked
                )
                at_rates = await giftstream_costs(redis_url, server, port, senders, plan)
    return GiftstreamMoney(turns, errors, paced, server_acks, at_rates)


async def giftstream_phase(
    redis_url: str,
    server: Child,
    port: int,
    senders: CClients,
    plan: Plan,
    window: int = 0,
    rate: float = 0.0,
) -> tuple[Measured, Tally]:
    """The senders for ``plan.seconds``, each keeping ``window`` gifts in flight, or
    ``rate`` gifts a second in all, paced: the rate acked, and what Valkey and the
    server spent per gift the server committed, over the phase and until every
    gift was settled."""
    accounts, committed = await ValkeyAccounts.read(redis_url), await gifts_committed(port)
    server_cpu = cpu_seconds(server.process.pid)
    await senders.start(window=window, rate=rate)
    await asyncio.sleep(plan.seconds)
    tally = await senders.stop()
    settling = await until_settled(port)
    gifts = await gifts_committed(port) - committed
    spent = await ValkeyAccounts.read(redis_url)
    server_us = (cpu_seconds(server.process.pid) - server_cpu) / max(gifts, 1) * 1e6
    costs = GiftCosts.between(accounts, spent, gifts, tally.seconds, settling)
    return Measured(tally.acks / tally.seconds, costs, server_us), tally


async def giftstream_costs(
    redis_url: str, server: Child, port: int, senders: CClients, plan: Plan
) -> dict[float, Measured]:
    """What a gift costs Valkey (and the server) with the senders offering each of
    ``plan.cost_rates``."""
    costs: dict[float, Measured] = {}
    for rate in plan.cost_rates:
        progress(f"  giftstream: {rate:,.0f} gifts/s offered, paced, their costs")
        await until_settled(port)
        await compact_aof(redis_url)
        costs[rate], _ = await giftstream_phase(redis_url, server, port, senders, plan, rate=rate)
    return costs


class CClients:
    """Sockets of ``scripts/bench_clients.c``, told over stdin: gift senders and viewers.

    In C so that the load generator's own delays stay out of what it times:
    the Python senders used 40% of their core at half the maximum gift
    rate, their loops waking 15 to 25 ms late at p99; read by 10,000 Python
    viewers, a C server's reach floor came out at 144 to 167 ms (119 to 122
    ms read by these).
    """

    def __init__(self, process: Child) -> None:
        self.process = process

    async def _command(self, line: str) -> None:
        await self.process.say(line)

    async def _tally(self, command: str) -> Tally:
        await self._command(command)
        tally = Tally()
        tally.merge(await self.process.json_line())
        return tally

    async def start(self, window: int = 0, rate: float = 0.0) -> None:
        """Count from now; senders keep ``window`` gifts in flight each, or send
        ``rate`` a second in all, or (neither) nothing."""
        if window:
            await self._command(f"window {window}")
        elif rate:
            await self._command(f"rate {rate:.3f}")
        else:
            await self._command("start")
        # Until it answers, what the server sends next might go uncounted.
        await self.process.json_line()

    async def peek(self) -> Tally:
        return await self._tally("peek")

    async def stop(self) -> Tally:
        return await self._tally("stop")


def room_target(port: int) -> Target:
    """giftstream's room, whose first frame to each socket is its welcome.

    Its Python viewers and the C gift senders offer permessage-deflate, as
    browsers do, and so get a busy room's frames compressed; the C viewers
    (``bench_clients.c``, which time a big gift's reach) offer nothing, and
    get every frame as it is.
    """
    return Target(
        HOST, port, f"/ws/rooms/{ROOM}", SUBPROTOCOL, deflate=True, events=True, welcome=True
    )


@contextlib.asynccontextmanager
async def c_clients(
    binary: Path,
    target: Target,
    plan: Plan,
    work: Path,
    queries: Sequence[str] = (),
    viewers: int = 0,
) -> AsyncIterator[tuple[CClients, Tally]]:
    """A gift sender per query string and ``viewers`` more sockets, all open on entry."""
    argv = [str(binary), "-v", str(viewers), "-b"] if viewers else [str(binary)]
    if queries:
        listed = work / "sender-queries.txt"
        listed.write_text("".join(query + "\n" for query in queries))
        argv += ["-s", str(listed)]
    if target.subprotocol:
        argv += ["-p", target.subprotocol]
    if target.welcome:
        argv.append("-w")
    if target.deflate:
        argv.append("-z")  # the senders offer it; the C viewers never do
    argv += [target.host, str(target.port), target.path]
    async with child("C clients", argv, plan.client_cpu) as process:
        # The program gives up opening after 120 s, and then says how many did.
        counts = await process.json_line(within=CHILD_TIMEOUT + 30.0)
        yield CClients(process), Tally(opened=counts["opened"], failed=counts["failed"])


async def paced_gifts(
    redis_url: str,
    server: Child,
    port: int,
    senders: CClients,
    plan: Plan,
    acked: float,
) -> tuple[Tally, str]:
    """The senders offer a share of the median acked rate; what they and the server timed.

    First the server settles what the closed loop left in its queue: the
    steady state at that rate is what is measured, not a storm's aftermath.
    """
    drained = await until_settled(port)
    await compact_aof(redis_url)
    offered = acked * plan.latency_fraction
    progress(f"  giftstream: ack latency at {offered:,.0f} gifts/s")
    text_before = await metrics_text(port)
    before = ack_buckets(text_before)
    pids = {"server": server.process.pid, "senders": senders.process.process.pid}
    costs_before = await PathCosts.now(redis_url, pids)
    await watch_valkey_stalls(redis_url)
    async with profiled(server, plan, "gifts-paced"):
        await senders.start(rate=offered)
        await asyncio.sleep(plan.seconds)
        paced = await senders.stop()
    costs = (await PathCosts.now(redis_url, pids)).since(costs_before, paced.acks)
    stalls = await valkey_stalls(redis_url)
    text_after = await metrics_text(port)
    summary = server_ack_summary(before, ack_buckets(text_after))
    sharing = script_sharing(text_before, text_after)
    drain = f"settlement caught up with the closed loop in {drained:.1f} s first"
    return paced, f"{summary}; {sharing}; {costs}; {stalls}; {drain}"


@dataclass(frozen=True)
class PathCosts:
    """CPU seconds of the processes on a gift's path, and Valkey's own accounts, at one moment.

    Where a paced gift's time goes, in every run: how busy each process
    was, and how Valkey's share splits between the scripts' own running and
    the commands they call (``INFO commandstats`` times both; a command
    called from a script counts under its own name too).
    """

    at: float
    cores: CoreTime
    process_cpu: dict[str, float]
    valkey: ValkeyAccounts

    @classmethod
    async def now(cls, redis_url: str, pids: dict[str, int]) -> PathCosts:
        return cls(
            at=time.monotonic(),
            cores=CoreTime.now(),
            process_cpu={name: cpu_seconds(pid) for name, pid in pids.items()},
            valkey=await ValkeyAccounts.read(redis_url),
        )

    def since(self, before: PathCosts, gifts: int) -> str:
        """What the interval from ``before`` cost, per second and per gift."""
        seconds, gifts = max(self.at - before.at, 1e-9), max(gifts, 1)

        def share(used: float) -> str:
            return f"{used / seconds:.0%} of a core, {used / gifts * 1e6:,.0f} us a gift"

        processes = ", ".join(
            f"{name} ({share(self.process_cpu[name] - before.process_cpu[name])})"
            for name in self.process_cpu
        )
        valkey = share(self.valkey.cpu_seconds - before.valkey.cpu_seconds)
        each = GiftCosts.between(before.valkey, self.valkey, gifts, seconds)
        rewrites = self.valkey.aof_rewrites - before.valkey.aof_rewrites
        return (
            f"CPU while paced: {processes}, Valkey ({valkey}: scripts {each.script_us:,.0f} us; "
            f"{each.commands:.1f} commands a gift counting the scripts, {each.command_us:,.0f} "
            f"us in the commands, most called from scripts); "
            f"{self.cores.note_since(before.cores)}; "
            f"Valkey started rewriting its append-only file {rewrites} times"
        )


SETTLEMENT_QUEUE = re.compile(r"^giftstream_settlement_queue (\S+)$", re.MULTILINE)
GIFTS_COMMITTED = "giftstream_gifts_total"


async def until_settled(port: int, within: float = 60.0) -> float:
    """Seconds until every gift sent is settled (or ``within`` passed): the server's
    settlement queue empty, and its count of gifts committed still since the last look."""
    started = time.monotonic()
    last: float | None = None
    while time.monotonic() - started < within:
        text = await metrics_text(port)
        found = SETTLEMENT_QUEUE.search(text or "")
        committed = None if text is None else metric_sum(text, GIFTS_COMMITTED)
        if found is not None and float(found.group(1)) == 0 and committed == last:
            break
        last = committed
        await asyncio.sleep(0.2)
    return time.monotonic() - started


async def gifts_committed(port: int) -> int:
    """Gifts the server has committed so far (duplicates excluded), by its /metrics."""
    text = await metrics_text(port)
    if text is None:
        raise RuntimeError("giftstream's /metrics did not answer within 10 s")
    return int(metric_sum(text, GIFTS_COMMITTED))


def check_opened(tally: Tally, wanted: int, what: str) -> None:
    if tally.opened < wanted:
        raise RuntimeError(
            f"only {tally.opened} of {wanted} {what} connected: {dict(tally.errors)}"
        )


# ---------------------------------------------------------------- fan-out


async def compile_c(work: Path, name: str) -> Path:
    """``scripts/<name>.c`` built into ``work``."""
    binary = work / name
    source = SCRIPTS / f"{name}.c"
    gcc = await asyncio.create_subprocess_exec("gcc", "-O2", "-o", str(binary), str(source))
    if await gcc.wait() != 0:
        raise RuntimeError(f"gcc could not build scripts/{name}.c")
    return binary


async def baseline_fanout(name: str, argv: list[str], plan: Plan) -> tuple[float, float, str]:
    """Frames per second of one baseline server's write loop, checked by the readers."""
    progress(f"  {name}")
    pool = client_pool()
    try:
        async with child(name, argv, plan.server_cpu) as server:
            port = int((await server.line(r"^PORT (\d+)$")).group(1))
            await pool.start()
            check_opened(
                await pool.open(Target(HOST, port, "/"), [""] * plan.viewers),
                plan.viewers,
                "viewers",
            )
            result = await server.json_line()
            expected = plan.viewers * plan.rounds
            tally = await until_frames(pool, expected)
            await pool.close_sockets()
    finally:
        await pool.close_sockets()
    rate = result["frames"] / result["seconds"]
    per_cpu = result["frames"] / max(result["cpu_seconds"], 1e-6)
    note = f"{tally.frames:,} of {expected:,} frames read"
    return rate, per_cpu, note


async def baseline_reach(
    name: str, argv: list[str], plan: Plan, work: Path, clients: Path
) -> dict[str, Any]:
    """A baseline's big-gift reach: ``rounds`` stamped frames, each sent a quiet
    room's pause after every viewer read the one before, timed by the same
    readers as giftstream's (``scripts/bench_clients.c``)."""
    progress(f"  {name}")
    async with child(name, argv, plan.server_cpu) as server:
        port = int((await server.line(r"^PORT (\d+)$")).group(1))
        target = Target(HOST, port, "/")
        async with c_clients(clients, target, plan, work, viewers=plan.viewers) as (
            viewers,
            opened,
        ):
            check_opened(opened, plan.viewers, "viewers")
            stdin = server.process.stdin
            assert stdin is not None
            await viewers.start()
            costs = RoundCosts(server.process.pid)
            for sent in range(1, plan.rounds + 1):
                await asyncio.sleep(QUIET_ROOM_PAUSE_SECONDS)
                with costs.round():
                    stdin.write(b"next\n")
                    await stdin.drain()
                    await until_frames_seen(viewers, plan.viewers * sent)
            tally = await viewers.stop()
            await server.json_line()
    return reach(tally, costs)


async def until_frames(pool: ClientPool, expected: int, within: float = 60.0) -> Tally:
    deadline = time.monotonic() + within
    tally = await pool.peek()
    while tally.frames < expected and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
        tally = await pool.peek()
    return await pool.stop()


async def fanout(redis_url: str, plan: Plan, work: Path) -> list[Row]:
    python = [sys.executable, str(SCRIPTS / "bench_servers.py")]
    sizes = ["--viewers", str(plan.viewers), "--rounds", str(plan.rounds)]
    sizes += ["--payload", str(FANOUT_PAYLOAD)]
    binary = await compile_c(work, "bench_fanout")
    c_argv = [str(binary), str(plan.viewers), str(plan.rounds), str(FANOUT_PAYLOAD)]
    c_rate, c_cpu, c_note = await baseline_fanout("C fan-out", c_argv, plan)
    clients = await compile_c(work, "bench_clients")
    c_reach = await baseline_reach("C reach", [*c_argv, "reach"], plan, work, clients)
    raw_reach = await baseline_reach(
        "raw reach", [*python, "raw-reach", *sizes], plan, work, clients
    )
    ws_rate, ws_cpu, ws_note = await baseline_fanout(
        "broadcast fan-out", [*python, "broadcast-fanout", *sizes], plan
    )
    # The machine's speed for this loop moves by a fifth between minutes:
    # the baseline and giftstream are measured in turn, and the medians kept.
    raws, ours = [], []
    for _ in range(plan.pairs):
        raws.append(await baseline_fanout("raw fan-out", [*python, "raw-fanout", *sizes], plan))
        ours.append(await giftstream_frame_rate(redis_url, plan, work))
    raw_rate = statistics.median(rate for rate, _, _ in raws)
    raw_cpu = statistics.median(per_cpu for _, per_cpu, _ in raws)
    raw_note = raws[-1][2] + _pairs_note(raws, ours)
    per_frame_alone = {
        "frames": statistics.median(result["frames"] for result in ours),
        "frames_per_cpu": statistics.median(result["frames_per_cpu"] for result in ours),
        "note": ours[-1]["note"],
    }
    alone = await giftstream_fanout_alone(redis_url, plan, work, clients)
    storm = await giftstream_storm(redis_url, plan, work)
    gs_rate, gs_cpu = storm["frames"], storm["frames_per_cpu"]
    per_frame = storm["events"] / gs_rate if gs_rate else 0.0
    lift = alone["busy_events_per_cpu"] / max(per_frame_alone["frames_per_cpu"], 1e-6)

    def row(name: str, rate: float, per_cpu: float, note: str) -> Row:
        return Row(
            "fan-out", name, rate, "frames/s", rate / raw_rate, note, per_cpu, per_cpu / raw_cpu
        )

    return [
        row(f"C, one write() per connection ({plan.viewers:,} viewers)", c_rate, c_cpu, c_note),
        row("Python, pre-built frame to each transport (baseline)", raw_rate, raw_cpu, raw_note),
        row("websockets broadcast()", ws_rate, ws_cpu, ws_note),
        row("giftstream, one event per frame (published to the room, no gifts)",
            per_frame_alone["frames"], per_frame_alone["frames_per_cpu"], per_frame_alone["note"]),
        Row("fan-out", f"giftstream, busy room: {BUSY_ROOM_EVENTS_PER_SECOND:,} events/s published",
            alone["busy_events"], "events/s", None, alone["busy_note"],
            alone["busy_events_per_cpu"], lift),
        row("giftstream, frames delivered in a gift storm", gs_rate, gs_cpu, storm["note"]),
        Row("fan-out", "giftstream, events delivered in that storm", storm["events"], "events/s",
            per_frame, "ratio: events per frame (coalescing)"),
        reach_row("C, one write() per connection", c_reach, kind="floor"),
        reach_row("Python, pre-built frame to each transport", raw_reach, kind="floor"),
        reach_row("quiet room", alone["quiet_reach"], "; " + alone["quiet_note"]),
        reach_row(f"busy room ({BUSY_ROOM_EVENTS_PER_SECOND:,} events/s)", alone["busy_reach"]),
    ]  # fmt: skip


def _pairs_note(raws: list[tuple[float, float, str]], ours: list[dict[str, Any]]) -> str:
    """Each turn's two rates, when there was more than one: the medians hide the spread."""
    if len(raws) < 2:
        return ""
    turns = ", ".join(
        f"{raw[0]:,.0f} vs {mine['frames']:,.0f}" for raw, mine in zip(raws, ours, strict=True)
    )
    return f"; medians of {len(raws)} turns, this loop vs giftstream one-per-frame: {turns}"


def reach_row(where: str, figures: dict[str, Any], more: str = "", kind: str = "") -> Row:
    """A big gift's p99 reach to every viewer, in ms; the other figures in the note.

    ``kind`` "floor" is a baseline's: from its first write of the frame, which
    it stamps, to each viewer's read; giftstream's runs from the event's
    publication to Redis.
    """
    p99 = figures["p99"]
    start = "the frame's first write" if kind == "floor" else "the event's publication"
    # What one viewer costs the writing process: the floor's is mostly the
    # kernel's write() on loopback, which pays for the reader's side too.
    cost = (
        "" if figures["cpu_us"] is None else f"; server CPU {figures['cpu_us']:.1f} us a delivery"
    )
    # 1 data segment a delivery, plus the reader's ACK when it acks at once.
    if figures.get("segments") is not None:
        cost += f", {figures['segments']:.2f} TCP segments"
    if figures.get("steal") is not None:
        cost += f"; the host kept {figures['steal']:.0%} of the cores' time (steal)"
    note = (
        f"p50 {figures['p50']} ms, max {figures['max']} ms over {figures['samples']:,} "
        f"deliveries; from {start} to each viewer's read{cost}{more}"
    )
    name = (
        f"{where}: a stamped frame reaches every viewer, p99 (reach floor)"
        if kind == "floor"
        else f"giftstream, a big gift reaches every viewer: p99, {where}"
    )
    return Row("fan-out", name, float("nan") if p99 is None else p99, "ms", None, note)


async def giftstream_frame_rate(redis_url: str, plan: Plan, work: Path) -> dict[str, Any]:
    """giftstream's write loop against the baselines': ``rounds`` events at once, each a frame.

    The server runs with no coalescing tick (``coalesce_tick_ms`` 0), so each
    event goes out as a frame of its own as soon as it arrives, back to back
    as the baselines write theirs.
    """
    progress("  giftstream: one frame per event, no coalescing")
    prefix = "bt" + uuid.uuid4().hex[:8]
    pool = client_pool()
    expected = plan.viewers * plan.rounds
    try:
        async with (
            giftstream(redis_url, prefix, plan, work, coalesce_tick_ms="0") as (server, port),
            RoomPublisher(redis_url, prefix, ROOM) as publisher,
        ):
            target = room_target(port)
            check_opened(await pool.open(target, [""] * plan.viewers), plan.viewers, "viewers")
            pid = server.process.pid
            await asyncio.sleep(2.5)  # the welcomes, and the viewer count after them
            async with profiled(server, plan, "fanout-per-frame"):
                await pool.start()
                cpu0, wall0 = cpu_seconds(pid), time.perf_counter()
                await publisher.publish(plan.rounds)
                await until_frames_seen(pool, expected, within=120.0)
                cpu, wall = cpu_seconds(pid) - cpu0, time.perf_counter() - wall0
                tally = await pool.stop()
            await pool.close_sockets()
    finally:
        await pool.close_sockets()
    return {
        "frames": tally.frames / wall,
        "frames_per_cpu": tally.frames / max(cpu, 1e-6),
        "note": f"{tally.frames:,} of {expected:,} frames read, {tally.events:,} events, "
        f"{tally.gaps} seq gaps",
    }


async def giftstream_fanout_alone(
    redis_url: str, plan: Plan, work: Path, clients: Path
) -> dict[str, Any]:
    """V anonymous viewers (``scripts/bench_clients.c``); events published straight
    to the room, no gifts.

    First a quiet room: ``rounds`` big gifts, each published a pause after
    every viewer has the one before, timed to every viewer. Then a busy room:
    events offered far faster than one frame each could carry, so
    coalescing gathers them (its lift is per CPU second of the server).
    """
    progress("  giftstream: events published straight to the room")
    prefix = "bp" + uuid.uuid4().hex[:8]
    async with (
        giftstream(redis_url, prefix, plan, work) as (server, port),
        RoomPublisher(redis_url, prefix, ROOM) as publisher,
        c_clients(clients, room_target(port), plan, work, viewers=plan.viewers) as (
            viewers,
            opened,
        ),
    ):
        check_opened(opened, plan.viewers, "viewers")
        pid = server.process.pid
        # The welcomes, and the viewer count that follows them within 2 s.
        await asyncio.sleep(2.5)
        async with profiled(server, plan, "fanout-quiet"):
            await viewers.start()
            costs = RoundCosts(pid)
            for sent in range(1, plan.rounds + 1):
                await asyncio.sleep(QUIET_ROOM_PAUSE_SECONDS)
                with costs.round():
                    await publisher.publish(1, big_every=1)
                    await until_frames_seen(viewers, plan.viewers * sent)
            quiet = await viewers.stop()
        await asyncio.sleep(0.5)
        async with profiled(server, plan, "fanout-busy"):
            await viewers.start()
            cpu0 = cpu_seconds(pid)
            offered = await publisher.steady(
                BUSY_ROOM_EVENTS_PER_SECOND, plan.seconds, BUSY_BIG_EVERY
            )
            busy = await viewers.stop()
            busy_cpu = cpu_seconds(pid) - cpu0
        await asyncio.sleep(1.5)  # the last events reach everyone
        seqs = await viewers.peek()
    expected = plan.viewers * plan.rounds
    return {
        "quiet_reach": reach(quiet, costs),
        "busy_reach": reach(busy),
        "quiet_note": (
            f"{quiet.frames:,} of {expected:,} frames read, server CPU {costs.cpu:.2f} s "
            f"in the rounds' {costs.seconds:.1f} s"
        ),
        "busy_events": busy.events / busy.seconds,
        "busy_events_per_cpu": busy.events / max(busy_cpu, 1e-6),
        "busy_note": (
            f"{offered:,} events published, {busy.frames / busy.seconds:,.0f} frames/s, "
            f"{busy.events / max(busy.frames, 1):,.0f} events per frame; server CPU "
            f"{busy_cpu / busy.seconds:.0%}; {seqs.gaps} seq gaps from its start to 1.5 s after; "
            "CPU ratio: events per server CPU s against the one-event-per-frame row"
        ),
    }


def reach(tally: Tally, costs: RoundCosts | None = None) -> dict[str, Any]:
    """Big gifts' reach, from publication to each viewer's read: p50, p99, max,
    samples; with what the rounds cost, what a delivery cost the writer's CPU
    and the machine's TCP."""
    histogram = tally.reach_ms
    samples = sum(histogram.values())
    deliveries = max(samples, 1)
    return {
        "p50": percentile(histogram, 0.50),
        "p99": percentile(histogram, 0.99),
        "max": max(histogram, default=None),
        "samples": samples,
        "cpu_us": None if costs is None else costs.cpu / deliveries * 1e6,
        "segments": None if costs is None else costs.segments / deliveries,
        "steal": None if costs is None else costs.stolen_share(),
    }


@dataclass
class RoundCosts:
    """The writing process's CPU, the machine's TCP segments and the host's
    steal over the reach rounds alone: between them a server still pings its
    sockets."""

    pid: int
    cpu: float = 0.0
    segments: int = 0
    seconds: float = 0.0
    stolen: int = 0
    core_time: int = 0

    @contextlib.contextmanager
    def round(self) -> Iterator[None]:
        cpu, segments, wall = cpu_seconds(self.pid), tcp_segments_sent(), time.perf_counter()
        cores = CoreTime.now()
        yield
        self.cpu += cpu_seconds(self.pid) - cpu
        self.segments += tcp_segments_sent() - segments
        self.seconds += time.perf_counter() - wall
        after = CoreTime.now()
        self.stolen += after.steal - cores.steal
        self.core_time += after.total - cores.total

    def stolen_share(self) -> float:
        return self.stolen / max(1, self.core_time)


def tcp_segments_sent() -> int:
    """TCP segments this machine has sent so far (both ends' on loopback: data and ACKs)."""
    lines = [line.split() for line in Path("/proc/net/snmp").read_text().splitlines()]
    header, values = [fields for fields in lines if fields[0] == "Tcp:"][:2]
    return int(values[header.index("OutSegs")])


async def until_frames_seen(
    pool: ClientPool | CClients, expected: int, within: float = 30.0
) -> None:
    """Wait until the readers have counted ``expected`` frames, polling often."""
    deadline = time.monotonic() + within
    while (await pool.peek()).frames < expected:
        if time.monotonic() > deadline:
            raise RuntimeError(f"the viewers read fewer than {expected:,} frames in {within:g} s")
        await asyncio.sleep(0.005)


async def giftstream_storm(redis_url: str, plan: Plan, work: Path) -> dict[str, Any]:
    """V anonymous viewers in one room while senders storm it with roses."""
    progress(f"  giftstream: {plan.storm_senders} senders storm the room")
    prefix = "bf" + uuid.uuid4().hex[:8]
    queries = await sender_queries(redis_url, prefix, plan.storm_senders)
    pool = client_pool()
    try:
        # Streaks still form (senders send without pause); a short window lets
        # the last combo_end events arrive soon after the storm.
        storm_server = giftstream(redis_url, prefix, plan, work, combo_window_ms="500")
        async with storm_server as (server, port):
            target = room_target(port)
            check_opened(await pool.open(target, [""] * plan.viewers), plan.viewers, "viewers")
            check_opened(
                await pool.open(target, queries, senders=True), plan.storm_senders, "senders"
            )
            pid = server.process.pid
            before = await counters(port, pid)
            async with profiled(server, plan, "storm"):
                cpu0, wall0 = cpu_seconds(pid), time.perf_counter()
                await pool.start(plan.window)
                await asyncio.sleep(plan.seconds)
                tally = await pool.stop()
                cpu, wall = cpu_seconds(pid) - cpu0, time.perf_counter() - wall0
                # Read when it answers: a saturated server answers late or not at all.
                after = await counters(port, pid)
            await asyncio.sleep(1.5)  # the storm's last events and combo ends
            seqs = await pool.peek()
            await pool.close_sockets()
    finally:
        await pool.close_sockets()
    return storm_figures(plan, tally, seqs, cpu, wall, before, after)


@dataclass(frozen=True)
class Counters:
    """The server's own counts at one moment: room frames and events, and its clock."""

    frames: float
    events: float
    wall: float


async def metrics_text(port: int, within: float = 10.0) -> str | None:
    """The server's /metrics page, or None when it does not answer in time."""
    try:
        async with httpx.AsyncClient(timeout=within) as client:
            return (await client.get(f"http://{HOST}:{port}/metrics")).text
    except httpx.HTTPError:
        return None


async def counters(port: int, pid: int, within: float = 10.0) -> Counters | None:
    text = await metrics_text(port, within)
    if text is None:
        return None

    frames = metric_value(text, "giftstream_room_frames_total")
    return Counters(frames, metric_value(text, "giftstream_room_events_total"), time.perf_counter())


ACK_BUCKET = re.compile(r'^giftstream_gift_ack_seconds_bucket\{le="([^"]+)"\} ([0-9.e+]+)$', re.M)


def ack_buckets(text: str | None) -> dict[float, float]:
    """The server's own ack timer (a gift frame read to its ack written):
    acks counted per bucket's upper bound in seconds, cumulative."""
    return {float(le): float(count) for le, count in ACK_BUCKET.findall(text or "")}


def metric_value(text: str | None, name: str) -> float:
    """One unlabelled sample of a /metrics page (0 when absent)."""
    found = re.search(rf"^{re.escape(name)} ([0-9.e+]+)$", text or "", re.MULTILINE)
    return float(found.group(1)) if found else 0.0


def metric_sum(text: str | None, name: str) -> float:
    """Every sample of ``name`` on a /metrics page, whatever its labels, summed."""
    pattern = rf"^{re.escape(name)}(?:\{{[^}}]*\}})? ([0-9.e+]+)$"
    return sum(float(value) for value in re.findall(pattern, text or "", re.MULTILINE))


def script_sharing(before: str | None, after: str | None) -> str:
    """How many script calls shared each pipeline to Valkey between two readings:
    a paced gift's fixed costs (a write, a read, an fsync) are shared by that many."""
    batches, calls = (
        metric_value(after, f"giftstream_script_{name}_total")
        - metric_value(before, f"giftstream_script_{name}_total")
        for name in ("batches", "calls")
    )
    if not batches:
        return "no script pipelines"
    return f"{batches:,.0f} script pipelines, {calls / batches:.1f} calls each"


def server_ack_summary(before: dict[float, float], after: dict[float, float]) -> str:
    """What the server's own timer says of the acks between two readings."""
    bounds = sorted(bound for bound in after if bound in before)
    counts = {bound: after[bound] - before[bound] for bound in bounds}
    total = counts.get(math.inf, 0.0)
    if not total:
        return "server's own ack timer: no reading"

    def bound_of(share: float) -> str:
        bound = next(b for b in bounds if counts[b] >= share * total)
        return "above the last bucket" if bound == math.inf else f"<= {bound * 1000:g} ms"

    within = counts.get(0.025, 0.0) / total
    return (
        f"server's own timer (frame read to ack written): {within:.0%} within 25 ms, "
        f"p50 {bound_of(0.50)}, p99 {bound_of(0.99)}"
    )


def storm_figures(
    plan: Plan,
    tally: Tally,
    seqs: Tally,
    cpu: float,
    wall: float,
    before: Counters | None,
    after: Counters | None,
) -> dict[str, Any]:
    """Frames and events the viewers took, per second and per server CPU second.

    The readers' count: a server saturated by a storm may not answer /metrics
    for minutes, so its own counters are only a cross-check when they come.
    """
    if before is None or after is None:
        by_metrics = "/metrics did not answer within 10 s after the storm"
    else:
        span = after.wall - before.wall
        by_metrics = (
            f"/metrics: {(after.frames - before.frames) / span:,.0f} frames/s, "
            f"{(after.events - before.events) / span:,.1f} room events/s"
        )
    note = (
        f"{plan.storm_senders} senders: {tally.acks / tally.seconds:,.0f} gifts/s acked; "
        f"server CPU {cpu / wall:.0%}; {seqs.gaps} seq gaps; {by_metrics}"
    )
    return {
        "frames": tally.frames / tally.seconds,
        "events": tally.events / tally.seconds,
        "frames_per_cpu": tally.frames / cpu if cpu else 0.0,
        "gaps": seqs.gaps,
        "note": note,
    }


# ---------------------------------------------------------------- memory


async def idle_memory(
    name: str,
    start: Callable[[], contextlib.AbstractAsyncContextManager[tuple[Child, int]]],
    path: str,
    plan: Plan,
    subprotocol: str | None = None,
    pings: bool = False,
) -> tuple[float, str]:
    """RSS growth of a server per idle connection (clients offering deflate), and
    the CPU the server spends on them while they stay idle (its pings, mostly)."""
    progress(f"  {name}")
    pool = client_pool()
    n = plan.memory_connections
    try:
        async with start() as (server, port):
            pid = server.process.pid
            await asyncio.sleep(0.5)
            before = rss_kb(pid)
            target = Target(
                HOST, port, path, subprotocol, deflate=True, welcome=subprotocol is not None
            )
            opened = await pool.open(target, [""] * n)
            check_opened(opened, n, f"{name} connections")
            await asyncio.sleep(1.0)
            after = rss_kb(pid)
            # A server that pings: read over a whole interval, once it has begun.
            window = max(plan.seconds, plan.idle_settle_seconds) if pings else plan.seconds
            if pings:
                await asyncio.sleep(plan.idle_settle_seconds)
            cpu0, segments0 = cpu_seconds(pid), tcp_segments_sent()
            await asyncio.sleep(window)
            idle_cpu = (cpu_seconds(pid) - cpu0) / window
            segments = (tcp_segments_sent() - segments0) / window
            await pool.close_sockets()
    finally:
        await pool.close_sockets()
    per = (after - before) / n
    deflate = f"deflate agreed on {opened.deflated:,}"
    return per, (
        f"RSS {before / 1024:,.0f} -> {after / 1024:,.0f} MB; {deflate}; "
        f"idle CPU {idle_cpu:.1%} of a core over {window:g} s"
        + (f", {plan.idle_settle_seconds:g} s after they opened" if pings else "")
        + f" ({segments:,.0f} TCP segments/s: pings, pongs, ACKs)"
    )


async def memory(redis_url: str, plan: Plan, work: Path) -> list[Row]:
    python = [sys.executable, str(SCRIPTS / "bench_servers.py")]

    def baseline(kind: str, *extra: str) -> Callable[[], Any]:
        @contextlib.asynccontextmanager
        async def start() -> AsyncIterator[tuple[Child, int]]:
            async with child(kind, [*python, kind, *extra], plan.server_cpu) as server:
                yield server, int((await server.line(r"^PORT (\d+)$")).group(1))

        return start

    def ours() -> contextlib.AbstractAsyncContextManager[tuple[Child, int]]:
        return giftstream(redis_url, "bm" + uuid.uuid4().hex[:8], plan, work)

    off, off_note = await idle_memory("websockets", baseline("idle-websockets"), "/", plan)
    deflate = baseline("idle-websockets", "--compression", "deflate")
    on, on_note = await idle_memory("websockets+deflate", deflate, "/", plan)
    # uvicorn's default and giftstream ping each connection every 20 s; the
    # websockets baselines run with pings off.
    uvicorn = baseline("idle-uvicorn")
    uv, uv_note = await idle_memory("uvicorn", uvicorn, "/", plan, pings=True)
    ours_path = f"/ws/rooms/{ROOM}"
    gs, gs_note = await idle_memory("giftstream", ours, ours_path, plan, SUBPROTOCOL, pings=True)

    def row(name: str, kb: float, note: str) -> Row:
        return Row("memory", name, kb, "KB/conn", kb / off, note)

    return [
        row(f"websockets, no compression ({plan.memory_connections:,} idle; baseline)", off,
            off_note),
        row("websockets, permessage-deflate negotiated", on, on_note),
        row("uvicorn default (websockets legacy, deflate)", uv, uv_note),
        row("giftstream (deflate, no context kept)", gs, gs_note),
    ]  # fmt: skip


# ---------------------------------------------------------------- report


def machine() -> dict[str, Any]:
    model = cpu_model()
    return {
        "cores": os.cpu_count(),
        "machine": platform.machine(),
        "cpu": model,
        "python": platform.python_version(),
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


def checkout_commit(root: Path) -> str:
    """The commit a checkout is at (with "+changes" when its files differ), or "?"."""
    try:
        commit = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--short", "HEAD"],
            capture_output=True, text=True, check=True, timeout=10,
        ).stdout.strip()  # fmt: skip
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, check=True, timeout=10,
        ).stdout.strip()  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return "?"
    return commit + ("+changes" if dirty else "")


def profile_summary(path: Path, top: int = 12) -> str:
    """Where the server's time went, from py-spy's collapsed stacks: own time
    per function, and time inside each of giftstream's own functions."""
    own: dict[str, int] = {}
    inside: dict[str, int] = {}
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        samples = int(count)
        total += samples
        frames = stack.split(";")
        own[frames[-1]] = own.get(frames[-1], 0) + samples
        for frame in set(frames):
            if "(server/" in frame:
                inside[frame] = inside.get(frame, 0) + samples
    if not total:
        return f"{path.name}: no samples"
    lines = [f"{path.name}: {total} samples", "  own time:"]
    for frame, samples in sorted(own.items(), key=lambda kv: -kv[1])[:top]:
        lines.append(f"    {samples / total:6.1%}  {frame}")
    lines.append("  inside giftstream's functions (inclusive):")
    for frame, samples in sorted(inside.items(), key=lambda kv: -kv[1])[:top]:
        lines.append(f"    {samples / total:6.1%}  {frame}")
    return "\n".join(lines)


def table(rows: list[Row]) -> str:
    lines = [
        "| section | measure | value | unit | ratio | per server CPU s | CPU ratio | notes |",
        "|---|---|--:|---|--:|--:|--:|---|",
    ]
    for row in rows:
        ratio = "" if row.ratio is None else f"{row.ratio:.2f}"
        per_cpu = "" if row.per_cpu is None else f"{row.per_cpu:,.0f}"
        cpu_ratio = "" if row.cpu_ratio is None else f"{row.cpu_ratio:.2f}"
        lines.append(
            f"| {row.section} | {row.name} | {row.value:,.1f} | {row.unit} | {ratio} "
            f"| {per_cpu} | {cpu_ratio} | {row.note} |"
        )
    return "\n".join(lines)


async def run(plan: Plan, sections: list[str]) -> list[Row]:
    raise_fd_limit()
    if plan.client_cpu is not None:
        os.sched_setaffinity(0, {plan.client_cpu})
    rows: list[Row] = []
    _POOLS.append(ClientPool(plan.client_processes, plan.client_cpu))
    try:
        with tempfile.TemporaryDirectory(prefix="giftstream-bench-") as tmp:
            rows = await run_sections(plan, sections, Path(tmp))
    finally:
        await _POOLS.pop().shutdown()
    return rows


async def run_sections(plan: Plan, sections: list[str], work: Path) -> list[Row]:
    rows: list[Row] = []
    async with EmbeddedValkey(work / "valkey", appendfsync=plan.appendfsync) as valkey:
        # Valkey may take either core, except while it is the one measured.
        pin_all_threads(valkey.pid, valkey_cores(plan))
        await rewrite_aof_only_when_asked(valkey.url)
        if "money" in sections:
            progress("money: raw EVALSHA, minimal script, gift.lua, giftstream")
            rows += done(await money(valkey, plan, work))
        if "memory" in sections:
            progress(f"memory: {plan.memory_connections:,} idle connections per server")
            rows += done(await memory(valkey.url, plan, work))
        if "fanout" in sections:
            progress(f"fan-out to {plan.viewers:,} viewers: C, Python, websockets, giftstream")
            rows += done(await fanout(valkey.url, plan, work))
    return rows


_STARTED = time.monotonic()


def done(rows: list[Row]) -> list[Row]:
    """Shows a section's rows as soon as it is measured, in case a later one fails."""
    progress("\n" + table(rows))
    return rows


def progress(message: str) -> None:
    print(f"[{time.monotonic() - _STARTED:6.1f} s] {message}", file=sys.stderr, flush=True)


def build_plan(args: argparse.Namespace) -> Plan:
    cores = sorted(os.sched_getaffinity(0))
    server_cpu, client_cpu = (
        (cores[0], cores[1]) if len(cores) >= 2 and not args.no_pin else (None, None)
    )
    quick = args.quick
    viewers = args.viewers or (1000 if quick else 10_000)
    return Plan(
        viewers=viewers,
        memory_connections=args.memory_connections or viewers,
        seconds=args.seconds or (2.0 if quick else 10.0),
        rounds=args.rounds or (10 if quick else 30),
        pairs=args.pairs or (1 if quick else 3),
        senders=args.senders or (100 if quick else 500),
        storm_senders=args.storm_senders or (20 if quick else 100),
        window=args.window,
        latency_fraction=args.latency_fraction,
        cost_rates=args.cost_rates,
        client_processes=args.client_processes,
        server_cpu=server_cpu,
        client_cpu=client_cpu,
        appendfsync=args.appendfsync,
        profile_dir=args.profile,
        idle_settle_seconds=0.0 if quick else PING_INTERVAL_SECONDS,
        server_root=(args.server_root or REPO_ROOT).resolve(),
        server_settings=tuple(server_setting(text) for text in args.server_setting),
    )  # fmt: skip


def server_setting(text: str) -> tuple[str, str]:
    """``gift_gather_ms=1`` as (name, value)."""
    name, equals, value = text.partition("=")
    if not equals or not name.strip():
        raise argparse.ArgumentTypeError(f"not NAME=VALUE: {text!r}")
    return name.strip().lower(), value.strip()


def rates(text: str) -> tuple[float, ...]:
    """``1500,4000`` as gifts a second."""
    return tuple(float(part) for part in text.split(",") if part.strip())


def main() -> int:
    parser = argparse.ArgumentParser(prog="scripts/bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short run (about a minute)")
    parser.add_argument("--viewers", type=int, help="room size for fan-out (default 10,000)")
    parser.add_argument(
        "--memory-connections", type=int, help="idle connections (default: viewers)"
    )
    parser.add_argument("--seconds", type=float, help="length of each timed phase")
    parser.add_argument("--rounds", type=int, help="frames per viewer in the baseline fan-outs")
    parser.add_argument(
        "--pairs",
        type=int,
        help="times each ratio's baseline and giftstream are run in turn, for medians "
        "(money and the per-frame fan-out; default 3)",
    )
    parser.add_argument("--senders", type=int, help="gift senders in the money section")
    parser.add_argument("--storm-senders", type=int, help="gift senders during the fan-out storm")
    parser.add_argument("--window", type=int, default=4, help="gifts in flight per sender")
    parser.add_argument(
        "--latency-fraction",
        type=float,
        default=0.5,
        help="share of the maximum gift rate at which ack latency is measured (default 0.5)",
    )
    parser.add_argument(
        "--cost-rates",
        type=rates,
        default=(1500.0, 4000.0),
        help="offered gift rates, comma-separated, at which what a gift costs Valkey is "
        "measured besides the closed loop (default 1500,4000; '' for none)",
    )
    parser.add_argument("--client-processes", type=int, default=2)
    parser.add_argument("--appendfsync", default="always", choices=["always", "everysec", "no"])
    parser.add_argument("--only", action="append", choices=["money", "fanout", "memory"])
    parser.add_argument("--no-pin", action="store_true", help="do not pin processes to cores")
    parser.add_argument("--json", type=Path, help="also write the results here as JSON")
    parser.add_argument("--profile", type=Path, help="py-spy the giftstream server into this dir")
    parser.add_argument(
        "--server-root",
        type=Path,
        help="run the giftstream server from this checkout (say, a worktree of an earlier "
        "commit) to compare it in the same conditions; the drivers and baselines stay this "
        "checkout's",
    )
    parser.add_argument(
        "--server-setting",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a setting of every giftstream server of the run, as GIFTSTREAM_<NAME> "
        "(gift_gather_ms=1); may be given more than once",
    )
    args = parser.parse_args()
    plan = build_plan(args)
    sections = args.only or ["money", "fanout", "memory"]
    cores_before = CoreTime.now()
    rows = asyncio.run(run(plan, sections))
    info = machine()
    info["steal"] = CoreTime.now().stolen_since(cores_before)
    pinning = (
        f"server under test on core {plan.server_cpu}, clients on core {plan.client_cpu}, "
        "Valkey on either"
        if plan.server_cpu is not None
        else "no pinning"
    )
    info["server"] = checkout_commit(plan.server_root) + "".join(
        f" {name}={value}" for name, value in plan.server_settings
    )
    print(
        f"giftstream bench, {info['date']}, {info['cores']} cores {info['machine']} "
        f"({info['cpu']}), Python {info['python']}; {pinning}; "
        f"Valkey appendfsync {plan.appendfsync}; giftstream server at {info['server']}; "
        f"over the run the host kept {info['steal']:.0%} of the cores' time (steal)"
    )
    print(table(rows))
    if plan.profile_dir is not None:
        for path in sorted(plan.profile_dir.glob("*.txt")):
            print(profile_summary(path))
    if args.json:
        payload = {
            "machine": info,
            "plan": {k: str(v) for k, v in asdict(plan).items()},
            "rows": [asdict(row) for row in rows],
        }
        args.json.write_text(json.dumps(payload, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
