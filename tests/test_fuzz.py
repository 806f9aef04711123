"""Hostile input over a live socket: whatever a client sends, the server stays sane.

A viewer who holds coins sends Hypothesis-generated frames on two sockets,
one per subprotocol: arbitrary MessagePack values, arbitrary JSON texts,
near-valid protocol messages, deeply nested values, random bytes and random
text. After each frame:

- its one answer is one the protocol allows for it (``tests.economy_model``
  reads the frame as the docs say the server must): an ``error`` with the
  right code and id, or, for a frame that happens to be a valid gift or
  ping, the ``ack`` (debiting exactly what the model says, or the first
  outcome of a repeated id) or the ``pong``;
- the socket still works: a ping gets its pong.

Meanwhile a bystander in the same room keeps sending real gifts, each of
which must reach a watcher within a second. At the end every wallet, the
creator's diamonds and the room's gift events match the model, and the
books reconcile: no money moved but by valid gifts.

Frames over ``max_frame_bytes`` close only their own socket, with 1009.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import math
import time
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import msgpack
import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st
from redis.asyncio import Redis
from websockets.exceptions import ConnectionClosed
from websockets.protocol import State

from server.client.frames import Message
from server.core.catalog import load_catalog
from tests.client import RoomClient
from tests.conftest import StartServer
from tests.economy_model import (
    CODECS,
    JSON,
    MAX_COUNT,
    MSGPACK,
    Economy,
    ExpectAck,
    Expected,
    ExpectError,
    FreshApi,
    GiftRequest,
    matching,
    readings,
    readings_of,
    run_on,
    weighted,
)
from tests.test_gift_flow import assert_books_balance

T = TypeVar("T")
Frame = bytes | str

ROOM = "carol"  # the demo's creator who takes gifts
FUZZER, BYSTANDER = "fuzzer", "bystander"
MAX_FRAME_BYTES = 4096  # GIFTSTREAM_MAX_FRAME_BYTES' default
DELIVERY_SECONDS = 1.0  # a bystander's gift reaches the room within this
# Gifts the bystander must have sent for its latencies to say anything.
BYSTANDER_MIN_GIFTS = 5
STEP_TIMEOUT = 30.0
GIFTS = sorted(load_catalog().gifts)
PACKAGE_COINS = {p.id: (p.coins, p.bonus) for p in load_catalog().packages.values()}

FUZZ_SETTINGS = settings(
    max_examples=150,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
# The near-valid messages reach the deepest paths: they get more examples.
MORE_EXAMPLES = {"messages": 250}


# ---------------------------------------------------------------- strategies


# Text a WebSocket can carry (no lone surrogates); JSON escapes can carry those too.
sendable = st.characters(exclude_categories=["Cs"])
MSGPACK_INTS = st.integers(min_value=-(2**63), max_value=2**64 - 1)

msgpack_scalars = (
    st.none()
    | st.booleans()
    | MSGPACK_INTS
    | st.floats()
    | st.text(sendable, max_size=20)
    | st.binary(max_size=20)
    | st.builds(msgpack.ExtType, st.integers(0, 127), st.binary(max_size=8))
    | st.builds(msgpack.Timestamp, st.integers(0, 2**34 - 1), st.integers(0, 999_999_999))
)
msgpack_keys = (
    st.text(sendable, max_size=10)
    | st.sampled_from(["type", "id", "gift", "count"])
    | st.binary(max_size=6)
    | MSGPACK_INTS
    | st.none()
    | st.booleans()
    | st.floats(allow_nan=False)
)
msgpack_values = st.recursive(
    msgpack_scalars,
    lambda kids: st.lists(kids, max_size=6) | st.dictionaries(msgpack_keys, kids, max_size=6),
    max_leaves=25,
)

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(10**300), max_value=10**300)
    | st.floats()
    | st.text(max_size=20)
)
json_values = st.recursive(
    json_scalars,
    lambda kids: (
        st.lists(kids, max_size=6)
        | st.dictionaries(st.text(max_size=10) | st.sampled_from(["type", "id"]), kids, max_size=6)
    ),
    max_leaves=25,
)


class Absent:
    """A field left out of a message."""

    def __repr__(self) -> str:
        return "ABSENT"


ABSENT = Absent()
odd_values = msgpack_scalars | json_scalars | st.lists(st.integers(), max_size=3)
# Counts that are not whole numbers from 1 to MAX_COUNT, one kind each.
wrong_counts = weighted(
    (1, st.booleans()),
    (1, st.sampled_from([1.0, 3.0, math.nan, math.inf]) | st.floats()),
    (1, st.sampled_from([0, -1, MAX_COUNT + 1, 2**63, 2**64 - 1, -(2**63), 10**4000])),
    (1, st.integers(min_value=-(2**70), max_value=2**70)),
    (1, st.sampled_from(["1", "5", " 5", "1e3", "0x10"]) | st.text(max_size=5)),
    (1, st.none() | st.lists(st.integers(1, 5), max_size=2) | st.just({"n": 1})),
)
# Near-valid messages: each field mostly right, sometimes missing, sometimes wrong.
message_fields: dict[str, st.SearchStrategy[Any]] = {
    "type": weighted(
        (5, st.just("gift")),
        (2, st.just("ping")),
        (1, st.sampled_from(["Gift", "gift ", "GIFT", "pong", "ack", "events", ""])),
        (1, odd_values),
    ),
    "id": weighted(
        # A few ids again and again: repeats must get their first outcome.
        (3, st.sampled_from(["a", "b", "k3f9-0001", "x.1:2"])),
        (2, st.from_regex(r"[A-Za-z0-9_.:-]{1,64}", fullmatch=True)),
        (1, st.sampled_from(["x" * 64, "x" * 65, "a b", "a|b", "é", "a\n", ""])),
        (1, st.text(max_size=70) | odd_values),
        (1, st.just(ABSENT)),
    ),
    "gift": weighted(
        (5, st.sampled_from(GIFTS)),
        (1, st.sampled_from(["unicorn", "Rose", "rose\u0000", "rose|1"]) | st.text(max_size=12)),
        (1, odd_values | st.just(ABSENT)),
    ),
    "count": weighted(
        (3, st.integers(min_value=1, max_value=5) | st.just(MAX_COUNT)),
        (1, st.just(ABSENT)),
        (3, wrong_counts),
    ),
    # A large send needs "confirm": true; anything but a boolean is refused.
    "confirm": weighted(
        (3, st.just(ABSENT)),
        (2, st.booleans()),
        (1, st.sampled_from([1, 0, "true", None, [True]])),
    ),
}
messages = st.fixed_dictionaries(message_fields).map(
    lambda fields: {k: v for k, v in fields.items() if v is not ABSENT}
)


def as_json(value: Any, ascii_only: bool) -> str:
    text = json.dumps(value, ensure_ascii=ascii_only)
    try:
        text.encode()
    except UnicodeEncodeError:  # a lone surrogate: only its escape can travel
        text = json.dumps(value)
    return text


def as_frame(value: Any, binary: bool) -> Frame:
    """MessagePack if asked and possible (ints within 64 bits), else JSON.

    JSON has no bytes, extension types or timestamps: it sends their repr.
    """
    if binary:
        with contextlib.suppress(OverflowError, ValueError, TypeError):
            packed: bytes = msgpack.packb(value)
            return packed
    return json.dumps(value, default=repr)


def splice(seed: Frame, start: int, cut: int, junk: Frame) -> Frame:
    """``seed`` with ``cut`` characters at ``start`` replaced by ``junk``."""
    if isinstance(seed, bytes):
        assert isinstance(junk, bytes)
        return seed[:start] + junk + seed[start + cut :]
    assert isinstance(junk, str)
    return seed[:start] + junk + seed[start + cut :]


sockets = st.sampled_from(CODECS)
SEED_MESSAGES = [
    {"type": "gift", "id": "s1", "gift": "rose", "count": 2},
    {"type": "ping", "id": "s2"},
    {"type": "gift", "id": "s3", "gift": "doughnut"},
]


PLACEHOLDER = "nested-value-goes-here"
BASE_MESSAGE: dict[str, Any] = {"type": "gift", "id": "deep", "gift": "rose", "count": 1}


@dataclass(frozen=True)
class Nesting:
    """Where a deeply nested value sits in a message, and how deep."""

    field: str
    depth: int
    as_map: bool

    def message(self) -> dict[str, Any]:
        value: Any = "rose"
        for _ in range(self.depth):
            value = {"a": value} if self.as_map else [value]
        return {**BASE_MESSAGE, self.field: value}


def nested_frame(nesting: Nesting, binary: bool) -> Frame:
    """``nesting.message()``, encoded by hand: the encoders refuse to nest this deep."""
    message = {**BASE_MESSAGE, nesting.field: PLACEHOLDER}
    if binary:
        level = b"\x81" + msgpack.packb("a") if nesting.as_map else b"\x91"
        inner = level * nesting.depth + msgpack.packb("rose")
        packed: bytes = msgpack.packb(message)
        return packed.replace(msgpack.packb(PLACEHOLDER), inner)
    opening, closing = ('{"a":', "}") if nesting.as_map else ("[", "]")
    inner_text = opening * nesting.depth + '"rose"' + closing * nesting.depth
    return json.dumps(message).replace(json.dumps(PLACEHOLDER), inner_text)


class Hostile:
    """One frame to send, and on which socket; for a deep one, what it encodes."""

    def __init__(self, frame: Frame, codec: str, nesting: Nesting | None = None) -> None:
        self.frame = frame
        self.codec = codec
        self.nesting = nesting

    def __repr__(self) -> str:
        if self.nesting is None:
            return f"Hostile({self.frame!r}, {self.codec!r})"
        kind = "MessagePack" if isinstance(self.frame, bytes) else "JSON"
        return f"Hostile({kind} of {self.nesting!r}, {self.codec!r})"


@st.composite
def deeply_nested(draw: st.DrawFn) -> Hostile:
    """A message with one field nested up to past the decoders' limits."""
    nesting = Nesting(
        field=draw(st.sampled_from(["type", "id", "gift", "count", "extra"])),
        depth=draw(st.integers(1, 1100) | st.integers(985, 1030)),
        as_map=draw(st.booleans()),
    )
    frame = nested_frame(nesting, binary=draw(st.booleans()))
    return Hostile(frame, draw(sockets), nesting)


def pitfall(message: dict[Any, Any], codec: str) -> Hostile:
    return Hostile(msgpack.packb(message) if codec == MSGPACK else json.dumps(message), codec)


# Known pitfalls of msgpack and JSON input (a bool as a count, say), always
# tried before the generated messages.
PITFALLS = [
    pitfall({"type": "gift", "id": "pit-1", "gift": "rose", "count": True}, MSGPACK),
    pitfall({"type": "gift", "id": "pit-2", "gift": "rose", "count": True}, JSON),
    pitfall({"type": "gift", "id": "pit-3", "gift": "rose", "count": 1.0}, MSGPACK),
    pitfall({"type": "gift", "id": "pit-4", "gift": "rose", "count": 1.0}, JSON),
    pitfall({"type": "gift", "id": "pit-5", "gift": "rose", "count": math.nan}, JSON),
    pitfall({"type": "gift", "id": "pit-6", "gift": "rose", "count": 2**64 - 1}, MSGPACK),
    pitfall({"type": "gift", "id": "pit-7", "gift": "rose", "count": 2**70}, JSON),
    pitfall({"type": "gift", "id": "pit-8", "gift": "rose", "count": "5"}, JSON),
    pitfall({"type": "gift", "id": "pit-9", "gift": "rose", "count": MAX_COUNT + 1}, MSGPACK),
    pitfall({b"type": "gift", "id": "pit-10", "gift": "rose"}, MSGPACK),
    pitfall({"type": "gift", "id": "pit-11", "gift": "rose"}, JSON),
    # The same id again, for another gift: the first outcome, nothing debited.
    pitfall({"type": "gift", "id": "pit-11", "gift": "universe", "count": 9}, MSGPACK),
]
FIRST = {"messages": PITFALLS}

STRATEGIES: dict[str, st.SearchStrategy[Hostile]] = {
    "msgpack-values": st.builds(
        Hostile,
        st.builds(msgpack.packb, msgpack_values, use_bin_type=st.booleans()),
        sockets,
    ),
    "json-values": st.builds(
        Hostile, st.builds(as_json, json_values, ascii_only=st.booleans()), sockets
    ),
    "messages": st.builds(Hostile, st.builds(as_frame, messages, binary=st.booleans()), sockets),
    "raw-bytes": st.builds(
        Hostile,
        st.binary(max_size=300)
        | st.builds(
            splice,
            st.sampled_from([msgpack.packb(m) for m in SEED_MESSAGES]),
            st.integers(0, 40),
            st.integers(0, 4),
            st.binary(max_size=4),
        ),
        sockets,
    ),
    "raw-text": st.builds(
        Hostile,
        st.text(sendable, max_size=300)
        | st.builds(
            splice,
            st.sampled_from([json.dumps(m) for m in SEED_MESSAGES]),
            st.integers(0, 60),
            st.integers(0, 4),
            st.text(sendable, max_size=4),
        ),
        sockets,
    ),
}


# ---------------------------------------------------------------- the harness


def is_answer(message: Message) -> bool:
    return message.get("type") in ("ack", "error", "pong")


def gift_event(seq: int) -> Callable[[Message], bool]:
    return lambda message: message.get("type") == "gift" and message.get("seq") == seq


def size(frame: Frame) -> int:
    return len(frame.encode() if isinstance(frame, str) else frame)


@dataclass
class Arena:
    """A room with a fuzzer, a bystander who gifts, and a watcher; and the model."""

    loop: asyncio.AbstractEventLoop
    ws: str
    api: FreshApi
    redis: Redis
    prefix: str
    economy: Economy
    tokens: dict[str, str] = field(default_factory=dict)
    fuzz: dict[str, RoomClient] = field(default_factory=dict)
    watcher: RoomClient | None = None
    # seq -> coins of every gift the fuzzer's frames paid for.
    fuzz_gifts: dict[int, int] = field(default_factory=dict)
    bystander_gifts: dict[int, int] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)
    # Set once the bystander's gifts are enough to judge the room by.
    bystander_enough: asyncio.Event = field(default_factory=asyncio.Event)
    pings: itertools.count[int] = field(default_factory=itertools.count)

    def run(self, step: Coroutine[Any, Any, T]) -> T:
        """Run ``step`` on the test's loop, from the Hypothesis thread."""
        return run_on(self.loop, step, STEP_TIMEOUT)

    async def setup(self) -> None:
        for user, packages in ((FUZZER, ["coins_6607", "coins_3306"]), (BYSTANDER, ["coins_330"])):
            self.tokens[user] = await self.api.token(user)
            for package in packages:
                paid = await self.api.buy(self.tokens[user], package)
                assert paid["status"] == "ok"
                coins, bonus = PACKAGE_COINS[package]
                self.economy.viewer(user).recharge(coins, bonus)
        for codec in CODECS:
            await self.socket(codec)
        self.watcher = await RoomClient.open(self.ws, ROOM)
        await self.watcher.of_type("welcome")

    async def socket(self, codec: str) -> RoomClient:
        """The fuzzer's socket on ``codec``; a new one if the last was closed."""
        client = self.fuzz.get(codec)
        if client is None or client.socket.state is not State.OPEN:
            client = await RoomClient.open(self.ws, ROOM, self.tokens[FUZZER], codec=codec)
            welcome = await client.of_type("welcome")
            assert welcome["balance"] == self.economy.viewer(FUZZER).coins
            self.fuzz[codec] = client
        return client

    def allowed(self, hostile: Hostile) -> list[Expected]:
        """Every answer the docs allow for this frame, given the economy now."""
        if hostile.nesting is not None:
            # Nesting this deep may be refused as undecodable, or read as sent.
            options = [ExpectError("bad_frame", None), *readings_of(hostile.nesting.message())]
        else:
            options = readings(hostile.frame)
        return [
            self.economy.expect_gift(FUZZER, option, ROOM)
            if isinstance(option, GiftRequest)
            else option
            for option in options
        ]

    async def hit(self, hostile: Hostile) -> None:
        """Send one hostile frame; check its one answer and the socket after it."""
        client = await self.socket(hostile.codec)
        allowed = self.allowed(hostile)
        await client.send_raw(hostile.frame)
        try:
            answer = await client.next(is_answer)
        except ConnectionClosed as closed:
            raise AssertionError(f"the socket was closed instead of answered: {closed}") from None
        matched = matching(answer, allowed, self.economy.last_seq(ROOM, FUZZER))
        if isinstance(matched, ExpectAck) and not matched.duplicate:
            self.economy.book_ack(FUZZER, ROOM, matched, answer["seq"])
            self.fuzz_gifts[answer["seq"]] = matched.coins
        ping = f"still-there-{next(self.pings)}"
        await client.send({"type": "ping", "id": ping})
        pong = await client.next(is_answer)
        assert (pong["type"], pong["id"]) == ("pong", ping)

    async def bystander(self, stop: asyncio.Event) -> None:
        """Real gifts in the same room, each shown to the watcher within a second."""
        assert self.watcher is not None
        client = await RoomClient.open(self.ws, ROOM, self.tokens[BYSTANDER], codec=JSON)
        await client.of_type("welcome")
        try:
            for index in itertools.count():
                if stop.is_set():
                    return
                request = GiftRequest(f"by-{index}", "rose", 1)
                expected = self.economy.expect_gift(BYSTANDER, request, ROOM)
                started = time.monotonic()
                await client.send({"type": "gift", "id": request.id, "gift": "rose"})
                answer = await client.reply(request.id, within=DELIVERY_SECONDS)
                matched = matching(answer, [expected])
                assert isinstance(matched, ExpectAck)
                self.economy.book_ack(BYSTANDER, ROOM, matched, answer["seq"])
                self.bystander_gifts[answer["seq"]] = matched.coins
                try:
                    await self.watcher.next(gift_event(answer["seq"]), within=DELIVERY_SECONDS)
                except TimeoutError:
                    raise AssertionError(
                        f"the bystander's gift {request.id} was not shown within"
                        f" {DELIVERY_SECONDS:g} s"
                    ) from None
                self.latencies.append(time.monotonic() - started)
                if len(self.latencies) >= BYSTANDER_MIN_GIFTS:
                    self.bystander_enough.set()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), 0.05)
        finally:
            await client.close()

    async def books(self) -> None:
        """No money moved but by the gifts the model knows of; every gift was shown."""
        assert self.watcher is not None
        for user in (FUZZER, BYSTANDER):
            wallet = await self.api.wallet(self.tokens[user])
            expected = self.economy.viewer(user).wallet()
            assert {name: wallet.get(name, 0) for name in expected} == expected, user
        await assert_books_balance(self.redis, self.prefix, settled=True)
        creator = await self.api.wallet(await self.api.token(ROOM, "creator"))
        expected = self.economy.creator(ROOM).plus({})
        assert {name: creator.get(name, 0) for name in expected} == expected
        # The room was shown each paid gift once, and nothing else from these two.
        await self.watcher.drain(quiet=0.3)
        shown: dict[str, dict[int, int]] = {FUZZER: {}, BYSTANDER: {}}
        for event in self.watcher.seen:
            if event.get("type") == "gift" and event.get("sender") in shown:
                assert event["seq"] not in shown[event["sender"]], event
                shown[event["sender"]][event["seq"]] = event["coins"]
        assert shown == {FUZZER: self.fuzz_gifts, BYSTANDER: self.bystander_gifts}

    async def close(self) -> None:
        for client in [*self.fuzz.values(), self.watcher]:
            if client is not None:
                await client.close()


async def open_arena(start_server: StartServer, redis: Redis, key_prefix: str) -> Arena:
    server = await start_server(gift_rate_per_second=100_000, gift_rate_burst=100_000)
    api = FreshApi(server.http)
    catalog = (await api.http.get("/api/catalog")).json()
    economy = Economy(
        prices={gift["id"]: gift["coins"] for gift in catalog["gifts"]},
        accepting_rooms=frozenset({ROOM}),
    )
    arena = Arena(asyncio.get_running_loop(), server.ws, api, redis, key_prefix, economy)
    await arena.setup()
    return arena


async def fuzz(
    arena: Arena,
    strategy: st.SearchStrategy[Hostile],
    examples: int = 150,
    first: Iterable[Hostile] = (),
) -> None:
    """``first``, then ``examples`` of ``strategy`` against the arena, with the bystander."""

    @settings(FUZZ_SETTINGS, max_examples=examples)
    @given(hostile=strategy)
    def one_frame(hostile: Hostile) -> None:
        assume(size(hostile.frame) <= MAX_FRAME_BYTES)
        arena.run(arena.hit(hostile))

    for hostile in reversed(list(first)):
        one_frame = example(hostile=hostile)(one_frame)

    stop = asyncio.Event()
    bystander = asyncio.create_task(arena.bystander(stop))
    try:
        await asyncio.to_thread(one_frame)
        # On a fast machine the frames can all be sent before the bystander
        # has sent a handful: it finishes its few in the same server.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(arena.bystander_enough.wait(), 5 * DELIVERY_SECONDS)
    finally:
        stop.set()
        await bystander
    assert len(arena.latencies) >= BYSTANDER_MIN_GIFTS, "the bystander hardly sent anything"
    assert max(arena.latencies) < DELIVERY_SECONDS


# ---------------------------------------------------------------- the tests


@pytest.mark.parametrize("kind", sorted(STRATEGIES))
async def test_hostile_frames_get_typed_answers_and_move_no_money(
    start_server: StartServer, redis: Redis, key_prefix: str, kind: str
) -> None:
    arena = await open_arena(start_server, redis, key_prefix)
    try:
        await fuzz(arena, STRATEGIES[kind], MORE_EXAMPLES.get(kind, 150), FIRST.get(kind, []))
        await arena.books()
    finally:
        await arena.close()
        await arena.api.aclose()


async def test_deeply_nested_frames_get_typed_answers(
    start_server: StartServer, redis: Redis, key_prefix: str
) -> None:
    arena = await open_arena(start_server, redis, key_prefix)
    try:
        await fuzz(arena, deeply_nested())
        await arena.books()
    finally:
        await arena.close()
        await arena.api.aclose()


# ---------------------------------------------------------------- frames over the limit

# Frames the server must refuse by closing their socket: (what, frame or fragments, code).
CLOSING: list[tuple[str, Frame | list[Frame], int]] = [
    ("binary, one byte over", b"\x80" * (MAX_FRAME_BYTES + 1), 1009),
    ("text, one byte over", "x" * (MAX_FRAME_BYTES + 1), 1009),
    # 2,049 characters but 4,098 bytes: the limit is in bytes.
    ("text of two-byte characters", "é" * (MAX_FRAME_BYTES // 2 + 1), 1009),
    ("binary, 100 KB", bytes(100_000), 1009),
    ("binary fragments, too long together", [b"\x80" * 1500] * 3, 1009),
    ("text fragments, too long together", ["[" * 1500, "1" * 1500, "]" * 1500], 1009),
]
# At the limit, exactly: answered like any other frame.
AT_THE_LIMIT: list[Frame] = [
    b"\x80" * MAX_FRAME_BYTES,
    "x" * MAX_FRAME_BYTES,
    "é" * (MAX_FRAME_BYTES // 2),
    json.dumps({"type": "ping", "id": "edge", "pad": "x" * (MAX_FRAME_BYTES - 41)}),
]


async def closed_with(client: RoomClient) -> int | None:
    """The close code the server sent within 5 s; None if the socket is still open."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(client.socket.wait_closed(), 5)
    return client.socket.close_code


async def test_oversize_frames_close_only_their_socket(
    start_server: StartServer, redis: Redis, key_prefix: str
) -> None:
    arena = await open_arena(start_server, redis, key_prefix)
    stop = asyncio.Event()
    bystander = asyncio.create_task(arena.bystander(stop))
    try:
        for index, (what, frame, code) in enumerate(CLOSING):
            codec = CODECS[index % 2]
            victim = await RoomClient.open(arena.ws, ROOM, arena.tokens[FUZZER], codec=codec)
            await victim.of_type("welcome")
            with contextlib.suppress(ConnectionClosed):  # closed while sending: fine
                await victim.socket.send(frame if not isinstance(frame, list) else iter(frame))
            assert await closed_with(victim) == code, what
            # The fuzzer's other sockets, and the room, carry on.
            for other in CODECS:
                await arena.hit(Hostile(b"\xc1", other))
        for frame in AT_THE_LIMIT:
            assert size(frame) == MAX_FRAME_BYTES
            for codec in CODECS:
                await arena.hit(Hostile(frame, codec))
        # A text frame that is not UTF-8 is refused too, alone.
        victim = await RoomClient.open(arena.ws, ROOM, arena.tokens[FUZZER])
        await victim.of_type("welcome")
        with contextlib.suppress(ConnectionClosed):
            await victim.socket.send(b'{"type": "ping", "id": "\xff"}', text=True)
        assert await closed_with(victim) == 1007
        await asyncio.sleep(0.5)  # the bystander goes on meanwhile
    finally:
        stop.set()
        await bystander
    try:
        assert len(arena.latencies) >= 5, "the bystander hardly sent anything"
        assert max(arena.latencies) < DELIVERY_SECONDS
        await arena.books()
    finally:
        await arena.close()
        await arena.api.aclose()
