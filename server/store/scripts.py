"""The Lua scripts of ``server/store/lua/``, registered once and run by SHA.

redis-py's ``AsyncScript`` sends EVALSHA and reloads the script on
NOSCRIPT (after a Redis restart, say), so callers never resend the source.
On a Redis Cluster, EVALSHA goes to the primary that owns the slot of the
script's keys (one hash tag per script), and the reload (SCRIPT LOAD) goes
to every primary: a primary that restarted or a replica just promoted
answers NOSCRIPT once, then runs the script by SHA like the others.
"""

from __future__ import annotations

from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from redis.asyncio import Redis

from server.tuning.pipelining import AutoPipeline, BatchedScript

LUA_DIR = Path(__file__).with_name("lua")


# Redis gives a script no way to load another: the functions a script shares
# with others (``lib_*.lua``) are put in front of its own text.
LIBRARIES: dict[str, tuple[str, ...]] = {
    "gift": ("lib_numbers", "lib_chain", "lib_budget", "lib_gift"),
    "room_event": ("lib_numbers", "lib_msgpack", "lib_combo", "lib_announce"),
    "room_gifts": (
        "lib_numbers",
        "lib_chain",
        "lib_budget",
        "lib_gift",
        "lib_msgpack",
        "lib_combo",
        "lib_announce",
        "lib_credit",
    ),
    "combo_end": ("lib_numbers", "lib_msgpack", "lib_combo", "lib_announce"),
    "budget": ("lib_budget",),
    "settle": ("lib_numbers", "lib_chain", "lib_credit"),
    "fanclub": ("lib_numbers", "lib_chain", "lib_budget", "lib_gift"),
    "rate_take": ("lib_bucket",),
    # Every script that writes a ledger entry chains it (lib_chain.lua).
    "recharge": ("lib_chain",),
    "promo": ("lib_chain",),
    "clawback": ("lib_chain",),
    "withdraw": ("lib_chain",),
    "payout": ("lib_chain",),
}


def source(name: str) -> str:
    """The text Redis runs for script ``name``: its libraries, then its own file."""
    parts = [*LIBRARIES.get(name, ()), name]
    return "\n".join((LUA_DIR / f"{part}.lua").read_text(encoding="utf-8") for part in parts)


class ScriptCall(Protocol):
    def __call__(self, keys: Sequence[Any] = ..., args: Sequence[Any] = ...) -> Awaitable[Any]: ...


@dataclass(frozen=True, slots=True)
class Scripts:
    gift: ScriptCall
    settle: ScriptCall
    # A run of a creator's credits added to their earnings reports, once.
    report: ScriptCall
    recharge: ScriptCall
    room_event: ScriptCall
    room_replay: ScriptCall
    # A single node only: gift.lua and room_event.lua in one call.
    room_gifts: ScriptCall
    # A user's room sockets, admitted against their cap in one step.
    tally_admit: ScriptCall
    # A token bucket's one token (orders per user, per address).
    rate_take: ScriptCall
    # A new recharge order among its user's open ones, against their cap.
    order_open: ScriptCall
    # A follow or an unfollow of a creator, counted once.
    follow: ScriptCall
    # A creator's diamonds reserved for a withdrawal, once per request id.
    withdraw: ScriptCall
    # The payout provider's word on a withdrawal: paid out, or returned.
    payout: ScriptCall
    # Promotional coins the operator grants, once per request id.
    promo: ScriptCall
    # A creator's stream started, seen or ended, once.
    stream: ScriptCall
    # A user's own spending limits set, against the budget they were read as.
    budget: ScriptCall
    # A paid order's coins taken back (refund, chargeback), once per order.
    clawback: ScriptCall
    # A creator's goal set, cleared, or filled from their credits once each.
    goal: ScriptCall
    # A viewer joins a creator's fan club: its price paid as a gift, once.
    fanclub: ScriptCall
    # A room's combos whose window passed, each ended once.
    combo_end: ScriptCall

    @classmethod
    def register(cls, redis: Redis, pipeline: AutoPipeline | None = None) -> Scripts:
        """The scripts, each call sent alone, or batched through ``pipeline``."""

        def load(name: str) -> ScriptCall:
            script = redis.register_script(source(name))
            return script if pipeline is None else BatchedScript(script, pipeline)

        return cls(
            gift=load("gift"),
            settle=load("settle"),
            report=load("report"),
            recharge=load("recharge"),
            room_event=load("room_event"),
            room_replay=load("room_replay"),
            room_gifts=load("room_gifts"),
            tally_admit=load("tally_admit"),
            rate_take=load("rate_take"),
            order_open=load("order_open"),
            follow=load("follow"),
            withdraw=load("withdraw"),
            payout=load("payout"),
            promo=load("promo"),
            stream=load("stream"),
            budget=load("budget"),
            clawback=load("clawback"),
            goal=load("goal"),
            fanclub=load("fanclub"),
            combo_end=load("combo_end"),
        )
