"""Two giftstream servers on one Valkey, driven in turn: which costs less a gift.

``scripts/bench --only money`` measures one server against the machine's
baselines. Between two of its runs this machine's speed moves by a quarter
or more (the minimal script did 6,391 and 10,057 gifts/s in runs ten minutes
apart), more than most changes to the server's Python, so one run of each
side cannot tell them apart. Here both servers are up at once, each with its
own room, wallets and ``--senders`` C senders (``scripts/bench_clients.c``),
and the closed loop (each sender keeping ``--window`` gifts in flight) drives
one for ``--seconds``, then the other, ``--rounds`` times, in the order
A B B A A B ... (after a phase of each that is not counted, the processes
warming up) so that a drift of the machine falls on both sides alike.
Each round's B is compared with that round's A, a few seconds apart: the
median of those ratios, and their spread, is the answer.

    .venv/bin/python scripts/bench_ab.py --b-root /tmp/checkout-of-HEAD~1
    .venv/bin/python scripts/bench_ab.py --b-setting coalesce_tick_ms=100 --rounds 8

Figures a side and round: gifts acked a second, the server's CPU a gift
(from /proc, every thread, over the phase and until settled) and Valkey's
(``INFO``). Both servers run this checkout's drivers, so the other side must
speak today's protocol and tokens. One JSON line per phase on stdout, then
the summary as a JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import statistics
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench_costs import ratio
from bench_run import (
    REPO_ROOT,
    CClients,
    Child,
    Plan,
    build_plan,
    c_clients,
    check_opened,
    compact_aof,
    compile_c,
    giftstream,
    giftstream_phase,
    pin_all_threads,
    raise_fd_limit,
    room_target,
    sender_queries,
    server_setting,
    until_settled,
    valkey_cores,
)

from server.ops.embedded import EmbeddedValkey

SIDES = ("A", "B")
FIGURES = ("acks", "server_us", "valkey_us")


@dataclass(frozen=True)
class Phase:
    """One side driven once: what it acked and what a gift cost."""

    round: int
    side: str
    acks: float
    server_us: float
    valkey_us: float
    commands: float

    def figure(self, name: str) -> float:
        return float(getattr(self, name))


def order(rounds: int) -> list[tuple[int, str]]:
    """(round, side) in the order driven: A B, B A, A B, ..."""
    turns: list[tuple[int, str]] = []
    for index in range(rounds):
        sides = SIDES if index % 2 == 0 else SIDES[::-1]
        turns += [(index + 1, side) for side in sides]
    return turns


def summary(phases: Sequence[Phase]) -> dict[str, Any]:
    """Each figure's median a side, and the median and range of B over A by round
    (rounds missing a side are left out)."""
    by_round: dict[int, dict[str, Phase]] = {}
    for phase in phases:
        by_round.setdefault(phase.round, {})[phase.side] = phase
    paired = [sides for sides in by_round.values() if set(sides) == set(SIDES)]
    result: dict[str, Any] = {"rounds": len(paired)}
    for name in FIGURES:
        for side in SIDES:
            values = [sides[side].figure(name) for sides in paired]
            result[f"{name}_{side}"] = statistics.median(values) if values else None
        ratios = [ratio(sides["B"].figure(name), sides["A"].figure(name)) for sides in paired]
        result[f"{name}_ratio"] = statistics.median(ratios) if ratios else None
        result[f"{name}_ratio_range"] = [min(ratios), max(ratios)] if ratios else None
    return result


@dataclass
class Side:
    name: str
    plan: Plan
    server: Child
    port: int
    senders: CClients


@contextlib.asynccontextmanager
async def side(
    name: str, redis_url: str, plan: Plan, work: Path, binary: Path
) -> AsyncIterator[Side]:
    """One server with its own key prefix and its senders, all connected."""
    prefix = f"ab{name.lower()}" + uuid.uuid4().hex[:6]
    own = work / name
    own.mkdir()
    queries = await sender_queries(redis_url, prefix, plan.senders)
    async with (
        giftstream(redis_url, prefix, plan, own) as (server, port),
        c_clients(binary, room_target(port), plan, own, queries) as (senders, opened),
    ):
        check_opened(opened, plan.senders, f"gift senders of {name}")
        yield Side(name, plan, server, port, senders)


async def drive(one: Side, redis_url: str, round_: int) -> Phase:
    await until_settled(one.port)
    await compact_aof(redis_url)
    measured, _tally = await giftstream_phase(
        redis_url, one.server, one.port, one.senders, one.plan, one.plan.window
    )
    return Phase(
        round_,
        one.name,
        measured.rate,
        measured.server_us or float("nan"),
        measured.costs.valkey_us,
        measured.costs.commands,
    )


async def run(plans: dict[str, Plan], rounds: int) -> list[Phase]:
    raise_fd_limit()
    first = plans["A"]
    phases: list[Phase] = []
    with tempfile.TemporaryDirectory(prefix="giftstream-ab-") as tmp:
        work = Path(tmp)
        binary = await compile_c(work, "bench_clients")
        async with EmbeddedValkey(work / "valkey", appendfsync=first.appendfsync) as valkey:
            pin_all_threads(valkey.pid, valkey_cores(first))
            async with (
                side("A", valkey.url, plans["A"], work, binary) as a,
                side("B", valkey.url, plans["B"], work, binary) as b,
            ):
                sides = {"A": a, "B": b}
                # Unrecorded: a new process's first seconds (caches filling,
                # its objects frozen for the collector) would weigh on round 1.
                for name in SIDES:
                    await drive(sides[name], valkey.url, 0)
                for round_, name in order(rounds):
                    phase = await drive(sides[name], valkey.url, round_)
                    print(json.dumps(dataclasses.asdict(phase)), flush=True)
                    phases.append(phase)
    return phases


def main() -> int:
    parser = argparse.ArgumentParser(prog="scripts/bench_ab.py", description=__doc__)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--senders", type=int, default=500)
    parser.add_argument("--window", type=int, default=4)
    parser.add_argument("--appendfsync", choices=("always", "everysec", "no"), default="always")
    for name in SIDES:
        lower = name.lower()
        parser.add_argument(f"--{lower}-root", type=Path, help=f"side {name}'s checkout")
        parser.add_argument(
            f"--{lower}-setting",
            action="append",
            default=[],
            metavar="NAME=VALUE",
            help=f"a setting of side {name}'s server, as GIFTSTREAM_<NAME>",
        )
    args = parser.parse_args()
    # The money section's plan as scripts/bench would make it, then each
    # side's checkout and settings on top.
    base = build_plan(
        argparse.Namespace(
            quick=False,
            viewers=None,
            memory_connections=None,
            seconds=args.seconds,
            rounds=None,
            pairs=1,
            senders=args.senders,
            storm_senders=None,
            window=args.window,
            latency_fraction=0.5,
            cost_rates=(),
            client_processes=1,
            no_pin=False,
            appendfsync=args.appendfsync,
            profile=None,
            server_root=None,
            server_setting=[],
        )
    )
    plans = {
        name: dataclasses.replace(
            base,
            server_root=(getattr(args, f"{name.lower()}_root") or REPO_ROOT).resolve(),
            server_settings=tuple(
                server_setting(text) for text in getattr(args, f"{name.lower()}_setting")
            ),
        )
        for name in SIDES
    }
    phases = asyncio.run(run(plans, args.rounds))
    print(json.dumps({"summary": summary(phases)}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
