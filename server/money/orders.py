"""Recharge orders: created by a viewer, paid through a provider, credited once.

An order records what the viewer asked to buy; only the provider's signed
confirmation (``payments.py``) makes ``recharge.lua`` credit its coins,
keyed by the provider's payment id, so a replayed callback credits nothing.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

from server.core.catalog import Catalog, Package
from server.core.keys import order_key
from server.core.payments import PaymentConfirmation
from server.errors import BadField, UnknownOrder
from server.money.wallet import RechargeOutcome, Wallets
from server.store.calls import as_text, guarded

ORDER_TTL_SECONDS = 30 * 24 * 3600


@dataclass(frozen=True, slots=True)
class Order:
    id: str
    user: str
    package: Package
    status: str


class Orders:
    def __init__(self, redis: Redis, key_prefix: str, catalog: Catalog, wallets: Wallets) -> None:
        self._redis = redis
        self._prefix = key_prefix
        self._catalog = catalog
        self._wallets = wallets

    async def create(self, user: str, package_id: object, now_ms: int) -> Order:
        package = self._catalog.package(package_id)
        order_id = secrets.token_hex(16)
        mapping: dict[Any, Any] = {
            "user": user,
            "package": package.id,
            "status": "created",
            "created": now_ms,
        }
        key = order_key(self._prefix, order_id)
        await guarded(self._redis.hset(key, mapping=mapping))
        await guarded(self._redis.expire(key, ORDER_TTL_SECONDS))
        return Order(order_id, user, package, "created")

    async def load(self, order_id: str) -> Order:
        raw = await guarded(self._redis.hgetall(order_key(self._prefix, order_id)))
        if not raw:
            raise UnknownOrder(f"no order {order_id!r}")
        fields = {as_text(k): as_text(v) for k, v in raw.items()}
        package = self._catalog.package(fields["package"])
        return Order(order_id, fields["user"], package, fields["status"])

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
            order.user, confirmation.payment_id, order.id, package.coins, package.bonus, now_ms
        )
        if outcome.status == "ok":
            key = order_key(self._prefix, order.id)
            await guarded(
                self._redis.hset(
                    key, mapping={"status": "paid", "payment": confirmation.payment_id}
                )
            )
        return outcome, order
