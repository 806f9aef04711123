"""Scale-out: one room's gift storm against 1, 2 and 4 server processes.

The same load (the load generator of ``giftstream loadtest``, driven in
this process: senders and watchers in room ``carol``, streaks, big gifts
and retries) runs against

- 1, 2 and 4 ``giftstream serve`` processes sharing one embedded Valkey, and
- 1 and 2 processes on an embedded Valkey Cluster of three primaries,

with the sockets spread over the processes round robin, so that every gift
is fanned out by every process (its events cross processes over Redis
pub/sub, sharded on the cluster). Each configuration gets fresh server
processes and a key prefix of its own; the per-socket and per-user gift
rate limits are raised so that they are not what is measured.

Per configuration it prints gifts acknowledged and events delivered per
second, ack latency (p50, p99), the ratio of both rates to the 1-process
single-node run of the same invocation, and where the CPU went while the
gifts were sent: the servers, Valkey, the load generator, and everything
else on the machine (read from ``/proc``), because on a shared machine the
neighbours decide as much as the code.

    .venv/bin/python scripts/bench_scaleout.py                # about 3 minutes
    .venv/bin/python scripts/bench_scaleout.py --quick        # a smoke run, under a minute

Results and what they mean: docs/benchmarks.md, "Scale-out".

Everything listens on loopback, lives in a temporary directory and is
stopped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import re
import secrets
import signal
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from bench_env import cpu_model, server_environment

from server.commands.banner import LISTENING
from server.loadtest.config import LoadConfig, new_user_prefix
from server.loadtest.runner import run as loadtest
from server.ops.embedded import EmbeddedValkey
from server.ops.embedded_cluster import EmbeddedCluster

REPO_ROOT = Path(__file__).resolve().parent.parent
ROOM = "carol"  # the demo creator, seeded by every server in demo mode
START_TIMEOUT = 120.0
TICKS = os.sysconf("SC_CLK_TCK")
# (store, server processes), in the order they run; the first is the baseline.
CONFIGURATIONS: tuple[tuple[str, int], ...] = (
    ("node", 1),
    ("node", 2),
    ("node", 4),
    ("cluster", 1),
    ("cluster", 2),
)
# The load generator prints this before each second of sending, "draining" after.
SENDING_LINE = re.compile(r"^\s*\d+\.\d s  acks/s")


@dataclass(frozen=True)
class Load:
    viewers: int
    senders: int
    rate: float
    duration: float
    drain: float
    generator_processes: int
    appendfsync: str

    def config(self, urls: Sequence[str]) -> LoadConfig:
        """What ``giftstream loadtest URL,URL,... --viewers ... --seed 1`` would run."""
        config = LoadConfig(
            base_url=urls[0],
            more_urls=tuple(urls[1:]),
            viewers=self.viewers,
            rooms=(ROOM,),
            senders=self.senders,
            rate=self.rate,
            duration=self.duration,
            processes=self.generator_processes,
            drain_seconds=self.drain,
            seed=1,
            user_prefix=new_user_prefix(),
        )
        config.validate()
        return config

    def command(self) -> str:
        """The same load from a shell, against servers of one's own."""
        return (
            f"giftstream loadtest URL1,URL2,... --viewers {self.viewers} "
            f"--senders {self.senders} --rate {self.rate:g} --duration {self.duration:g} "
            f"--drain {self.drain:g} --processes {self.generator_processes} --seed 1"
        )


@dataclass
class Row:
    store: str
    processes: int
    acked_per_second: float
    events_per_second: float
    ack_p50_ms: float | None
    ack_p99_ms: float | None
    sent: int
    acked: int
    unanswered: int
    errors: dict[str, int]
    # Seqs a watcher skipped (must be 0), and events still on their way when the drain ended.
    seq_gaps: int
    not_delivered_by_end: int
    # Cores busy while sending (CPU seconds / seconds), by role.
    cpu: dict[str, float] = field(default_factory=dict)
    load_average: float = 0.0
    cpu_pressure: float | None = None
    generator_busy: float = 0.0  # of a core, per load-generator process
    acked_ratio: float | None = None
    events_ratio: float | None = None


# ---------------------------------------------------------------- CPU from /proc


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of ``pid`` so far (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICKS


def descendants(pid: int) -> list[int]:
    """``pid``'s children, grandchildren and so on (the load generator's workers)."""
    parents: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            parents.setdefault(ppid, []).append(int(stat.parent.name))
    found: list[int] = []
    pending = [pid]
    while pending:
        children = parents.get(pending.pop(), [])
        found.extend(children)
        pending.extend(children)
    return found


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine has spent busy (all cores), from /proc/stat."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields[:8]) - idle) / TICKS


@dataclass
class CpuSnapshot:
    at: float
    by_role: dict[str, float]
    machine: float


def snapshot(roles: dict[str, list[int]]) -> CpuSnapshot:
    by_role = {role: sum(cpu_seconds(pid) for pid in pids) for role, pids in roles.items()}
    return CpuSnapshot(time.monotonic(), by_role, machine_busy_seconds())


def cores_between(before: CpuSnapshot, after: CpuSnapshot) -> dict[str, float]:
    seconds = max(after.at - before.at, 1e-6)
    used = {role: (after.by_role[role] - before.by_role[role]) / seconds for role in after.by_role}
    machine = (after.machine - before.machine) / seconds
    # The rest of the machine: other processes' work, and the kernel's on nobody's behalf.
    used["others"] = max(0.0, machine - sum(used.values()))
    used["machine"] = machine
    return {role: round(value, 2) for role, value in used.items()}


# ---------------------------------------------------------------- servers


@dataclass
class Server:
    process: asyncio.subprocess.Process
    log: Path
    url: str = ""

    async def wait_listening(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        pattern = re.compile(re.escape(LISTENING) + r" (http://\S+)")
        while time.monotonic() < deadline:
            found = pattern.search(self.log.read_text(errors="replace"))
            if found:
                self.url = found.group(1).rstrip("/")
                return
            if self.process.returncode is not None:
                break
            await asyncio.sleep(0.1)
        raise RuntimeError(f"giftstream serve did not start; its output:\n{self.tail()}")

    async def wait_ready(self) -> None:
        async with httpx.AsyncClient(base_url=self.url, timeout=2.0) as client:
            deadline = time.monotonic() + START_TIMEOUT
            while time.monotonic() < deadline:
                with contextlib.suppress(httpx.TransportError):
                    if (await client.get("/readyz")).status_code == 200:
                        return
                await asyncio.sleep(0.1)
        raise RuntimeError(f"{self.url} never became ready; its output:\n{self.tail()}")

    def tail(self, lines: int = 20) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    async def stop(self) -> None:
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.process.wait(), 20)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()


async def start_server(
    redis_url: str, cluster: bool, prefix: str, env: dict[str, str], log: Path
) -> Server:
    argv = [sys.executable, "-m", "server", "serve", "--port", "0"]
    argv += ["--redis-url", redis_url, "--key-prefix", prefix]
    if cluster:
        argv.append("--redis-cluster")
    with log.open("wb") as out:
        process = await asyncio.create_subprocess_exec(
            *argv, cwd=REPO_ROOT, env=env, stdin=asyncio.subprocess.DEVNULL, stdout=out, stderr=out
        )
    server = Server(process, log)
    try:
        await server.wait_listening()
        await server.wait_ready()
    except BaseException:
        await server.stop()
        raise
    return server


@contextlib.asynccontextmanager
async def servers(
    count: int, redis_url: str, cluster: bool, work: Path
) -> AsyncIterator[list[Server]]:
    prefix = "so" + uuid.uuid4().hex[:8]
    env = server_environment(
        secrets.token_urlsafe(32), work / "server-data", max_sockets_per_user="1000"
    )
    logs = [work / f"{prefix}-{i}.log" for i in range(count)]
    started = await asyncio.gather(
        *(start_server(redis_url, cluster, prefix, env, log) for log in logs),
        return_exceptions=True,
    )
    running = [s for s in started if isinstance(s, Server)]
    try:
        for outcome in started:
            if isinstance(outcome, BaseException):
                raise outcome
        yield running
    finally:
        await asyncio.gather(*(s.stop() for s in running))


# ---------------------------------------------------------------- one configuration


async def run_loadtest(
    urls: Sequence[str], load: Load, roles: dict[str, list[int]]
) -> tuple[dict[str, Any], dict[str, float]]:
    """The load generator against ``urls``, in this process (its workers are children of
    it); its report, and the cores busy by role while it sent."""
    config = load.config(urls)
    before: CpuSnapshot | None = None
    after: CpuSnapshot | None = None
    # This process's children other than the generator's workers: servers, Valkeys.
    others = {pid for pids in roles.values() for pid in pids}

    def with_generator() -> dict[str, list[int]]:
        me = os.getpid()
        workers = [pid for pid in descendants(me) if pid not in others]
        return {**roles, "generator": [me, *workers]}

    def heard(line: str) -> None:
        nonlocal before, after
        print(f"  {line}", file=sys.stderr, flush=True)
        # Measured from the first second of sending to the first line of the drain.
        if before is None and SENDING_LINE.match(line):
            before = snapshot(with_generator())
        elif before is not None and after is None and line.startswith("draining"):
            after = snapshot(with_generator())

    report = await loadtest(config, heard)
    cores = cores_between(before, after) if before is not None and after is not None else {}
    return report, cores


def row_of(store: str, processes: int, report: dict[str, Any], cores: dict[str, float]) -> Row:
    gifts, ack = report["gifts"], report["latency_ms"]["ack"]
    return Row(
        store=store,
        processes=processes,
        acked_per_second=float(gifts["acked_per_second"]),
        events_per_second=float(report["events"]["delivered_per_second"]),
        ack_p50_ms=ack["p50"],
        ack_p99_ms=ack["p99"],
        sent=int(gifts["sent"]),
        acked=int(gifts["acked"]),
        unanswered=int(gifts["unanswered"]),
        errors=dict(report["errors"]),
        seq_gaps=sum(int(room["lost_gaps"]) for room in report["rooms"].values()),
        not_delivered_by_end=sum(int(room["lost_tail"]) for room in report["rooms"].values()),
        cpu=cores,
        load_average=float(report["machine"]["load_average_1min"]),
        cpu_pressure=report["machine"]["cpu_pressure_avg60"],
        generator_busy=float(report["load_generator"]["busy_fraction_per_process"]),
    )


async def measure(
    store: str,
    count: int,
    redis_url: str,
    store_pids: list[int],
    load: Load,
    work: Path,
) -> Row:
    cluster = store == "cluster"
    async with servers(count, redis_url, cluster, work) as running:
        progress(f"servers ready: {', '.join(s.url for s in running)}")
        roles = {"servers": [s.process.pid for s in running], "valkey": store_pids}
        report, cores = await run_loadtest([s.url for s in running], load, roles)
    return row_of(store, count, report, cores)


# ---------------------------------------------------------------- the run


def progress(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


async def run(load: Load, configurations: Sequence[tuple[str, int]]) -> list[Row]:
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="giftstream-scaleout-") as tmp:
        work = Path(tmp)
        for store in ("node", "cluster"):
            counts = [n for s, n in configurations if s == store]
            if not counts:
                continue
            async with store_of(store, work, load.appendfsync) as (url, pids):
                for count in counts:
                    progress(f"{store}: {count} server process(es)")
                    rows.append(await measure(store, count, url, pids, load, work))
                    progress(describe(rows[-1]))
    add_ratios(rows)
    return rows


@contextlib.asynccontextmanager
async def store_of(
    store: str, work: Path, appendfsync: str
) -> AsyncIterator[tuple[str, list[int]]]:
    """The Redis of a configuration: its URL (a seed node for a cluster) and its pids."""
    if store == "node":
        async with EmbeddedValkey(work / "valkey", appendfsync=appendfsync) as valkey:
            yield valkey.url, [valkey.pid]
    else:
        async with EmbeddedCluster(work / "cluster", appendfsync=appendfsync) as cluster:
            yield cluster.url, [node.pid for node in cluster.nodes]


def add_ratios(rows: list[Row]) -> None:
    """Each row against the first (1 process on one node), measured in the same run."""
    base = rows[0]
    for row in rows:
        if base.acked_per_second > 0:
            row.acked_ratio = round(row.acked_per_second / base.acked_per_second, 2)
        if base.events_per_second > 0:
            row.events_ratio = round(row.events_per_second / base.events_per_second, 2)


def describe(row: Row) -> str:
    return (
        f"{row.store} x{row.processes}: {row.acked_per_second:,.0f} acks/s, "
        f"{row.events_per_second:,.0f} events/s, cores {row.cpu}"
    )


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def table(rows: Sequence[Row]) -> str:
    lines = [
        "| Redis | processes | gifts acked/s | vs 1 | events delivered/s | vs 1 "
        "| ack p50 ms | ack p99 ms | cores: servers / Valkey / generator / others "
        "| load avg |",
        "|---|--:|--:|--:|--:|--:|--:|--:|---|--:|",
    ]
    for r in rows:
        cpu = r.cpu
        cores = " / ".join(
            f"{cpu[k]:.2f}" if k in cpu else "-"
            for k in ("servers", "valkey", "generator", "others")
        )
        redis = "1 node" if r.store == "node" else "cluster, 3 primaries"
        lines.append(
            f"| {redis} | {r.processes} | {r.acked_per_second:,.0f} | {_ratio(r.acked_ratio)} "
            f"| {r.events_per_second:,.0f} | {_ratio(r.events_ratio)} | {_ms(r.ack_p50_ms)} "
            f"| {_ms(r.ack_p99_ms)} | {cores} | {r.load_average:.1f} |"
        )
    return "\n".join(lines)


def checks(rows: Sequence[Row]) -> list[str]:
    """What a reader should know before trusting a row: unanswered gifts, errors, losses."""
    notes = []
    for r in rows:
        name = f"{r.store} x{r.processes}"
        if r.unanswered:
            notes.append(f"{name}: {r.unanswered:,} of {r.sent:,} gifts unanswered after the drain")
        if r.errors:
            notes.append(f"{name}: errors {r.errors}")
        if r.seq_gaps:
            notes.append(f"{name}: {r.seq_gaps:,} seqs skipped (gaps)")
        if r.not_delivered_by_end:
            notes.append(
                f"{name}: {r.not_delivered_by_end:,} events still on their way when the drain ended"
            )
    return notes


def machine() -> dict[str, Any]:
    model = cpu_model()
    return {"cpus": os.cpu_count(), "cpu_model": model, "platform": platform.platform()}


def parse_arguments(
    argv: Sequence[str] | None = None,
) -> tuple[Load, tuple[tuple[str, int], ...], Path | None]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="a tiny run, to see that it works")
    parser.add_argument("--viewers", type=int, help="room sockets in all (default 300)")
    parser.add_argument("--senders", type=int, help="viewers who send (default 60)")
    parser.add_argument("--rate", type=float, help="offered gifts/s, all senders (default 1500)")
    parser.add_argument("--duration", type=float, help="seconds of sending (default 15)")
    parser.add_argument(
        "--generator-processes", type=int, help="load-generator processes (default 2)"
    )
    parser.add_argument(
        "--appendfsync", choices=("always", "everysec", "no"), default="always",
        help="the AOF fsync policy of every Valkey (default always, as giftstream serve's)",
    )  # fmt: skip
    parser.add_argument(
        "--configurations",
        type=configurations_of,
        default=CONFIGURATIONS,
        help="comma-separated store:processes, the first the baseline "
        "(default node:1,node:2,node:4,cluster:1,cluster:2)",
    )
    parser.add_argument("--json", type=Path, dest="json_path", help="write the rows here")
    args = parser.parse_args(argv)
    quick = args.quick
    load = Load(
        viewers=args.viewers or (12 if quick else 300),
        senders=args.senders or (3 if quick else 60),
        rate=args.rate or (30.0 if quick else 1500.0),
        duration=args.duration or (1.0 if quick else 15.0),
        drain=2.0 if quick else 10.0,
        generator_processes=args.generator_processes or (1 if quick else 2),
        appendfsync=args.appendfsync,
    )
    return load, args.configurations, args.json_path


def configurations_of(text: str) -> tuple[tuple[str, int], ...]:
    found = []
    for item in text.split(","):
        store, _, count = item.strip().partition(":")
        if store not in ("node", "cluster") or not count.isdigit() or int(count) < 1:
            raise argparse.ArgumentTypeError(f"{item!r}: give node:N or cluster:N, N at least 1")
        found.append((store, int(count)))
    return tuple(found)


def main(argv: Sequence[str] | None = None) -> int:
    load, configurations, json_path = parse_arguments(argv)
    started = datetime.now(UTC).isoformat(timespec="seconds")
    rows = asyncio.run(run(load, configurations))
    print(f"giftstream scale-out, {started}, {machine()}")
    print(f"load: {load.command()} (appendfsync {load.appendfsync})")
    print(table(rows))
    for note in checks(rows):
        print(f"note: {note}")
    if json_path is not None:
        document = {
            "date": started,
            "machine": machine(),
            "load": asdict(load),
            "rows": [asdict(r) for r in rows],
        }
        json_path.write_text(json.dumps(document, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
