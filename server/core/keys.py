"""Redis key names: one hash tag per wallet, per room and per order.

Every key of one wallet carries the tag ``{w:<user>}``, every key of one room
``{r:<room>}``, every order ``{o:<order id>}``, so that on a Redis Cluster
each Lua script touches exactly one slot. Pure.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class WalletKeys:
    prefix: str
    user: str

    @property
    def _base(self) -> str:
        return f"{self.prefix}:{{w:{self.user}}}"

    @property
    def wallet(self) -> str:
        return f"{self._base}:wallet"

    @property
    def revoked_before(self) -> str:
        """Until when (s) the user's tokens are revoked (server/access/revocations.py)."""
        return f"{self._base}:revoked_before"

    @property
    def ledger(self) -> str:
        return f"{self._base}:ledger"

    @property
    def outbox(self) -> str:
        return f"{self._base}:outbox"

    @property
    def sockets(self) -> str:
        """Open room sockets of this user, per server process (tally.py)."""
        return f"{self._base}:sockets"

    @property
    def open_orders(self) -> str:
        """The user's unpaid recharge orders, by when each expires (order_open.lua)."""
        return f"{self._base}:open_orders"

    @property
    def order_rate(self) -> str:
        """The user's token bucket for new orders (rate_take.lua)."""
        return f"{self._base}:order_rate"

    @property
    def creator(self) -> str:
        """The creator profile: gifts_enabled, followers, age, adult_claimed,
        suspended, and the live stream (stream_id, stream_started, stream_seen)."""
        return f"{self._base}:creator"

    @property
    def payout_profile(self) -> str:
        """Where a creator is paid: method, legal name, tax id, the provider's payee."""
        return f"{self._base}:payout"

    @property
    def withdrawals(self) -> str:
        """The creator's withdrawal ids by when each was asked for (withdraw.lua)."""
        return f"{self._base}:withdrawals"

    def withdrawal(self, withdrawal_id: str) -> str:
        return f"{self._base}:wd:{withdrawal_id}"

    def withdrawal_request(self, request_id: str) -> str:
        return f"{self._base}:wreq:{request_id}"

    def withdrawn_on(self, day: int) -> str:
        """Diamonds asked for on a UTC day (days since 1970-01-01), for the daily limit."""
        return f"{self._base}:wday:{day}"

    @property
    def streams(self) -> str:
        """The creator's stream ids by when each started, ms (stream.lua)."""
        return f"{self._base}:streams"

    def stream(self, stream_id: str) -> str:
        """One stream's record: started, seen, ended, end_reason."""
        return f"{self._base}:stream:{stream_id}"

    @property
    def followers(self) -> str:
        """The user ids following this creator (follow.lua)."""
        return f"{self._base}:followers"

    def request(self, request_id: str) -> str:
        return f"{self._base}:req:{request_id}"

    def promo(self, request_id: str) -> str:
        """The coins an operator's grant credited (promo.lua)."""
        return f"{self._base}:promo:{request_id}"

    def payment(self, payment_id: str) -> str:
        return f"{self._base}:pay:{payment_id}"

    def paid_order(self, order_id: str) -> str:
        return f"{self._base}:paid:{order_id}"

    def clawback(self, order_id: str) -> str:
        """What a refund or chargeback of this order took back (clawback.lua)."""
        return f"{self._base}:claw:{order_id}"

    def settled(self, gift_key: str) -> str:
        return f"{self._base}:settled:{gift_key}"


@dataclass(frozen=True, slots=True)
class RoomKeys:
    prefix: str
    room: str

    @property
    def _base(self) -> str:
        return f"{self.prefix}:{{r:{self.room}}}"

    @property
    def seq(self) -> str:
        return f"{self._base}:seq"

    @property
    def history(self) -> str:
        return f"{self._base}:history"

    @property
    def epoch(self) -> str:
        return f"{self._base}:epoch"

    @property
    def channel(self) -> str:
        return f"{self._base}:events"

    @property
    def presence(self) -> str:
        return f"{self._base}:presence"

    @property
    def combos(self) -> str:
        """The room's open combos, by sender and gift (lib_combo.lua)."""
        return f"{self._base}:combos"

    def event_marker(self, event_key: str) -> str:
        return f"{self._base}:evt:{event_key}"


def order_key(prefix: str, order_id: str) -> str:
    return f"{prefix}:{{o:{order_id}}}:order"


def address_order_rate_key(prefix: str, address: str) -> str:
    """A client address's token bucket for new orders (rate_take.lua)."""
    return f"{prefix}:{{ip:{address}}}:order_rate"


def live_streams_key(prefix: str) -> str:
    """Creators with a live stream, by when it was last seen (ms): where the
    server looks for streams to end when nothing has been seen of them."""
    return f"{prefix}:streams:live"


def revoked_token_key(prefix: str, token_id: str) -> str:
    """A token revoked by its id (its "jti" claim) until it would have expired."""
    return f"{prefix}:revoked:{token_id}"


def recent_revocations_key(prefix: str) -> str:
    """The revocations of the last minutes, by when each was made (ms): every
    process reads it to close the room sockets opened with a revoked token."""
    return f"{prefix}:revocations:recent"


def combo_owners_key(prefix: str) -> str:
    """Processes that count combos, by when each last said it is alive (ms):
    where a process finds the combos of one that died, to end them."""
    return f"{prefix}:combos:owners"


def combo_rooms_key(prefix: str, process_id: str) -> str:
    """The rooms where a process counted a combo, by when it last did (ms)."""
    return f"{prefix}:combos:rooms:{process_id}"


def outbox_pattern(prefix: str) -> str:
    """SCAN pattern matching every wallet's outbox, for the sweeper."""
    return f"{prefix}:{{w:*}}:outbox"


def gift_key(sender: str, request_id: str) -> str:
    """Names one gift everywhere: user ids hold no ':' so this splits cleanly."""
    return f"{sender}:{request_id}"
