"""Who connects: this run's users, their tokens and coins, and the overlay keys.

Everything is made through the server's own HTTP API, as a platform's
clients would: ``POST /api/dev/token`` stands in for the login,
``POST /api/orders`` + ``POST /api/sandbox/pay/{order_id}`` buy coins, and
``GET /api/creator/overlay-key`` gives each room's overlay its key. So the
target must run with dev tokens and sandbox payments on (demo mode).

Rooms are creators' rooms and must already take gifts (a creator who is
eligible, has switched gifting on and is live): the API cannot make a
creator. On a demo server that is ``carol``; other room ids can be
watched, but gifts there are refused with ``gifts_disabled`` (or
``gifting_off``, where the creator has switched gifting off, or
``room_offline``, where the creator is not live).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from server.loadtest.api import Api, ApiError
from server.loadtest.config import LoadConfig
from server.loadtest.patterns import GiftMix

# Coins bought per sender: the expected spend times this, for streaks of bad luck.
COIN_MARGIN = 1.5
MIN_COINS = 200


class SetupError(Exception):
    """The target cannot be load-tested as asked; the message says why."""


@dataclass(frozen=True, slots=True)
class SocketSpec:
    kind: str  # "viewer", "sender" or "overlay"
    room: str
    # What the socket shows the server: nothing, a token or an overlay key.
    credential: tuple[tuple[str, str], ...]
    user: str | None
    index: int  # unique in the run: seeds a sender's random pattern


@dataclass(frozen=True)
class Population:
    sockets: tuple[SocketSpec, ...]
    catalog: dict[str, Any]
    coins_per_sender: int

    def split(self, parts: int) -> list[list[SocketSpec]]:
        """Round robin, so that every worker gets its share of each room and of the senders."""
        return [list(self.sockets[i::parts]) for i in range(parts)]


async def prepare(config: LoadConfig, say: Callable[[str], None]) -> Population:
    api = Api(config.base_url)
    try:
        catalog = await api.get("/api/catalog")
    except ApiError as exc:
        raise SetupError(f"cannot read the catalogue at {config.base_url}: {exc}") from exc
    mix = GiftMix.from_catalog(catalog)
    coins = coins_per_sender(config, mix)
    say(f"setup: {config.senders} senders with {coins:,} coins each, tokens and overlay keys")
    senders = [_sender(api, config, i, coins, catalog["packages"]) for i in range(config.senders)]
    watchers = [_viewer(api, config, i) for i in range(config.senders, config.viewers)]
    overlays = [_overlays(api, config, room) for room in config.rooms]
    try:
        made = await asyncio.gather(*senders, *watchers)
        keyed = await asyncio.gather(*overlays)
    except ApiError as exc:
        raise SetupError(_explain(exc)) from exc
    sockets = [*made, *(spec for specs in keyed for spec in specs)]
    return Population(sockets=tuple(sockets), catalog=catalog, coins_per_sender=coins)


def coins_per_sender(config: LoadConfig, mix: GiftMix) -> int:
    if config.senders == 0:
        return 0
    sends = config.rate / config.senders * config.duration
    return max(MIN_COINS, math.ceil(sends * mix.expected_coins(config.big_fraction) * COIN_MARGIN))


def _room_of(config: LoadConfig, index: int) -> str:
    return config.rooms[index % len(config.rooms)]


async def _token(api: Api, user: str, role: str) -> str:
    answer = await api.post("/api/dev/token", {"user": user, "role": role})
    return str(answer["token"])


async def _sender(
    api: Api, config: LoadConfig, index: int, coins: int, packages: list[dict[str, Any]]
) -> SocketSpec:
    user = f"{config.user_prefix}s{index}"
    token = await _token(api, user, "viewer")
    await buy_coins(api, token, coins, packages)
    return SocketSpec("sender", _room_of(config, index), (("token", token),), user, index)


async def buy_coins(api: Api, token: str, coins: int, packages: list[dict[str, Any]]) -> int:
    """Buy at least ``coins`` with the largest package, paid in the sandbox; coins bought."""
    largest = max(packages, key=lambda p: int(p["coins"]) + int(p.get("bonus", 0)))
    per_order = int(largest["coins"]) + int(largest.get("bonus", 0))
    bought = 0
    while bought < coins:
        order = await api.post("/api/orders", {"package": largest["id"]}, token)
        paid = await api.post(f"/api/sandbox/pay/{order['order_id']}", None, token)
        if paid.get("status") != "ok":
            raise SetupError(f"sandbox payment answered {paid.get('status')!r}, not 'ok'")
        bought += per_order
    return bought


async def _viewer(api: Api, config: LoadConfig, index: int) -> SocketSpec:
    room = _room_of(config, index)
    if not config.signed_viewers:
        return SocketSpec("viewer", room, (), None, index)
    user = f"{config.user_prefix}v{index}"
    token = await _token(api, user, "viewer")
    return SocketSpec("viewer", room, (("token", token),), user, index)


async def _overlays(api: Api, config: LoadConfig, room: str) -> list[SocketSpec]:
    if config.overlays == 0:
        return []
    creator = await _token(api, room, "creator")
    key = str((await api.get("/api/creator/overlay-key", creator))["key"])
    base = config.viewers + config.rooms.index(room) * config.overlays
    return [
        SocketSpec("overlay", room, (("key", key),), room, base + i) for i in range(config.overlays)
    ]


def _explain(exc: ApiError) -> str:
    if exc.code == "not_found":
        return (
            f"{exc}: the load test makes its users and coins through the demo endpoints "
            "(dev tokens, sandbox payments); run the server in demo mode (giftstream serve --demo)"
        )
    return f"setting up through the API failed: {exc}"
