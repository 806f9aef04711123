"""The Lua scripts of ``server/lua/``, registered once and run by SHA.

redis-py's ``AsyncScript`` sends EVALSHA and reloads the script on
NOSCRIPT (after a Redis restart, say), so callers never resend the source.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from redis.asyncio import Redis
from redis.commands.core import AsyncScript

LUA_DIR = Path(__file__).with_name("lua")


def _source(name: str) -> str:
    return (LUA_DIR / f"{name}.lua").read_text(encoding="utf-8")


@dataclass(frozen=True, slots=True)
class Scripts:
    gift: AsyncScript
    settle: AsyncScript
    recharge: AsyncScript
    room_event: AsyncScript

    @classmethod
    def register(cls, redis: Redis) -> Scripts:
        return cls(
            gift=redis.register_script(_source("gift")),
            settle=redis.register_script(_source("settle")),
            recharge=redis.register_script(_source("recharge")),
            room_event=redis.register_script(_source("room_event")),
        )
