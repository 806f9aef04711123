"""Refunds and chargebacks: a paid order's coins taken back (clawback.lua).

Three ways in, one script: an operator's refund (``POST /api/admin/refunds``:
a minor's recharge on a guardian's request, fraud, other), and the payment
provider's ``payment.refunded`` and ``payment.charged_back`` callbacks.
Whichever comes first takes back what the wallet still holds of the order
and records the rest as spent (the shortfall); any later one, of either kind,
is answered with that first outcome. A chargeback flags the account: its new
orders are refused (``account_flagged``) until an operator clears the flag.

An operator's refund also hands the money back through the payment
provider; the sandbox provider of demo mode confirms at once with the
signed ``payment.refunded`` callback, which finds the order taken back.
The order's own record (``{o:<id>}:order``) says ``refunded`` or
``charged_back`` after the script: a status for people, the script's record
on the buyer's shard is what counts.
"""

from __future__ import annotations

from dataclasses import dataclass

from redis.asyncio import Redis

from server.core.keys import WalletKeys, order_key
from server.errors import OrderNotPaid
from server.money.orders import Order
from server.store.calls import as_text, guarded
from server.store.scripts import Scripts

REFUND, CHARGEBACK = "refund", "chargeback"
# Why an operator refunds: the reasons the API takes.
REFUND_REASONS = ("guardian_request", "fraud", "other")
ORDER_STATUS = {REFUND: "refunded", CHARGEBACK: "charged_back"}


@dataclass(frozen=True, slots=True)
class Clawback:
    status: str  # "ok" (now) or "duplicate" (before)
    kind: str
    order_id: str
    user: str
    taken: int
    shortfall: int
    balance: int

    def to_dict(self) -> dict[str, object]:
        return {
            "status": self.status,
            "kind": self.kind,
            "order_id": self.order_id,
            "user": self.user,
            "coins_taken_back": self.taken,
            "shortfall": self.shortfall,
            "balance": self.balance,
        }


class Clawbacks:
    def __init__(self, redis: Redis, scripts: Scripts, key_prefix: str) -> None:
        self._redis = redis
        self._scripts = scripts
        self._prefix = key_prefix

    async def take_back(self, order: Order, kind: str, reason: str, now_ms: int) -> Clawback:
        keys = WalletKeys(self._prefix, order.user)
        status, taken, shortfall, balance = await guarded(
            self._scripts.clawback(
                keys=[
                    keys.wallet,
                    keys.ledger,
                    keys.paid_order(order.id),
                    keys.clawback(order.id),
                ],
                args=[order.id, kind, str(order.total_coins), reason, now_ms],
            )
        )
        status = as_text(status)
        if status == "not_paid":
            raise OrderNotPaid(f"order {order.id} was never credited: nothing to take back")
        if status not in ("ok", "duplicate"):
            raise RuntimeError(f"clawback.lua answered {status!r}")
        if status == "ok":
            await guarded(
                self._redis.hset(order_key(self._prefix, order.id), "status", ORDER_STATUS[kind])
            )
        return Clawback(
            status, kind, order.id, order.user, int(taken), int(shortfall), int(balance)
        )

    async def confirm_refund(self, order_id: str, refund_id: str, now_ms: int) -> None:
        """The provider says the money went back: noted on the order."""
        await guarded(
            self._redis.hset(
                order_key(self._prefix, order_id),
                mapping={"refund": refund_id, "refund_confirmed": now_ms},
            )
        )

    async def unflag(self, user: str) -> bool:
        """Clear the flag a chargeback set; whether there was one."""
        wallet = WalletKeys(self._prefix, user).wallet
        return bool(await guarded(self._redis.hdel(wallet, "flagged")))
