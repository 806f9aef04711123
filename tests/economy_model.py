"""A plain-Python model of the giftstream economy, for the model-based and fuzz tests.

It knows only what the docs promise (docs/protocol.md, docs/money.md), never
the server's code: what answer a frame must get, and how each answer moves
money. The tests hold the real server's answers, wallets and reconciliation
against it.

- ``readings(frame)``: every answer the protocol allows for one client frame
  (usually one; more where the docs leave a choice, such as a JSON ``NaN``);
  ``readings_of(value)`` for a frame that decodes to ``value``.
- ``Economy``: viewers' coins, paid request ids with their first outcome, and
  creators' diamonds and platform share; ``expect_gift`` says what a gift
  request must be answered with, ``book_ack`` records an answer that moved
  money.
- ``matching(answer, allowed)``: which allowed answer a real one is.
- ``run_on``: a coroutine run on the test's loop from Hypothesis' thread;
  ``FreshApi``: the HTTP API, without a ~40 ms wait per request;
  ``weighted``: a Hypothesis choice between strategies, by weight.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Coroutine, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx
import msgpack
from hypothesis import strategies as st

from tests.client import Api

REQUEST_ID = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
# The defaults of GIFTSTREAM_MAX_GIFT_COUNT and GIFTSTREAM_REVENUE_SHARE_PERCENT.
MAX_COUNT = 9999
SHARE_PERCENT = 50
MSGPACK = "giftstream.v1.msgpack"
JSON = "giftstream.v1.json"
CODECS = (MSGPACK, JSON)

Message = dict[str, Any]
T = TypeVar("T")


def share_hundredths(coins: int, share_percent: int = SHARE_PERCENT) -> int:
    """The creator's part of one gift, in hundredths of a diamond: exact, carried
    from gift to gift until it makes whole diamonds."""
    return coins * share_percent


def valid_request_id(value: object) -> bool:
    return isinstance(value, str) and REQUEST_ID.fullmatch(value) is not None


def valid_count(value: object) -> bool:
    # A boolean is not a count, even though Python calls it an int.
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= MAX_COUNT


# ---------------------------------------------------------------- expected answers


@dataclass(frozen=True)
class ExpectError:
    code: str
    id: str | None


@dataclass(frozen=True)
class ExpectPong:
    id: str


@dataclass(frozen=True)
class ExpectAck:
    id: str
    balance: int
    coins: int
    duplicate: bool
    # The first outcome's seq for a duplicate; None for a new gift (any fresh seq).
    seq: int | None


@dataclass(frozen=True)
class GiftRequest:
    """A well-formed gift frame: its answer depends on the economy."""

    id: str
    gift: str
    count: int
    # The frame's "confirm": the model's own frames always carry it.
    confirm: bool = True


Expected = ExpectError | ExpectPong | ExpectAck
Reading = ExpectError | ExpectPong | GiftRequest


class _NotJson(ValueError):
    """``NaN`` or ``Infinity``: Python reads them, but they are not JSON."""


def _refuse_constant(name: str) -> Any:
    raise _NotJson(name)


def readings(frame: bytes | str) -> list[Reading]:
    """Every answer the protocol allows for this frame, whatever the socket's subprotocol.

    A text frame is JSON and a binary frame MessagePack. Where the docs leave
    the server a choice, every choice is listed: a JSON text with ``NaN`` may
    be refused as not JSON or read as Python reads it; a map with a key that
    is not a string (at any depth) may be refused as a bad frame or read with
    such keys ignored, like unknown fields.
    """
    try:
        if isinstance(frame, str):
            value = json.loads(frame, parse_constant=_refuse_constant)
        else:
            value = msgpack.unpackb(frame, raw=False, strict_map_key=False)
    except _NotJson:
        try:
            lenient = json.loads(frame)
        except Exception:
            return [ExpectError("bad_frame", None)]
        return [ExpectError("bad_frame", None), *readings_of(lenient)]
    except Exception:
        return [ExpectError("bad_frame", None)]
    if isinstance(value, dict) and _has_other_keys(value):
        string_keyed = {k: v for k, v in value.items() if isinstance(k, str)}
        return [ExpectError("bad_frame", None), *readings_of(string_keyed)]
    return readings_of(value)


def _has_other_keys(value: object) -> bool:
    # Without recursion: a small frame can nest hundreds of levels deep.
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if not all(isinstance(k, str) for k in item):
                return True
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
    return False


def readings_of(value: object) -> list[Reading]:
    """The answer the protocol requires for a frame that decodes to ``value``."""
    if not isinstance(value, dict):
        return [ExpectError("bad_frame", None)]
    raw_id = value.get("id")
    request_id = raw_id if valid_request_id(raw_id) else None
    kind = value.get("type")
    if isinstance(kind, str) and kind == "ping":
        if request_id is None:
            return [ExpectError("bad_field", None)]
        return [ExpectPong(request_id)]
    if isinstance(kind, str) and kind == "gift":
        gift = value.get("gift")
        count = value.get("count", 1)
        confirm = value.get("confirm", False)
        # Which of several faults is reported is not specified: any of them.
        faults = []
        if not isinstance(gift, str) or not isinstance(confirm, bool):
            faults.append("bad_field")
        if request_id is None:
            faults.append("bad_field")
        if not valid_count(count):
            faults.append("bad_count")
        if faults:
            return [ExpectError(code, request_id) for code in dict.fromkeys(faults)]
        assert isinstance(gift, str)
        assert request_id is not None
        return [GiftRequest(request_id, gift, count, confirm)]
    return [ExpectError("unknown_type", request_id)]


# ---------------------------------------------------------------- the economy


@dataclass(frozen=True)
class Paid:
    """The first outcome of a paid request id, which every retry gets again."""

    balance: int
    coins: int
    seq: int
    room: str


@dataclass
class ViewerBook:
    coins: int = 0
    spent: int = 0
    recharged: int = 0
    bonus: int = 0
    paid: dict[str, Paid] = field(default_factory=dict)

    def recharge(self, coins: int, bonus: int) -> None:
        self.coins += coins + bonus
        self.recharged += coins
        self.bonus += bonus

    def wallet(self) -> dict[str, int]:
        """The counters ``GET /api/wallet`` must show (an absent one reads as 0)."""
        return {
            "coins": self.coins,
            "spent": self.spent,
            "recharged": self.recharged,
            "bonus": self.bonus,
            "refunded": 0,
            "diamonds": 0,
        }


@dataclass
class CreatorBook:
    received: int = 0
    owed_hundredths: int = 0  # the creator's share of every gift, unrounded

    def credit(self, coins: int) -> None:
        self.received += coins
        self.owed_hundredths += share_hundredths(coins)

    def plus(self, base: Mapping[str, int]) -> dict[str, int]:
        """What a wallet that held ``base`` must hold once these credits settled:
        whatever their order, the whole diamonds of the carry it held plus
        their shares, and the rest carried."""
        diamonds, carry = divmod(base.get("carry_hundredths", 0) + self.owed_hundredths, 100)
        platform = 100 * self.received - self.owed_hundredths
        return {
            "received": base.get("received", 0) + self.received,
            "diamonds": base.get("diamonds", 0) + diamonds,
            "diamonds_earned": base.get("diamonds_earned", 0) + diamonds,
            "carry_hundredths": carry,
            "platform_hundredths": base.get("platform_hundredths", 0) + platform,
        }


@dataclass
class Economy:
    prices: dict[str, int]
    accepting_rooms: frozenset[str]
    # Rooms whose creator has switched gifting off: refused as gifting_off,
    # where any other room that does not accept is gifts_disabled.
    switched_off_rooms: frozenset[str] = frozenset()
    # GIFTSTREAM_MAX_SEND_COINS' default: no send may be worth more. (The
    # model's frames all carry "confirm": true; confirmation is tested apart.)
    send_ceiling: int = 500_000
    # GIFTSTREAM_CONFIRM_ABOVE_COINS' default: a send worth more needs confirm.
    confirm_above: int = 1000
    viewers: dict[str, ViewerBook] = field(default_factory=dict)
    creators: dict[str, CreatorBook] = field(default_factory=dict)

    def viewer(self, user: str) -> ViewerBook:
        return self.viewers.setdefault(user, ViewerBook())

    def creator(self, user: str) -> CreatorBook:
        return self.creators.setdefault(user, CreatorBook())

    def expect_request(
        self, user: str, request_id: str, gift: str, count: object, room: str
    ) -> Expected:
        """The answer to a gift frame with a valid id and a gift string."""
        if not valid_count(count):
            # Validation comes before the request id is looked up.
            return ExpectError("bad_count", request_id)
        assert isinstance(count, int)
        return self.expect_gift(user, GiftRequest(request_id, gift, count), room)

    def expect_gift(self, user: str, request: GiftRequest, room: str) -> Expected:
        """The answer to a well-formed gift request from a viewer in ``room``."""
        book = self.viewer(user)
        prior = book.paid.get(request.id)
        if prior is not None:
            # A paid request id gets its first outcome, whatever rule would refuse it now.
            return ExpectAck(request.id, prior.balance, prior.coins, True, prior.seq)
        price = self.prices.get(request.gift)
        if price is None:
            return ExpectError("unknown_gift", request.id)
        if price * request.count > self.send_ceiling:
            return ExpectError("send_limit_exceeded", request.id)
        if price * request.count > self.confirm_above and not request.confirm:
            return ExpectError("confirm_required", request.id)
        if room in self.switched_off_rooms:
            return ExpectError("gifting_off", request.id)
        if room not in self.accepting_rooms:
            return ExpectError("gifts_disabled", request.id)
        cost = price * request.count
        if cost > book.coins:
            return ExpectError("insufficient_coins", request.id)
        return ExpectAck(request.id, book.coins - cost, cost, False, None)

    def book_ack(self, user: str, room: str, expected: ExpectAck, seq: int) -> None:
        """Record a new gift's debit and the creator's credit to come."""
        if expected.duplicate:
            return
        book = self.viewer(user)
        book.coins -= expected.coins
        book.spent += expected.coins
        book.paid[expected.id] = Paid(expected.balance, expected.coins, seq, room)
        self.creator(room).credit(expected.coins)

    def last_seq(self, room: str, sender: str | None = None) -> int:
        """The highest seq that paid gifts in ``room`` (of ``sender``, if given) got.

        Gifts sent one after another get ever higher seqs; two senders' gifts
        in flight together may be numbered in either order.
        """
        books = self.viewers.values() if sender is None else [self.viewer(sender)]
        seqs = [p.seq for book in books for p in book.paid.values() if p.room == room]
        return max(seqs, default=0)


def matching(answer: Message, allowed: Iterable[Expected], last_seq: int = 0) -> Expected:
    """The allowed answer that ``answer`` is; an AssertionError naming both if none.

    A new gift's ack must carry a seq above ``last_seq`` (see ``Economy.last_seq``).
    """
    options = list(allowed)
    kind = answer.get("type")
    for option in options:
        if isinstance(option, ExpectError) and kind == "error":
            if (answer.get("code"), answer.get("id")) == (option.code, option.id):
                assert answer.get("temporary") is False, answer
                assert isinstance(answer.get("message"), str), answer
                assert answer["message"], answer
                return option
        elif isinstance(option, ExpectPong) and kind == "pong":
            if answer.get("id") == option.id:
                return option
        elif isinstance(option, ExpectAck) and kind == "ack" and answer.get("id") == option.id:
            seq = answer.get("seq")
            fresh = isinstance(seq, int) and not isinstance(seq, bool) and seq > last_seq
            seq_ok = seq == option.seq if option.duplicate else fresh
            if (
                seq_ok
                and answer.get("balance") == option.balance
                and answer.get("coins") == option.coins
                and answer.get("duplicate") is option.duplicate
            ):
                return option
    raise AssertionError(f"answer {answer!r} is none of the allowed {options!r}")


# ---------------------------------------------------------------- plumbing


def run_on(loop: asyncio.AbstractEventLoop, step: Coroutine[Any, Any, T], timeout: float) -> T:
    """Run ``step`` on ``loop`` (the test's, which owns the sockets) from another thread.

    Hypothesis drives its examples synchronously, so the tests run it in a
    worker thread and hand each example's I/O back to the test's loop.
    """
    future = asyncio.run_coroutine_threadsafe(step, loop)
    try:
        return future.result(timeout)
    except TimeoutError:
        future.cancel()
        raise


class FreshApi(Api):
    """``Api`` on a new connection per request.

    The server's connections do not get TCP_NODELAY (``server/cli.py``
    ``_bind`` makes its socket with protocol 0, and asyncio sets the option
    only on sockets whose protocol is TCP), so a second request on a kept-alive
    connection waits ~40 ms for a delayed ACK; a fresh one answers in a few.
    """

    def __init__(self, base: str) -> None:
        limits = httpx.Limits(max_keepalive_connections=0)
        self.http = httpx.AsyncClient(base_url=base, timeout=10.0, limits=limits)


def weighted(*choices: tuple[int, st.SearchStrategy[Any]]) -> st.SearchStrategy[Any]:
    """One of ``choices``, each as often as its weight; shrinks towards the first."""
    total = sum(weight for weight, _ in choices)

    def pick(n: int) -> st.SearchStrategy[Any]:
        for weight, strategy in choices:
            if n < weight:
                return strategy
            n -= weight
        raise AssertionError(n)

    return st.integers(min_value=0, max_value=total - 1).flatmap(pick)
