"""What Valkey spends on a gift: its own accounts read twice, and the arithmetic between.

``ValkeyAccounts`` is one reading of ``INFO cpu``, ``INFO commandstats`` and
``INFO persistence``; ``GiftCosts.between`` turns two readings and the gifts
made between them into figures per gift: Valkey's CPU, the commands it ran,
the time it spent in scripts and the bytes it appended to its append-only
file. ``Measured`` pairs those with a rate; ``medians`` and ``ratio`` make a
row of ``scripts/bench`` out of several turns. Everything here but
``ValkeyAccounts.read`` is pure, for ``tests/test_bench.py``.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

# What the bench itself asks of Valkey, to read or steer it, and the
# greeting of each new connection: none of it is a gift's cost.
BENCH_OWN_COMMANDS = frozenset(
    {"info", "config", "latency", "bgrewriteaof", "slowlog", "client", "hello"}
)
SCRIPT_COMMANDS = frozenset({"eval", "evalsha", "eval_ro", "evalsha_ro", "fcall", "fcall_ro"})


def command_name(stat: str) -> str:
    """The command an ``INFO commandstats`` entry counts: ``cmdstat_config|set`` is CONFIG."""
    return stat.removeprefix("cmdstat_").split("|", 1)[0].lower()


@dataclass(frozen=True)
class ValkeyAccounts:
    """Valkey's own accounts at one moment.

    A command called from a script is counted under its own name as well as
    inside the script's time. So ``calls`` is every script call and every
    command (from a script or not), ``script_usec`` the scripts' whole time,
    and ``command_usec`` the time of the commands that are not scripts, most
    of it inside a script's. The bench's own commands are left out of both.
    """

    cpu_seconds: float
    calls: int
    script_usec: int
    command_usec: int
    # None when the append-only file is off.
    aof_size: int | None
    # Rewrites of the file started so far (Valkey counts one as it starts),
    # and whether one is under way or waiting to start.
    aof_rewrites: int
    aof_rewriting: bool

    @classmethod
    def from_info(
        cls,
        cpu: Mapping[str, Any],
        commandstats: Mapping[str, Mapping[str, Any]],
        persistence: Mapping[str, Any],
    ) -> ValkeyAccounts:
        counted = [
            (command_name(stat), figures)
            for stat, figures in commandstats.items()
            if command_name(stat) not in BENCH_OWN_COMMANDS
        ]
        scripts = [figures for name, figures in counted if name in SCRIPT_COMMANDS]
        others = [figures for name, figures in counted if name not in SCRIPT_COMMANDS]
        size = persistence.get("aof_current_size") if persistence.get("aof_enabled") else None
        return cls(
            cpu_seconds=float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"]),
            calls=sum(int(figures["calls"]) for _, figures in counted),
            script_usec=sum(int(figures["usec"]) for figures in scripts),
            command_usec=sum(int(figures["usec"]) for figures in others),
            aof_size=None if size is None else int(size),
            aof_rewrites=int(persistence.get("aof_rewrites", 0)),
            aof_rewriting=bool(
                int(persistence.get("aof_rewrite_in_progress", 0))
                or int(persistence.get("aof_rewrite_scheduled", 0))
            ),
        )

    @classmethod
    async def read(cls, redis_url: str) -> ValkeyAccounts:
        redis = Redis.from_url(redis_url)
        try:
            cpu = await redis.info("cpu")
            commandstats = await redis.info("commandstats")
            persistence = await redis.info("persistence")
        finally:
            await redis.aclose()
        return cls.from_info(cpu, commandstats, persistence)

    def rewrote_aof_since(self, before: ValkeyAccounts) -> bool:
        """Whether a rewrite of the file started, ran or waited between the two readings:
        it swaps the file for a compact one, so the growth of its size means nothing."""
        started = self.aof_rewrites != before.aof_rewrites
        return started or self.aof_rewriting or before.aof_rewriting


@dataclass(frozen=True)
class GiftCosts:
    """What Valkey spent per gift over an interval: ``seconds`` of a phase and the
    ``settling`` after it, until every gift was answered and settled. With no gift
    made, every figure is NaN."""

    gifts: int
    seconds: float
    settling: float
    valkey_us: float
    commands: float
    script_us: float
    command_us: float
    # None: the file is off, or a rewrite of it began or ran in the interval.
    aof_bytes: float | None
    aof_rewritten: bool
    turns: int = 1

    @classmethod
    def between(
        cls,
        before: ValkeyAccounts,
        after: ValkeyAccounts,
        gifts: int,
        seconds: float,
        settling: float = 0.0,
    ) -> GiftCosts:
        def each(spent: float) -> float:
            return spent / gifts if gifts > 0 else math.nan

        rewritten = after.rewrote_aof_since(before)
        known = before.aof_size is not None and after.aof_size is not None and not rewritten
        return cls(
            gifts=gifts,
            seconds=seconds,
            settling=settling,
            valkey_us=each((after.cpu_seconds - before.cpu_seconds) * 1e6),
            commands=each(after.calls - before.calls),
            script_us=each(after.script_usec - before.script_usec),
            command_us=each(after.command_usec - before.command_usec),
            aof_bytes=each((after.aof_size or 0) - (before.aof_size or 0)) if known else None,
            aof_rewritten=rewritten,
        )

    @classmethod
    def median(cls, turns: Sequence[GiftCosts]) -> GiftCosts:
        """Each figure's median over ``turns``; the gifts and seconds are their sums.
        The file's growth is the median of the turns with no rewrite in them."""
        aof = [turn.aof_bytes for turn in turns if turn.aof_bytes is not None]
        return cls(
            gifts=sum(turn.gifts for turn in turns),
            seconds=sum(turn.seconds for turn in turns),
            settling=sum(turn.settling for turn in turns),
            valkey_us=statistics.median(turn.valkey_us for turn in turns),
            commands=statistics.median(turn.commands for turn in turns),
            script_us=statistics.median(turn.script_us for turn in turns),
            command_us=statistics.median(turn.command_us for turn in turns),
            aof_bytes=statistics.median(aof) if aof else None,
            aof_rewritten=any(turn.aof_rewritten for turn in turns),
            turns=sum(turn.turns for turn in turns),
        )

    def aof_note(self) -> str:
        if self.aof_bytes is not None:
            figure = f"{self.aof_bytes:,.0f} B appended to the append-only file"
            return figure + (" (a rewrite in some turns: not those)" if self.aof_rewritten else "")
        if self.aof_rewritten:
            return "no figure for the append-only file: a rewrite of it began in the interval"
        return "no append-only file"

    def note(self) -> str:
        turns = f" in {self.turns} turns" if self.turns > 1 else ""
        interval = f"{self.gifts:,} gifts{turns} over {self.seconds:.1f} s"
        if self.settling:
            interval += f", and {self.settling:.1f} s after until every gift was settled"
        return (
            f"a gift: {self.commands:.2f} commands (scripts and what they call), "
            f"{self.script_us:,.1f} us in scripts ({self.command_us:,.1f} us in commands, "
            f"most called from scripts), {self.aof_note()}; {interval}"
        )

    def figures(self) -> dict[str, float | None]:
        return {
            "valkey_us_per_gift": self.valkey_us,
            "commands_per_gift": self.commands,
            "script_us_per_gift": self.script_us,
            "aof_bytes_per_gift": self.aof_bytes,
        }


@dataclass(frozen=True)
class Measured:
    """A rate of gifts (acked, a second), and what Valkey spent on each meanwhile.

    ``server_us``: the giftstream server's own CPU per gift committed, over
    the same interval (None for a redis-py driver, which has no server). At
    a fixed offered rate it compares two servers' code far more steadily
    than the closed loop's rate, which moves with the host by a fifth.
    """

    rate: float
    costs: GiftCosts
    server_us: float | None = None

    def figures(self) -> dict[str, float]:
        return {} if self.server_us is None else {"server_us_per_gift": self.server_us}

    def note(self) -> str:
        server = "" if self.server_us is None else f"; the server {self.server_us:,.0f} us a gift"
        return f"{self.rate:,.0f} gifts/s acked{server}; {self.costs.note()}"


def medians(turns: Sequence[Measured]) -> Measured:
    """The median rate of several turns, and each cost's median."""
    servers = [turn.server_us for turn in turns if turn.server_us is not None]
    return Measured(
        statistics.median(turn.rate for turn in turns),
        GiftCosts.median([turn.costs for turn in turns]),
        statistics.median(servers) if servers else None,
    )


def ratio(figure: float, baseline: float) -> float:
    """``figure`` over ``baseline``; NaN with no baseline to hold it against."""
    return figure / baseline if baseline > 0 else math.nan
