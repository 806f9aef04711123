"""Recharge orders: created by a viewer, paid through a provider, credited once.

An order records what the viewer asked to buy; only the provider's signed
confirmation (``payments.py``) makes ``recharge.lua`` credit its coins,
keyed by the provider's payment id, so a replayed callback credits nothing.

Orders cost nothing to create, so their creation is limited: a token bucket
per user and one per client address (``rate_take.lua``; loopback clients,
the machine's own tools, have none), and a cap on the unpaid orders one user
holds (``order_open.lua``). An unpaid order expires
after ``order_ttl_seconds``: long enough for a provider's late callback.
"""

from __future__ import annotations

import ipaddress
import math
import secrets
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

from server.core.catalog import Catalog, Package
from server.core.keys import WalletKeys, address_order_rate_key, order_key
from server.core.payments import PaymentConfirmation
from server.core.promotions import Promotions
from server.core.wording import plural
from server.errors import AccountFlagged, BadField, RateLimited, TooManyOrders, UnknownOrder
from server.money.wallet import RechargeOutcome, Wallets
from server.store.calls import as_text, guarded
from server.store.scripts import Scripts


@dataclass(frozen=True, slots=True)
class OrderLimits:
    """How many orders, how fast, and for how long: from the settings."""

    ttl_seconds: int
    max_open: int
    per_minute: int
    per_minute_per_address: int


@dataclass(frozen=True, slots=True)
class Order:
    id: str
    user: str
    package: Package
    status: str
    # The bonus coins promised when the order was made: the package's, and a
    # promotion's then (server/core/promotions.py), whenever it is paid.
    bonus: int = 0

    @property
    def total_coins(self) -> int:
        return self.package.coins + self.bonus


class Orders:
    def __init__(
        self,
        redis: Redis,
        key_prefix: str,
        catalog: Catalog,
        wallets: Wallets,
        scripts: Scripts,
        limits: OrderLimits,
        promotions: Promotions | None = None,
    ) -> None:
        self._promotions = promotions or Promotions(())
        self._redis = redis
        self._prefix = key_prefix
        self._catalog = catalog
        self._wallets = wallets
        self._scripts = scripts
        self._limits = limits

    async def create(
        self, user: str, package_id: object, now_ms: int, address: str | None = None
    ) -> Order:
        package = self._catalog.package(package_id)
        if await guarded(self._redis.hget(WalletKeys(self._prefix, user).wallet, "flagged")):
            raise AccountFlagged("a chargeback flagged this account: no new orders until cleared")
        limits = self._limits
        await self._take(WalletKeys(self._prefix, user).order_rate, limits.per_minute, now_ms)
        if address is not None and not is_loopback(address):
            bucket = address_order_rate_key(self._prefix, address)
            await self._take(bucket, limits.per_minute_per_address, now_ms)
        order_id = secrets.token_hex(16)
        admitted, open_orders = await guarded(
            self._scripts.order_open(
                keys=[WalletKeys(self._prefix, user).open_orders],
                args=[order_id, now_ms, limits.ttl_seconds * 1000, limits.max_open],
            )
        )
        if not admitted:
            raise TooManyOrders(
                f"{plural(int(open_orders), 'unpaid order')} open; pay one or let one expire"
            )
        bonus = package.bonus + self._promotions.bonus(package.id, now_ms)
        mapping: dict[Any, Any] = {
            "user": user,
            "package": package.id,
            "status": "created",
            "created": now_ms,
            "bonus": bonus,
        }
        key = order_key(self._prefix, order_id)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(key, mapping=mapping)
            pipe.expire(key, limits.ttl_seconds)
            await guarded(pipe.execute())
        return Order(order_id, user, package, "created", bonus)

    async def _take(self, bucket: str, per_minute: int, now_ms: int) -> None:
        """One token of a bucket holding a minute's orders, or ``rate_limited``."""
        taken, wait_ms = await guarded(
            self._scripts.rate_take(keys=[bucket], args=[per_minute / 60, per_minute, now_ms])
        )
        if taken != 1:
            wait = max(1, math.ceil(int(wait_ms) / 1000))
            raise RateLimited(f"too many new orders; retry in {wait} s")

    async def load(self, order_id: str) -> Order:
        raw = await guarded(self._redis.hgetall(order_key(self._prefix, order_id)))
        if not raw:
            raise UnknownOrder(f"no order {order_id!r}")
        fields = {as_text(k): as_text(v) for k, v in raw.items()}
        package = self._catalog.package(fields["package"])
        # An order made before bonuses were kept with it: the package's.
        bonus = int(fields["bonus"]) if "bonus" in fields else package.bonus
        return Order(order_id, fields["user"], package, fields["status"], bonus)

    async def apply(
        self, confirmation: PaymentConfirmation, now_ms: int
    ) -> tuple[RechargeOutcome, Order]:
        """Credit a verified payment to its order's buyer, once."""
        order = await self.load(confirmation.order_id)
        package = order.package
        if (confirmation.price, confirmation.currency) != (package.price, package.currency):
            raise BadField(
                f"paid {confirmation.price} {confirmation.currency}, "
                f"order costs {package.price} {package.currency}"
            )
        outcome = await self._wallets.recharge(
            order.user, confirmation.payment_id, order.id, package.coins, order.bonus, now_ms
        )
        if outcome.status == "ok":
            key = order_key(self._prefix, order.id)
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.hset(key, mapping={"status": "paid", "payment": confirmation.payment_id})
                # Kept once paid: a refund or chargeback may come months later.
                pipe.persist(key)
                await guarded(pipe.execute())
            # Paid, it no longer counts against its buyer's open orders.
            open_orders = WalletKeys(self._prefix, order.user).open_orders
            await guarded(self._redis.zrem(open_orders, order.id))
        return outcome, order


def is_loopback(address: str) -> bool:
    """A client on the server's own machine: its operator's tools, not limited
    per address (a load generator buys for hundreds of users from one)."""
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False
