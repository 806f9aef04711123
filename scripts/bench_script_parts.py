"""What each part of ``room_gifts.lua`` costs Valkey, measured in one Valkey.

    .venv/bin/python scripts/bench_script_parts.py [--gifts 12000] [--per-call 1 8]
        [--turns 3] [--appendfsync always] [--json FILE]

The script the server runs on one node, ``room_gifts.lua``, against variants
that each leave one part out, turn by turn in the same embedded Valkey (so
the host's noise falls on all of them alike):

    shipped      as the server runs it: a streakable rose from a fan club member
    no-chain     ledger entries without their hash (lib_chain.lua's
                 ``chained_entry`` as a plain XADD with an empty ``prev``)
    no-combo     the rose not streakable: no HMGET/HSET of the room's combos
    no-fan       senders who are not fan club members: no fan field written
    bare         all three left out
    entry-a-gift the creator's credits as a `credit` entry a gift, as before
                 the call's one `credits` entry (2026-12-08)

Every gift is a rose from one of ``--senders`` senders to the room ``carol``,
``--per-call`` gifts a call (the server puts up to 8 of a room's gifts in a
call; 1 is a quiet room), 50 calls pipelined at a time. The KEYS and ARGV are
the server's own (``Wallets.gift_call``, ``RoomLog.call_head``,
``gift_payload``). For each variant: the time Valkey spent in the script
(``INFO commandstats``), Valkey's CPU (``INFO cpu``) and the commands it ran,
per gift; medians of ``--turns`` turns, and each over the shipped script's.
The variants are for measuring only: the server never runs them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from redis.asyncio import Redis

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench_costs import ValkeyAccounts
from bench_money import bench_settings, fill, grant, rose_call_shape, sender_name

from server.core.catalog import load_catalog
from server.core.keys import WalletKeys
from server.core.protocol import GiftEvent, to_wire
from server.ops.embedded import EmbeddedValkey
from server.rooms.room_log import RoomLog, gift_payload
from server.store.scripts import (
    LUA_DIR,
    Scripts,
    source,
)

ROOM = "carol"
CALLS_IN_FLIGHT = 50
# room_gifts.lua's gift keys: the wallet, the ledger and the request record.
GIFT_KEYS = 3
# A plain XADD in place of lib_chain.lua's: same fields, no hash, no check.
UNCHAINED = """
local function chained_entry(ledger, prev, ...)
  redis.call("XADD", ledger, "*", "prev", "", ...)
  return ""
end
"""
# The creator's credits as before 2026-12-08: a `credit` entry a gift
# (lib_credit.lua's credit_gift), in place of the record of the call's one
# `credits` entry: from credit_split to where the record is kept.
CREDIT_RECORD = re.compile(
    r"  diamonds, carry, platform = credit_split\(.*?\n(?=  credited_at = now)", re.S
)
ENTRY_A_GIFT = """  diamonds, carry, platform, creator_chain = credit_gift(KEYS[5],
    creator_chain, gift_key, cost, share, carry, now, ARGV[arg_base + 1],
    ARGV[arg_base + 3], ARGV[arg_base + 4], now, ARGV[arg_base + 14])
"""
CREDITS_ENTRY = """  creator_chain = chained_entry(KEYS[5], creator_chain, "kind", "credits",
    "n", digits(#credit_records), "ts", credited_at, "d", table.concat(credit_records, ";"))
"""


@dataclass(frozen=True)
class Variant:
    name: str
    chained: bool = True
    streakable: bool = True
    members: bool = True
    # One `credits` entry a call (as shipped), or a `credit` entry a gift.
    entry_a_gift: bool = False

    def script_source(self) -> str:
        text = source("room_gifts")
        if self.entry_a_gift:
            text, found = CREDIT_RECORD.subn(ENTRY_A_GIFT, text)
            assert found == 1
            assert CREDITS_ENTRY in text
            text = text.replace(CREDITS_ENTRY, "")
        if not self.chained:
            chain = (LUA_DIR / "lib_chain.lua").read_text(encoding="utf-8")
            assert chain in text
            text = text.replace(chain, UNCHAINED)
        return text


VARIANTS = (
    Variant("shipped"),
    Variant("no-chain", chained=False),
    Variant("no-combo", streakable=False),
    Variant("no-fan", members=False),
    Variant("bare", chained=False, streakable=False, members=False),
    Variant("entry-a-gift", entry_a_gift=True),
)


@dataclass(frozen=True)
class Turn:
    variant: str
    per_call: int
    gifts: int
    seconds: float
    script_us: float
    # Of script_us, in the commands the script called.
    command_us: float
    valkey_us: float
    commands: float


class RoomGiftsCalls:
    """``room_gifts.lua`` calls of ``per_call`` roses each, as the server makes them."""

    def __init__(
        self,
        redis: Redis,
        prefix: str,
        variant: Variant,
        per_call: int,
        senders: int,
        shape: tuple[list[Any], list[Any]],
    ) -> None:
        settings = bench_settings(prefix)
        head_keys, head_args = RoomLog(redis, Scripts.register(redis), settings).call_head(ROOM)
        creator = WalletKeys(prefix, ROOM)
        self.head_keys = [*head_keys, creator.wallet, creator.ledger, f"{prefix}:pending"]
        self.head_args = [*head_args, ROOM]
        self.script = redis.register_script(variant.script_source())
        self.variant = variant
        self.per_call = per_call
        self.senders = senders
        self.shape = shape
        self.rose = load_catalog().gift("rose")

    def payload(self, sender: str, request_id: str, now_ms: int) -> bytes:
        member = self.variant.members
        event = GiftEvent(
            room=ROOM,
            sender=sender,
            gift=self.rose.id,
            count=1,
            coins=self.rose.coins,
            tier=str(self.rose.tier),
            ts=now_ms,
            stream_id=None,
            request_id=request_id,
            fan_level=1 if member else 0,
            fan_badge=ROOM if member else None,
        )
        return gift_payload(to_wire(event), self.variant.streakable)

    def call(self, first: int) -> tuple[list[Any], list[Any]]:
        keys, args = list(self.head_keys), list(self.head_args)
        now_ms = int(time.time() * 1000)
        streakable = "1" if self.variant.streakable else "0"
        for n in range(first, first + self.per_call):
            sender, request_id = sender_name(n % self.senders), f"{n:012d}"
            gift_keys, gift_args = fill(self.shape, sender, request_id)
            gift_args[7] = now_ms
            keys += gift_keys[:GIFT_KEYS]
            args += [*gift_args, self.payload(sender, request_id, now_ms), streakable]
        return keys, args


async def prepare(
    redis: Redis, prefix: str, variant: Variant, senders: int
) -> tuple[list[Any], list[Any]]:
    """The senders' coins and, for members, their fan club field; a gift's call shape."""
    settings = bench_settings(prefix)
    await grant(redis, settings, senders)
    if variant.members:
        joined = int(time.time() * 1000) - 1000
        for i in range(senders):
            await redis.hset(
                WalletKeys(prefix, sender_name(i)).wallet, f"fan:{ROOM}", f"{joined}|0"
            )
    return await rose_call_shape(redis, settings)


async def prepared_calls(
    redis: Redis, variant: Variant, per_call: int, senders: int, turn: int
) -> RoomGiftsCalls:
    """A variant's calls, its senders funded under a prefix of its own, checked once."""
    prefix = f"sp{turn}{variant.name.replace('-', '')}{per_call}"
    shape = await prepare(redis, prefix, variant, senders)
    calls = RoomGiftsCalls(redis, prefix, variant, per_call, senders, shape)
    # One call first: loads the script, and checks that it pays.
    keys, args = calls.call(10**9)
    reply = await calls.script(keys=keys, args=args)
    if reply[0] != b"ok":
        raise RuntimeError(f"{variant.name}: room_gifts.lua answered {reply!r}")
    return calls


async def run_chunk(redis: Redis, calls: RoomGiftsCalls, first: int) -> int:
    """``CALLS_IN_FLIGHT`` calls in one pipeline; the gifts they made."""
    pipe = redis.pipeline(transaction=False)
    for n in range(CALLS_IN_FLIGHT):
        keys, args = calls.call(first + n * calls.per_call)
        await calls.script(keys=keys, args=args, client=pipe)
    for reply in await pipe.execute():
        if reply[0] != b"ok":
            raise RuntimeError(f"{calls.variant.name}: room_gifts.lua answered {reply!r}")
    return CALLS_IN_FLIGHT * calls.per_call


async def run_turn(
    redis: Redis, url: str, per_call: int, gifts: int, senders: int, turn: int
) -> list[Turn]:
    """Every variant, a pipeline of calls each in turn until each made ``gifts``: the
    host's noise of the moment falls on all of them alike."""
    every = [await prepared_calls(redis, v, per_call, senders, turn) for v in VARIANTS]
    made = dict.fromkeys(VARIANTS, 0)
    seconds = dict.fromkeys(VARIANTS, 0.0)
    script_usec = dict.fromkeys(VARIANTS, 0)
    command_usec = dict.fromkeys(VARIANTS, 0)
    cpu = dict.fromkeys(VARIANTS, 0.0)
    calls_run = dict.fromkeys(VARIANTS, 0)
    rounds = 0
    while min(made.values()) < gifts:
        # Forwards, then backwards: no variant always follows the same one.
        rounds += 1
        for calls in every if rounds % 2 else reversed(every):
            variant = calls.variant
            before = await ValkeyAccounts.read(url)
            started = time.perf_counter()
            made[variant] += await run_chunk(redis, calls, made[variant])
            seconds[variant] += time.perf_counter() - started
            after = await ValkeyAccounts.read(url)
            script_usec[variant] += after.script_usec - before.script_usec
            command_usec[variant] += after.command_usec - before.command_usec
            cpu[variant] += after.cpu_seconds - before.cpu_seconds
            calls_run[variant] += after.calls - before.calls
    return [
        Turn(
            variant=v.name,
            per_call=per_call,
            gifts=made[v],
            seconds=seconds[v],
            script_us=script_usec[v] / made[v],
            command_us=command_usec[v] / made[v],
            valkey_us=cpu[v] * 1e6 / made[v],
            commands=calls_run[v] / made[v],
        )
        for v in VARIANTS
    ]


def summary(turns: list[Turn]) -> list[dict[str, Any]]:
    """Medians per variant and gifts a call, each with its ratio over the shipped script's."""
    rows: list[dict[str, Any]] = []
    for per_call in sorted({t.per_call for t in turns}):
        medians: dict[str, dict[str, float]] = {}
        for variant in VARIANTS:
            mine = [t for t in turns if t.per_call == per_call and t.variant == variant.name]
            medians[variant.name] = {
                field: statistics.median(getattr(t, field) for t in mine)
                for field in ("script_us", "command_us", "valkey_us", "commands")
            }
        shipped = medians["shipped"]
        for variant in VARIANTS:
            figures = medians[variant.name]
            rows.append(
                {
                    "variant": variant.name,
                    "per_call": per_call,
                    **{k: round(v, 2) for k, v in figures.items()},
                    "script_ratio": round(figures["script_us"] / shipped["script_us"], 3),
                    "valkey_ratio": round(figures["valkey_us"] / shipped["valkey_us"], 3),
                }
            )
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| variant | gifts a call | script µs a gift (in commands) | over shipped "
        "| Valkey CPU µs a gift | over shipped | commands a gift |",
        "|---|--:|--:|--:|--:|--:|--:|",
    ]
    for row in rows:
        lines.append(
            f"| {row['variant']} | {row['per_call']} | {row['script_us']:.1f} "
            f"({row['command_us']:.1f}) "
            f"| {row['script_ratio']:.2f} | {row['valkey_us']:.1f} | {row['valkey_ratio']:.2f} "
            f"| {row['commands']:.2f} |"
        )
    return "\n".join(lines)


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="gs-parts-") as data_dir:
        valkey = EmbeddedValkey(data_dir, appendfsync=args.appendfsync)
        await valkey.start()
        redis = Redis.from_url(valkey.url)
        turns: list[Turn] = []
        try:
            for turn in range(args.turns):
                for per_call in args.per_call:
                    results = await run_turn(
                        redis, valkey.url, per_call, args.gifts, args.senders, turn
                    )
                    turns += results
                    for result in results:
                        print(
                            f"turn {turn + 1} {result.variant:9} {per_call} a call: "
                            f"script {result.script_us:.1f} µs, Valkey {result.valkey_us:.1f} µs, "
                            f"{result.commands:.2f} commands a gift",
                            file=sys.stderr,
                            flush=True,
                        )
        finally:
            await redis.aclose()
            await valkey.stop()
    return {
        "appendfsync": args.appendfsync,
        "gifts_per_turn": args.gifts,
        "turns": [t.__dict__ for t in turns],
        "medians": summary(turns),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gifts", type=int, default=12_000, help="gifts a variant a turn")
    parser.add_argument("--per-call", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--turns", type=int, default=3)
    parser.add_argument("--senders", type=int, default=200)
    parser.add_argument("--appendfsync", choices=["always", "everysec", "no"], default="always")
    parser.add_argument("--json", type=Path, default=None, help="write the results here")
    args = parser.parse_args()
    results = asyncio.run(main_async(args))
    print(table(results["medians"]))
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
