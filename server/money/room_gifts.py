"""On one Redis node: a gift's debit and its announcement in one script call.

Elsewhere a gift takes two calls one after the other: ``gift.lua`` on the
sender's shard, then ``room_event.lua`` on the room's. On a single node
every key is on the one server, so ``room_gifts.lua`` runs both for each
gift of a room, and the sender's ack waits for one round trip instead of
two. A room's gifts sent at the same moment share the call (up to
``GIFTS_PER_CALL``), as its events share ``room_event.lua`` calls.

The event is built before the debit, so it shows what this request asks
for. Its seq is kept in the request's record rather than in an event
marker (two commands a gift fewer): when the request id was paid for
already, the script announces nothing and answers with the recorded seq.
A request paid through ``gift.lua`` has no seq recorded: what it bought is
shown, by the caller, through ``room_event.lua`` (``Gifting``).
"""

from __future__ import annotations

from typing import Any

from server.core.earnings_keys import reports_pending_key
from server.core.value_class import value_class
from server.money.wallet import GiftOrder, GiftOutcome, Wallets
from server.rooms.room_log import RoomLog
from server.store.calls import guarded
from server.store.scripts import Scripts
from server.tuning.pipelining import AutoPipeline, BatchedScript
from server.tuning.script_groups import ScriptGroups

# 90 to 180 us of Redis time a gift here: a full call holds Redis for about a
# millisecond, and other calls (a settlement, another room) get their turn.
# In the benchmark, 8 did no worse than 32 (six and five runs).
GIFTS_PER_CALL = 8
# gift.lua's eight values (the last the seq), then published.
REPLY_WIDTH = 10
# Per gift: gift.lua's wallet, ledger and request record.
GIFT_KEYS = 3


@value_class
class SentGift:
    outcome: GiftOutcome
    # Whether this call announced the gift (not a duplicate).
    published: bool

    @property
    def seq(self) -> int:
        """The gift's event's seq: new, or recorded with its first debit."""
        return self.outcome.seq


class RoomGifts:
    def __init__(
        self,
        wallets: Wallets,
        room_log: RoomLog,
        scripts: Scripts,
        pipeline: AutoPipeline,
        gather_seconds: float = 0.0,
    ) -> None:
        call = scripts.room_gifts
        assert isinstance(call, BatchedScript), "scripts registered without the pipeline"
        self._wallets = wallets
        self._room_log = room_log
        self._pending = reports_pending_key(wallets.key_prefix)
        self._calls = ScriptGroups(
            pipeline, call.script, self._head, REPLY_WIDTH, GIFTS_PER_CALL, gather_seconds
        )

    def _head(self, room: str) -> tuple[list[Any], list[Any]]:
        """The keys and args of a room's call before its gifts'. A room's creator is the room."""
        keys, args = self._room_log.call_head(room)
        creator = self._wallets.keys(room)
        return [*keys, creator.wallet, creator.ledger, self._pending], [*args, room]

    async def send(self, order: GiftOrder, event_payload: bytes) -> SentGift:
        """Debit the sender, credit the creator and, if paid now, publish
        ``event_payload`` in the room. A streakable gift counts in its
        sender's combo, which its event carries: its payload is made by
        ``gift_payload`` (``room_log.py``) to hold it.

        The order's room is its creator's. Raises what ``Wallets.send_gift``
        raises for a refusal.
        """
        if order.creator != order.room:
            raise ValueError("a room's gifts go to the room's creator")
        keys, args = self._wallets.gift_call(order)
        # gift.lua's outbox key is not needed: the creator is credited in the call.
        streakable = "1" if order.gift.streakable else "0"
        call = self._calls.add(order.room, keys[:GIFT_KEYS], [*args, event_payload, streakable])
        reply = await guarded(call)
        outcome = self._wallets.gift_outcome(order, reply[:9])
        return SentGift(outcome, bool(int(reply[9])))
