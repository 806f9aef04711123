"""Money: the Python face of the Lua scripts that move coins and diamonds.

Nothing here reads a balance and then writes it: every movement is one
script call that checks and writes atomically on one wallet's shard
(``server/store/lua/``). A gift commits on the sender's shard, leaving a pending
credit in the sender's outbox; ``settle`` moves it to the creator's shard,
idempotently, so a crash between the two loses and duplicates nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

from server.core.catalog import Gift
from server.core.earnings_keys import reports_pending_key
from server.core.keys import WalletKeys, gift_key, outbox_pattern
from server.core.value_class import value_class
from server.core.wording import plural
from server.errors import BudgetExceeded, InsufficientCoins, RateLimited
from server.settings import Settings
from server.store.calls import as_text, guarded
from server.store.scripts import Scripts
from server.tuning.pipelining import AutoPipeline

# Credits per settle.lua call: enough to make a storm's settlement cheap,
# few enough that one call holds Redis for a millisecond or two.
SETTLE_BATCH = 64
# Lua adds in doubles: a call's coins, counted in hundredths for the
# platform's share (lib_credit.lua), must sum below 2^53 to stay exact.
SETTLE_BATCH_COINS = 2**53 // 128
# The wallet's fields that hold the user's gift token bucket (lib_gift.lua),
# not money.
GIFT_BUCKET_FIELDS = ("gift_mtokens", "gift_ms")
# ...and those that hold the user's own spending limits (lib_budget.lua):
# text, not amounts, and not part of the wallet's balances either.
BUDGET_FIELDS = ("budget", "budget_spent")
# ...and the hash of the last entry of the user's ledger (lib_chain.lua).
CHAIN_FIELD = "chain"
NOT_BALANCES = frozenset((*GIFT_BUCKET_FIELDS, *BUDGET_FIELDS, CHAIN_FIELD))
# ...and the user's fan club memberships, one field a club (fanclub.lua).
FAN_CLUB_FIELD_PREFIX = "fan:"


def _is_balance(name: str) -> bool:
    return name not in NOT_BALANCES and not name.startswith(FAN_CLUB_FIELD_PREFIX)


@value_class
class GiftOrder:
    """One gift request as the gift script takes it."""

    sender: str
    request_id: str
    gift: Gift
    count: int
    creator: str
    room: str
    now_ms: int
    # The room's live stream the gift is sent in ("" outside one): its
    # credit counts in that stream's earnings.
    stream_id: str = ""


@value_class
class GiftOutcome:
    gift_key: str
    balance: int
    cost: int
    duplicate: bool
    # What was bought, where: for a duplicate, the first request's, not the retry's.
    gift: str
    count: int
    room: str
    # The seq of the gift's room event when it was numbered with the debit
    # (room_gifts.lua): kept in the request's record, so a duplicate knows it.
    # 0 when not known (a gift paid through gift.lua, announced separately).
    seq: int = 0
    # The sender's coins counted in the creator's fan club after this gift,
    # for a gift paid now by a member (lib_gift.lua); None otherwise.
    fan_coins: int | None = None


@dataclass(frozen=True, slots=True)
class RechargeOutcome:
    status: str  # "ok", "duplicate" or "order_paid"
    balance: int


@dataclass(frozen=True, slots=True)
class PendingCredit:
    """An outbox entry: coins a sender paid that the creator is yet to get."""

    gift_key: str
    sender: str
    creator: str
    coins: int
    share_percent: int
    ts_ms: int
    room: str
    # For the creator's earnings reports; "" and 0 for an entry written
    # before outbox entries carried them.
    gift: str = ""
    count: int = 0
    # The room's stream when it was paid; "" for none, or an older entry.
    stream_id: str = ""

    @classmethod
    def of(
        cls, sender: str, room: str, outcome: GiftOutcome, share: int, ts_ms: int, stream: str
    ) -> PendingCredit:
        """What a gift paid through ``gift.lua`` left in the sender's outbox:
        the room's creator is owed its cost at the share fixed when paid."""
        return cls(
            gift_key=outcome.gift_key,
            sender=sender,
            creator=room,
            coins=outcome.cost,
            share_percent=share,
            ts_ms=ts_ms,
            room=room,
            gift=outcome.gift,
            count=outcome.count,
            stream_id=stream,
        )

    @classmethod
    def parse(cls, sender: str, key: str, value: str) -> PendingCredit:
        """``creator|coins|share|ts_ms|room|gift|count|stream``, or an older
        form without ``|stream`` or ``|gift|count|stream`` (a sweeper may meet
        entries written by an earlier version). No field holds a ``|``."""
        fields = value.split("|")
        if len(fields) == 5:
            fields += ["", "0"]
        if len(fields) == 7:
            fields.append("")
        if len(fields) != 8:
            raise ValueError(f"outbox entry with {len(fields)} fields")
        creator, coins, share, ts_ms, room, gift, count, stream = fields
        return cls(
            key, sender, creator, int(coins), int(share), int(ts_ms), room, gift, int(count), stream
        )


def _int_fields(raw: dict[Any, Any]) -> dict[str, int]:
    return {as_text(k): int(v) for k, v in raw.items()}


class Wallets:
    def __init__(
        self,
        redis: Redis,
        scripts: Scripts,
        settings: Settings,
        pipeline: AutoPipeline | None = None,
    ) -> None:
        self._redis = redis
        self._scripts = scripts
        self._settings = settings
        self._pipeline = pipeline
        # gift.lua's last arguments that only settings decide, written once.
        self._gift_limits = (
            settings.idempotency_ttl_seconds,
            str(settings.revenue_share_percent),
            str(settings.max_gift_count),
            repr(float(settings.user_gift_rate_per_second)),
            str(settings.user_gift_rate_burst),
        )

    @property
    def key_prefix(self) -> str:
        return self._settings.key_prefix

    def keys(self, user: str) -> WalletKeys:
        return WalletKeys(self._settings.key_prefix, user)

    async def send_gift(self, order: GiftOrder) -> GiftOutcome:
        keys, args = self.gift_call(order)
        reply = await guarded(self._scripts.gift(keys=keys, args=args))
        return self.gift_outcome(order, reply)

    def gift_call(self, order: GiftOrder) -> tuple[list[Any], list[Any]]:
        """``gift.lua``'s KEYS and ARGV (``room_gifts.lua`` takes the same per gift)."""
        keys = self.keys(order.sender)
        return (
            [
                keys.wallet,
                keys.ledger,
                keys.request(order.request_id),
                keys.outbox,
            ],
            [
                order.sender,
                order.request_id,
                order.gift.id,
                str(order.count),
                str(order.gift.coins),
                order.creator,
                order.room,
                order.now_ms,
                *self._gift_limits,
                order.stream_id,
            ],
        )

    @staticmethod
    def gift_outcome(order: GiftOrder, reply: Sequence[Any]) -> GiftOutcome:
        """What ``gift.lua``'s reply values say (eight, and for a gift paid now a
        ninth: the sender's fan club coins); a refusal as its wire error."""
        status, balance, cost, duplicate, bought, bought_count, bought_in, seq = reply[:8]
        fan = int(reply[8]) if len(reply) > 8 else -1
        status = as_text(status)
        if status == "insufficient":
            raise InsufficientCoins(f"{plural(int(cost), 'coin')} needed, {int(balance):,} held")
        if status == "rate_limited":
            raise RateLimited("too many gifts from this user; slow down")
        if status == "budget_exceeded":
            left = int(cost)
            raise BudgetExceeded(
                f"over your own spending limit: {plural(left, 'coin')} left", remaining=left
            )
        if status != "ok":
            raise RuntimeError(f"gift script answered {status!r} for request {order.request_id!r}")
        return GiftOutcome(
            gift_key(order.sender, order.request_id),
            int(balance),
            int(cost),
            bool(duplicate),
            as_text(bought),
            int(bought_count),
            as_text(bought_in),
            int(seq),
            fan if fan >= 0 else None,
        )

    async def prior_outcome(self, sender: str, request_id: str) -> GiftOutcome | None:
        """The recorded outcome of a gift request that already moved money, if any."""
        record = await guarded(self._redis.get(self.keys(sender).request(request_id)))
        if record is None:
            return None
        # balance|cost|gift key|gift|count|room, and |seq when numbered with the debit.
        balance, cost, key, gift, count, room, *seq = as_text(record).split("|")
        return GiftOutcome(
            key, int(balance), int(cost), True, gift, int(count), room, int(seq[0]) if seq else 0
        )

    async def settle(self, credit: PendingCredit, now_ms: int) -> int:
        """Credit the creator (once) and clear the outbox entry. Returns diamonds."""
        (outcome,) = await self.settle_many([credit], now_ms)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    async def settle_many(
        self, credits: Sequence[PendingCredit], now_ms: int
    ) -> list[int | Exception]:
        """Settle credits, each once: per credit, the diamonds it got, or why not.

        Credits to one creator share ``settle.lua`` calls (it sums the
        reports over a call); an ``Unavailable`` for a call is the outcome of
        each of its credits, which stay in their outboxes for the sweeper.
        """
        by_creator: dict[str, list[int]] = {}
        for index, credit in enumerate(credits):
            by_creator.setdefault(credit.creator, []).append(index)
        calls = [
            chunk for indexes in by_creator.values() for chunk in _settle_chunks(indexes, credits)
        ]
        results = await asyncio.gather(
            *(self._settle_call([credits[i] for i in call], now_ms) for call in calls),
            return_exceptions=True,
        )
        outcomes: list[int | Exception] = [0] * len(credits)
        for call, result in zip(calls, results, strict=True):
            if isinstance(result, BaseException) and not isinstance(result, Exception):
                raise result
            for position, index in enumerate(call):
                outcomes[index] = result if isinstance(result, Exception) else result[position]
        return outcomes

    async def _settle_call(
        self, credits: list[PendingCredit], now_ms: int
    ) -> list[int | Exception]:
        """One ``settle.lua`` call for credits to one creator, then their outbox entries."""
        creator = credits[0].creator
        keys = self.keys(creator)
        args: list[Any] = [now_ms, self._settings.idempotency_ttl_seconds]
        for credit in credits:
            args += [
                credit.gift_key,
                str(credit.coins),
                str(credit.share_percent),
                credit.sender,
                credit.gift,
                str(credit.count),
                str(credit.ts_ms),
                credit.stream_id,
            ]
        flat = await guarded(
            self._scripts.settle(
                keys=[
                    keys.wallet,
                    keys.ledger,
                    *(keys.settled(credit.gift_key) for credit in credits),
                ],
                args=args,
            )
        )
        outcomes: list[int | Exception] = []
        done: dict[str, list[str]] = {}
        for credit, status, diamonds in zip(credits, flat[::3], flat[1::3], strict=True):
            if as_text(status) != "ok":
                outcomes.append(RuntimeError(f"settle script refused a credit: {as_text(status)}"))
                continue
            outcomes.append(int(diamonds))
            done.setdefault(self.keys(credit.sender).outbox, []).append(credit.gift_key)
        # Only after the credits are durable: a crash before this leaves the
        # entries for the sweeper, whose settle call is then a no-op.
        await asyncio.gather(
            *(self._clear_outbox(outbox, keys) for outbox, keys in done.items()),
            *([self._mark_for_reports(creator)] if done else []),
        )
        return outcomes

    async def _clear_outbox(self, outbox: str, gift_keys: list[str]) -> None:
        if self._pipeline is None:
            await guarded(self._redis.hdel(outbox, *gift_keys))
        else:  # one of many at once in a storm: share the round trip
            await guarded(self._pipeline.command("HDEL", outbox, *gift_keys))

    async def _mark_for_reports(self, creator: str) -> None:
        """The creator's new credits are yet to be counted in their reports (reports.py)."""
        pending = reports_pending_key(self._settings.key_prefix)
        # The set lives a week (the idempotency TTL) after the last mark.
        ttl = self._settings.idempotency_ttl_seconds
        if self._pipeline is None:
            await guarded(self._redis.sadd(pending, creator))
            await guarded(self._redis.expire(pending, ttl))
        else:
            await asyncio.gather(
                guarded(self._pipeline.command("SADD", pending, creator)),
                guarded(self._pipeline.command("EXPIRE", pending, ttl)),
            )

    async def recharge(
        self, user: str, payment_id: str, order_id: str, coins: int, bonus: int, now_ms: int
    ) -> RechargeOutcome:
        keys = self.keys(user)
        status, balance = await guarded(
            self._scripts.recharge(
                keys=[
                    keys.wallet,
                    keys.ledger,
                    keys.payment(payment_id),
                    keys.paid_order(order_id),
                ],
                args=[payment_id, order_id, str(coins), str(bonus), now_ms],
            )
        )
        if as_text(status) == "bad_argument":
            raise RuntimeError("recharge script refused its arguments")
        return RechargeOutcome(as_text(status), int(balance))

    async def grant_promo(
        self, user: str, coins: int, request_id: str, reason: str, by: str, now_ms: int
    ) -> RechargeOutcome:
        """Promotional coins, once per request id: ``ok`` or ``duplicate``, and the balance."""
        keys = self.keys(user)
        status, balance = await guarded(
            self._scripts.promo(
                keys=[keys.wallet, keys.ledger, keys.promo(request_id)],
                args=[request_id, str(coins), reason, by, now_ms],
            )
        )
        if as_text(status) == "bad_argument":
            raise RuntimeError("promo script refused its arguments")
        return RechargeOutcome(as_text(status), int(balance))

    async def balances(self, user: str) -> dict[str, int]:
        raw = await guarded(self._redis.hgetall(self.keys(user).wallet))
        fields = _int_fields({k: v for k, v in raw.items() if _is_balance(as_text(k))})
        return {"coins": fields.get("coins", 0), "diamonds": fields.get("diamonds", 0)} | fields

    async def pending_credits(self, sender: str) -> list[PendingCredit]:
        raw = await guarded(self._redis.hgetall(self.keys(sender).outbox))
        return [PendingCredit.parse(sender, as_text(k), as_text(v)) for k, v in raw.items()]

    async def senders_with_pending_credits(self) -> AsyncIterator[str]:
        """Every wallet whose outbox holds entries (SCAN: for the sweeper, not hot paths)."""
        pattern = outbox_pattern(self._settings.key_prefix)
        start = len(self._settings.key_prefix) + len(":{w:")
        async for key in self._redis.scan_iter(match=pattern, count=1000, _type="hash"):
            text = as_text(key)
            yield text[start : text.index("}", start)]

    async def grant_coins(self, user: str, coins: int, reason: str, now_ms: int) -> int:
        """Promotional coins (demo seeding): a recharge keyed by ``reason``."""
        outcome = await self.recharge(user, f"grant:{reason}", f"grant:{reason}", 0, coins, now_ms)
        return outcome.balance


def _settle_chunks(indexes: list[int], credits: Sequence[PendingCredit]) -> Iterator[list[int]]:
    """Credits to one creator, cut into calls of at most ``SETTLE_BATCH`` credits
    whose coins sum below ``SETTLE_BATCH_COINS``."""
    chunk: list[int] = []
    coins = 0
    for index in indexes:
        credit_coins = credits[index].coins
        if chunk and (len(chunk) == SETTLE_BATCH or coins + credit_coins >= SETTLE_BATCH_COINS):
            yield chunk
            chunk, coins = [], 0
        chunk.append(index)
        coins += credit_coins
    if chunk:
        yield chunk
