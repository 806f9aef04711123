"""Sending a gift, from a validated request to the sender's ack.

1. Refuse what the rules forbid: watch-only sockets, unknown gifts, gifts to
   oneself, rooms whose creator does not take gifts.
2. Commit: ``gift.lua`` debits the sender and records the pending credit,
   atomically and once per request id.
3. Announce: ``room_event.lua`` numbers and publishes the room event, once
   per gift, so a retried request gets the same seq and shows once.
4. Queue the creator's credit for settlement (idempotent; see settlement.py).

A crash after 2 loses nothing: the client retries the request id, step 2
answers with the first outcome, and steps 3-4 run again harmlessly.

On a single Redis node with script batching, steps 2 to 4 are one call
(``RoomGifts``): the creator is credited in the same call as the debit, so
there is nothing to settle. The gift's event is built before the debit. The
event's seq is kept in the request's record, so a retry is acked with it
and shown nowhere again.

A streakable gift's combo is counted by the script that numbers its event
(``lib_combo.lua``), once it is paid: one run per sender, room and gift,
whichever socket or process the gifts came through. ``ComboEnds`` ends it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from prometheus_client import Counter

from server.core.auth import Identity
from server.core.catalog import Catalog, Gift, Tier
from server.core.protocol import Ack, SendGift, gift_event_wire
from server.errors import (
    AgeRestricted,
    ConfirmRequired,
    FanLevelRequired,
    GiftsDisabled,
    NotAllowed,
    SendLimitExceeded,
    Suspended,
    UnknownGift,
)
from server.metrics import Metrics
from server.money.ages import Ages
from server.money.creators import Creators
from server.money.fanclub import FanClubs
from server.money.room_gifts import RoomGifts
from server.money.settlement import Settler, now_ms
from server.money.suspensions import Suspensions
from server.money.wallet import GiftOrder, GiftOutcome, PendingCredit, Wallets
from server.rooms.combo_ends import ComboEnds
from server.rooms.room_log import ComboHit, RoomLog, gift_payload


def gift_removed(gift_id: str) -> Gift:
    """Stands in for a gift paid for before an operator removed it from the catalogue."""
    return Gift(id=gift_id, name=gift_id, coins=0, tier=Tier.SMALL, streakable=False)


@dataclass(frozen=True, slots=True)
class LargeSend:
    """How much one send may be worth: above ``confirm_above`` coins only with
    the user's confirmation, never above ``ceiling``."""

    confirm_above: int = 1000
    ceiling: int = 500_000

    def check(self, coins: int, confirmed: bool) -> None:
        if coins > self.ceiling:
            raise SendLimitExceeded(
                f"one send may be worth at most {self.ceiling:,} coins; this is {coins:,}",
                limit=self.ceiling,
            )
        if coins > self.confirm_above and not confirmed:
            raise ConfirmRequired(
                f'a send of {coins:,} coins needs the user\'s confirmation ("confirm": true)',
                coins=coins,
                threshold=self.confirm_above,
            )


class Gifting:
    def __init__(
        self,
        catalog: Catalog,
        wallets: Wallets,
        creators: Creators,
        room_log: RoomLog,
        settler: Settler,
        metrics: Metrics,
        revenue_share_percent: int,
        combo_ends: ComboEnds,
        room_gifts: RoomGifts | None = None,
        suspensions: Suspensions | None = None,
        large_send: LargeSend | None = None,
        ages: Ages | None = None,
        fans: FanClubs | None = None,
    ) -> None:
        self.catalog = catalog
        # Fan club levels: shown on gift events, required by some gifts.
        self._fans = fans
        self._ages = ages
        self._large_send = large_send or LargeSend()
        self._suspensions = suspensions
        # On a single node: the debit and the announcement in one call.
        self._room_gifts = room_gifts
        self._combo_ends = combo_ends
        self._wallets = wallets
        self._creators = creators
        self._room_log = room_log
        self._settler = settler
        self._metrics = metrics
        self._gifts_by_tier: dict[Tier, Counter] = {}
        self._share = revenue_share_percent

    async def send(self, sender: Identity, room: str, request: SendGift) -> Ack:
        if not sender.can_send or sender.user is None:
            raise NotAllowed("sign in as a viewer to send gifts; this socket is watch-only")
        user = sender.user
        started_ms = now_ms()
        try:
            gift, stream_id = await self._admit(sender, room, request, started_ms)
            fan_level = await self._fan_level(user, room, gift)
        except (
            NotAllowed,
            GiftsDisabled,
            UnknownGift,
            Suspended,
            ConfirmRequired,
            SendLimitExceeded,
            AgeRestricted,
            FanLevelRequired,
        ):
            # A retry of a request that was paid must not hear "nothing moved"
            # because a rule changed since: it gets the first outcome.
            prior = await self._wallets.prior_outcome(user, request.id)
            if prior is None:
                raise
            return await self._announce(user, request.id, prior, started_ms, None)
        order = GiftOrder(user, request.id, gift, request.count, room, room, started_ms, stream_id)
        if self._room_gifts is not None:
            return await self._send_and_announce(order, fan_level)
        outcome = await self._wallets.send_gift(order)
        return await self._announce(user, request.id, outcome, started_ms, stream_id, fan_level)

    def _fan_counted(self, user: str, outcome: GiftOutcome) -> None:
        if self._fans is not None:
            self._fans.counted(user, outcome.room, outcome.fan_coins)

    async def _fan_level(self, user: str, room: str, gift: Gift) -> int:
        """The sender's level in the room's fan club, shown on the event; a gift
        that requires more is refused (after a fresh read: the cache may be
        behind a level just reached, never ahead)."""
        if self._fans is None:
            return 0
        level = await self._fans.level(user, room)
        if level < gift.fan_level_required:
            level = await self._fans.level(user, room, fresh=True)
            if level < gift.fan_level_required:
                raise FanLevelRequired(
                    f"{gift.name} is for fan club members of level "
                    f"{gift.fan_level_required} or more",
                    required=gift.fan_level_required,
                    level=level,
                )
        return level

    async def _announce(
        self,
        user: str,
        request_id: str,
        outcome: GiftOutcome,
        started_ms: int,
        stream_id: str | None,
        fan_level: int = 0,
    ) -> Ack:
        """Steps 3 and 4 for a gift ``gift.lua`` has answered for, sent in
        ``stream_id`` (None for a retry answered from its record: its event,
        if still to be shown, is shown in the stream the room is in now)."""
        if outcome.duplicate and outcome.seq:
            # Numbered and shown with its debit (room_gifts.lua); its credit is
            # settled or waits in the outbox for the sweeper.
            return self._ack(request_id, outcome, outcome.seq)
        gift = self.catalog.gifts.get(outcome.gift) or gift_removed(outcome.gift)
        if not outcome.duplicate:
            # Counted once the money moved, whether or not the announcement works.
            self._count(gift, outcome)
            self._fan_counted(user, outcome)
        # A retry is announced (at most once) where the gift was paid for,
        # whichever room the retry came from.
        room = outcome.room
        if stream_id is None:
            stream_id = self._creators.cached_stream(room)
        event = self._event(
            user,
            room,
            gift,
            outcome.count,
            outcome.cost,
            started_ms,
            stream_id,
            request_id,
            fan_level,
        )
        combo = None
        if gift.streakable and not outcome.duplicate:
            # A retry's late event shows without a combo: its run is long over.
            self._combo_ends.expect(room, user, gift.id, started_ms)
            combo = ComboHit(user, gift.id, outcome.count, started_ms, stream_id)
        seq, _ = await self._room_log.publish(room, outcome.gift_key, event, combo)
        if not outcome.duplicate:
            # A duplicate's credit is settled already, or waits in the outbox
            # with its original share for the sweeper.
            self._settler.submit(self._pending_credit(user, room, outcome, started_ms, stream_id))
        return self._ack(request_id, outcome, seq)

    async def _send_and_announce(self, order: GiftOrder, fan_level: int = 0) -> Ack:
        """Steps 2 and 3 in one call (``RoomGifts``), then step 4."""
        assert self._room_gifts is not None
        user, room, gift, count = order.sender, order.room, order.gift, order.count
        stream_id = order.stream_id or None
        event = self._event(
            user,
            room,
            gift,
            count,
            count * gift.coins,
            order.now_ms,
            stream_id,
            order.request_id,
            fan_level,
        )
        if gift.streakable:
            self._combo_ends.expect(room, user, gift.id, order.now_ms)
        sent = await self._room_gifts.send(order, gift_payload(event, gift.streakable))
        outcome = sent.outcome
        if outcome.duplicate:
            # Shown (once) as what the first request bought, where it was paid.
            return await self._announce(user, order.request_id, outcome, order.now_ms, None)
        # Credited to the creator by the same call: nothing to settle.
        self._count(gift, outcome)
        self._fan_counted(user, outcome)
        return self._ack(order.request_id, outcome, outcome.seq)

    @staticmethod
    def _event(
        user: str,
        room: str,
        gift: Gift,
        count: int,
        coins: int,
        ts_ms: int,
        stream_id: str | None,
        request_id: str,
        fan_level: int = 0,
    ) -> dict[str, Any]:
        """The gift's room event (``GiftEvent``) as it goes on the wire."""
        return gift_event_wire(
            room,
            user,
            gift.id,
            count,
            coins,
            str(gift.tier),
            ts_ms,
            stream_id,
            request_id,
            fan_level,
            room if fan_level > 0 else None,
        )

    @staticmethod
    def _ack(request_id: str, outcome: GiftOutcome, seq: int) -> Ack:
        return Ack(
            id=request_id,
            balance=outcome.balance,
            seq=seq,
            coins=outcome.cost,
            duplicate=outcome.duplicate,
        )

    async def _admit(
        self, sender: Identity, room: str, request: SendGift, now_ms: int
    ) -> tuple[Gift, str]:
        """The gift asked for, if the rules allow sending it here, and the
        room's live stream."""
        gift = self.catalog.gift(request.gift)
        self._large_send.check(gift.coins * request.count, request.confirm)
        return gift, await self.admit_payment(sender, room, now_ms)

    async def admit_payment(self, sender: Identity, room: str, now_ms: int) -> str:
        """Whether the sender may pay the room's creator now (a gift, or a fan
        club's price): the room's live stream if so, else the typed refusal."""
        user = sender.user
        if not sender.can_send or user is None:
            raise NotAllowed("sign in as a viewer to send gifts; this socket is watch-only")
        if self._suspensions is not None:
            await self._suspensions.require_not_suspended(user)
        if self._ages is not None:
            await self._ages.require_may_send(sender, now_ms)
        if user == room:
            raise NotAllowed("creators cannot send gifts in their own room")
        profile = await self._creators.require_accepting(room)
        assert profile.stream_id is not None  # else RoomOffline
        return profile.stream_id

    def _pending_credit(
        self, sender: str, room: str, outcome: GiftOutcome, ts_ms: int, stream_id: str | None
    ) -> PendingCredit:
        return PendingCredit.of(sender, room, outcome, self._share, ts_ms, stream_id or "")

    def _count(self, gift: Gift, outcome: GiftOutcome) -> None:
        counter = self._gifts_by_tier.get(gift.tier)
        if counter is None:
            # Looked up once a tier: labels() was 3% of a storm's gift path.
            counter = self._metrics.gifts.labels(tier=str(gift.tier))
            self._gifts_by_tier[gift.tier] = counter
        counter.inc()
        self._metrics.coins_spent.inc(outcome.cost)
