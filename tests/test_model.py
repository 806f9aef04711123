"""The economy against a model: random sequences of operations on the real server.

A Hypothesis state machine recharges, sends gifts (valid or not, to a room
that takes gifts or to one that does not), repeats earlier request ids,
reconnects, reconciles and waits for settlement, all against one real
``giftstream serve`` process. After every step the server's answers and
every wallet must agree with ``tests.economy_model``, a plain-Python economy
built from the docs; the books must reconcile, and once settled the
creator's diamonds and the platform's share must be what the model says.

Hypothesis runs in a worker thread; each step's I/O runs as a coroutine on
the test's own event loop (which owns the sockets and the Redis client),
handed over with ``run_coroutine_threadsafe``.

Every example has users of its own: two or three viewers and two creators,
one who takes gifts (exactly the minimum of 1,000 followers) and one who has
switched gifting on with 999. The demo's ``dave``, who has not switched it
on, is the third room. The books are checked per example (the breaches that
name its users), so a broken example cannot fail the next ones; the whole
economy is checked once at the end.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import time
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    rule,
    run_state_machine_as_test,
)
from redis.asyncio import Redis

from server.client.frames import Message
from server.core.catalog import load_catalog
from server.core.keys import WalletKeys
from server.money import reconcile
from tests.client import Api, RoomClient, bearer
from tests.conftest import StartServer
from tests.economy_model import (
    CODECS,
    MAX_COUNT,
    Economy,
    ExpectAck,
    FreshApi,
    ViewerBook,
    matching,
    run_on,
    weighted,
)
from tests.test_gift_flow import assert_books_balance

T = TypeVar("T")

CATALOG = load_catalog()
# Cheapest first, so that what Hypothesis prefers is what a viewer can afford.
GIFTS = sorted(CATALOG.gifts, key=lambda gift: CATALOG.gifts[gift].coins)
# The packages GET /api/catalog offers by default (region US).
PACKAGES = sorted(
    (package for package, found in CATALOG.packages.items() if found.region == "US"),
    key=lambda package: CATALOG.packages[package].coins,
)
# The three rooms of an example, by role.
LIVE, FEW_FOLLOWERS, GIFTS_OFF = "live", "few-followers", "gifts-off"
MIN_FOLLOWERS = 1000  # GIFTSTREAM_MIN_CREATOR_FOLLOWERS' default
STEP_TIMEOUT = 30.0
BOOKS_TIMEOUT = 10.0

# Shrinking would replay hundreds of examples against the live server, for
# minutes: a failure is reported with the steps of the failing example as
# found (GIFTSTREAM_TEST_SHRINK=1 shrinks it, for a debugging session).
PHASES = tuple(Phase) if os.environ.get("GIFTSTREAM_TEST_SHRINK") else (Phase.generate,)
MODEL_SETTINGS = settings(
    max_examples=15,
    stateful_step_count=30,
    deadline=None,
    database=None,
    phases=PHASES,
    suppress_health_check=[HealthCheck.too_slow],
)


class Omitted:
    """A gift frame without a ``count``: it means 1."""

    def __repr__(self) -> str:
        return "OMITTED"


OMITTED = Omitted()


# ---------------------------------------------------------------- operations


@dataclass(frozen=True)
class Recharge:
    """Order and pay a package (an unknown one is refused); paying again moves nothing."""

    viewer: int
    package: str
    pay_twice: bool


@dataclass(frozen=True)
class Gift:
    """A new request id; perhaps on a new socket, whose welcome must show the balance."""

    viewer: int
    gift: str
    count: object
    room: str
    reconnect: bool = False


@dataclass(frozen=True)
class Repeat:
    """An earlier request id again (the ``pick``-th sent, or the ``pick``-th paid).

    ``viewer`` None: from its sender, else from that viewer (ids are per
    sender). ``changed`` None: the same request, else this gift, count and room.
    """

    pick: int
    paid_only: bool
    viewer: int | None
    changed: Gift | None


@dataclass(frozen=True)
class Books:
    """Reconcile now; with ``settled``, once settled, the creators hold what the model says."""

    settled: bool


Operation = Recharge | Gift | Repeat | Books


# A viewer is picked by this index modulo the number of viewers of the example.
viewers = st.integers(min_value=0, max_value=2)
gift_ids = weighted(
    # Mostly what viewers can afford; now and then the lion or the universe.
    (6, st.sampled_from(GIFTS[:5])),
    (2, st.sampled_from(GIFTS)),
    (1, st.sampled_from(["unicorn", "ROSE", "rose ", "", "rose\u0000"])),
)
counts: st.SearchStrategy[object] = weighted(
    (6, st.integers(min_value=1, max_value=5)),
    (1, st.integers(min_value=1, max_value=MAX_COUNT) | st.just(MAX_COUNT)),
    (
        1,
        st.sampled_from(
            [0, -1, MAX_COUNT + 1, 2**63, True, False, 1.0, 2.5, float("nan"), "3", None, OMITTED]
        ),
    ),
)
rooms = weighted((5, st.just(LIVE)), (1, st.sampled_from([FEW_FOLLOWERS, GIFTS_OFF])))
gifts = st.builds(
    Gift,
    viewer=viewers,
    gift=gift_ids,
    count=counts,
    room=rooms,
    reconnect=weighted((6, st.just(False)), (1, st.just(True))),
)
# What a retry may change: any room, as often as not one that would refuse a new gift.
changes = st.builds(
    Gift,
    viewer=viewers,
    gift=gift_ids,
    count=counts,
    room=st.sampled_from([LIVE, FEW_FOLLOWERS, GIFTS_OFF]),
)
operations: st.SearchStrategy[Operation] = weighted(
    (10, gifts),
    (
        5,
        st.builds(
            Repeat,
            pick=st.integers(min_value=0, max_value=99),
            paid_only=weighted((2, st.just(True)), (1, st.just(False))),
            viewer=weighted((2, st.none()), (1, viewers)),
            changed=st.none() | changes,
        ),
    ),
    (
        3,
        st.builds(
            Recharge,
            viewer=viewers,
            package=weighted((6, st.sampled_from(PACKAGES)), (1, st.just("coins_1"))),
            pay_twice=st.booleans(),
        ),
    ),
    (2, st.builds(Books, settled=st.booleans())),
)


@dataclass
class Env:
    """What every example shares: the loop, the server, its Redis."""

    loop: asyncio.AbstractEventLoop
    ws: str
    api: Api
    redis: Redis
    prefix: str
    prices: dict[str, int]
    package_coins: dict[str, tuple[int, int]]

    def run(self, step: Coroutine[Any, Any, T]) -> T:
        """Run ``step`` on the test's loop, from the Hypothesis thread."""
        return run_on(self.loop, step, STEP_TIMEOUT)


def gift_event(seq: int) -> Callable[[Message], bool]:
    return lambda message: message.get("type") == "gift" and message.get("seq") == seq


@dataclass
class Viewer:
    user: str
    token: str
    codec: str
    sockets: dict[str, RoomClient] = field(default_factory=dict)
    # Room -> the gift events its socket must show, for gifts it paid for.
    events: dict[str, list[dict[str, Any]]] = field(default_factory=dict)


@dataclass(frozen=True)
class Sent:
    """A gift request sent earlier, for repeating: by whom, and what it asked for."""

    viewer: int
    id: str
    request: Gift


class EconomyMachine(RuleBasedStateMachine):
    def __init__(self, env: Env) -> None:
        super().__init__()
        self.env = env
        self.tag = uuid.uuid4().hex[:10]
        self.rooms = {LIVE: f"c{self.tag}", FEW_FOLLOWERS: f"f{self.tag}", GIFTS_OFF: "dave"}
        self.economy = Economy(
            env.prices,
            accepting_rooms=frozenset({self.rooms[LIVE]}),
            switched_off_rooms=frozenset({self.rooms[GIFTS_OFF]}),
        )
        self.viewers: list[Viewer] = []
        self.creator_tokens: dict[str, str] = {}
        self.ids = itertools.count()
        # Every gift request sent, and those that paid for a gift, as first sent.
        self.sent: list[Sent] = []
        self.paid: list[Sent] = []
        # False while a step runs, and after one failed.
        self.steps_ok = True

    def run(self, step: Coroutine[Any, Any, T]) -> T:
        self.steps_ok = False
        result = self.env.run(step)
        self.steps_ok = True
        return result

    @initialize(
        codecs=st.lists(st.sampled_from(CODECS), min_size=2, max_size=3),
        packages=st.lists(st.sampled_from(PACKAGES), min_size=3, max_size=3),
    )
    def start(self, codecs: list[str], packages: list[str]) -> None:
        """Two creators and two or three viewers, each with a package of coins."""
        self.run(self._start(codecs, packages))

    @rule(op=operations)
    def step(self, op: Operation) -> None:
        self.run(self._step(op))

    def teardown(self) -> None:
        # After a failed step, only clean up: a second failure would hide the first.
        self.env.run(self._teardown(check=self.steps_ok and bool(self.viewers)))

    # ------------------------------------------------------------ the steps

    async def _start(self, codecs: list[str], packages: list[str]) -> None:
        api = self.env.api
        # The operator's way to set a creator up (docs/money.md, key layout).
        for room, followers in ((LIVE, MIN_FOLLOWERS), (FEW_FOLLOWERS, MIN_FOLLOWERS - 1)):
            creator = self.rooms[room]
            profile = WalletKeys(self.env.prefix, creator).creator
            await self.env.redis.hset(profile, mapping={"gifts_enabled": 1, "followers": followers})
            self.creator_tokens[creator] = await api.token(creator, "creator")
            went_live = await api.http.post(
                "/api/creator/streams", headers=bearer(self.creator_tokens[creator])
            )
            assert went_live.status_code == 201, went_live.text
        for index, codec in enumerate(codecs):
            user = f"m{self.tag}-{index}"
            viewer = Viewer(user, await api.token(user), codec)
            self.viewers.append(viewer)
            self.economy.viewer(user)
            await self._recharge(Recharge(index, packages[index], pay_twice=False))
        await self._wallets_agree()

    async def _step(self, op: Operation) -> None:
        """Do ``op``; then the wallet of the viewer it was for must be what the model says."""
        if isinstance(op, Recharge):
            await self._recharge(op)
            await self._wallets_agree(self.viewer(op.viewer))
        elif isinstance(op, Gift):
            request_id = f"g.{self.tag}:{next(self.ids)}"
            if op.reconnect:
                await self.close(self.viewer(op.viewer))
            await self._gift(op.viewer, request_id, op)
            await self._wallets_agree(self.viewer(op.viewer))
        elif isinstance(op, Repeat):
            earlier = self.paid if op.paid_only else self.sent
            if earlier:
                first = earlier[op.pick % len(earlier)]
                sender = first.viewer if op.viewer is None else op.viewer
                await self._gift(sender, first.id, op.changed or first.request)
                await self._wallets_agree(self.viewer(sender))
        else:
            await self._books(settled=op.settled)

    async def _recharge(self, op: Recharge) -> None:
        viewer = self.viewer(op.viewer)
        http = self.env.api.http
        auth = bearer(viewer.token)
        created = await http.post("/api/orders", json={"package": op.package}, headers=auth)
        if op.package not in self.env.package_coins:
            assert created.status_code == 400, created.text
            assert created.json()["code"] == "unknown_package"
            return
        assert created.status_code == 201, created.text
        order = created.json()
        coins, bonus = self.env.package_coins[op.package]
        assert (order["package"], order["coins"], order["status"]) == (
            op.package,
            coins + bonus,
            "created",
        )
        paid = await http.post(f"/api/sandbox/pay/{order['order_id']}", headers=auth)
        assert paid.status_code == 200, paid.text
        assert paid.json()["status"] == "ok"
        self.book(viewer).recharge(coins, bonus)
        if op.pay_twice:
            again = await http.post(f"/api/sandbox/pay/{order['order_id']}", headers=auth)
            assert again.status_code == 200, again.text
            assert again.json()["status"] == "order_paid"

    async def _gift(self, index: int, request_id: str, request: Gift) -> None:
        """Send a gift frame and hold the answer, and the room event, against the model."""
        viewer = self.viewer(index)
        room = self.rooms[request.room]
        client = await self.socket(viewer, room)
        count = 1 if request.count is OMITTED else request.count
        expected = self.economy.expect_request(viewer.user, request_id, request.gift, count, room)
        frame: dict[str, Any] = {
            "type": "gift",
            "id": request_id,
            "gift": request.gift,
            "confirm": True,
        }
        if request.count is not OMITTED:
            frame["count"] = request.count
        await client.send(frame)
        answer = await client.reply(request_id)
        matching(answer, [expected], self.economy.last_seq(room))
        sent = Sent(index, request_id, request)
        self.sent.append(sent)
        if isinstance(expected, ExpectAck) and not expected.duplicate:
            self.economy.book_ack(viewer.user, room, expected, answer["seq"])
            self.paid.append(sent)
            # The room must be shown the gift, the sender included; checked
            # before the socket closes, so that steps need not wait for it.
            shown = {"seq": answer["seq"], "room": room, "sender": viewer.user}
            shown |= {"gift": request.gift, "count": count, "coins": expected.coins}
            viewer.events.setdefault(room, []).append(shown)

    async def _books(self, settled: bool) -> None:
        # This example's books: the breaches and pending credits that name its users.
        deadline = time.monotonic() + BOOKS_TIMEOUT
        while True:
            report = await reconcile.check(self.env.redis, self.env.prefix)
            ours = [breach for breach in report.breaches if self.tag in breach]
            pending = [key for key in report.pending if self.tag in key] if settled else []
            if (not ours and not pending) or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.05)
        assert ours == []
        assert pending == []
        await self._wallets_agree()
        if settled:
            for creator, token in self.creator_tokens.items():
                wallet = await self.env.api.wallet(token)
                expected = self.economy.creator(creator).plus({})
                assert {name: wallet.get(name, 0) for name in expected} == expected, creator

    async def _wallets_agree(self, *viewers: Viewer) -> None:
        """``GET /api/wallet`` of these viewers (all, by default) against the model."""
        viewers = viewers or tuple(self.viewers)
        wallets = await asyncio.gather(*(self.env.api.wallet(v.token) for v in viewers))
        for viewer, wallet in zip(viewers, wallets, strict=True):
            expected = self.book(viewer).wallet()
            assert wallet["user"] == viewer.user
            assert {name: wallet.get(name, 0) for name in expected} == expected, viewer.user

    async def _teardown(self, check: bool) -> None:
        for viewer in self.viewers:
            await self.close(viewer, verify=check)
        if check:
            await self._books(settled=True)

    # ------------------------------------------------------------ helpers

    def viewer(self, index: int) -> Viewer:
        return self.viewers[index % len(self.viewers)]

    def book(self, viewer: Viewer) -> ViewerBook:
        return self.economy.viewer(viewer.user)

    async def socket(self, viewer: Viewer, room: str) -> RoomClient:
        client = viewer.sockets.get(room)
        if client is None:
            client = await RoomClient.open(self.env.ws, room, viewer.token, codec=viewer.codec)
            welcome = await client.of_type("welcome")
            assert welcome["you"] == {"user": viewer.user, "role": "viewer", "can_send": True}
            assert welcome["balance"] == self.book(viewer).coins
            viewer.sockets[room] = client
        return client

    async def close(self, viewer: Viewer, verify: bool = True) -> None:
        """Close the viewer's sockets, once each has shown the gifts it paid for."""
        for room, client in viewer.sockets.items():
            for shown in viewer.events.pop(room, []) if verify else []:
                event = await client.next(gift_event(shown["seq"]))
                assert {name: event.get(name) for name in shown} == shown
            await client.close()
        viewer.sockets.clear()
        viewer.events.clear()


async def test_economy_matches_the_model(
    start_server: StartServer, redis: Redis, key_prefix: str
) -> None:
    server = await start_server(
        gift_rate_per_second=100_000,
        gift_rate_burst=100_000,
        # The model's users buy as often as the examples say.
        orders_per_minute=100_000,
        max_open_orders=100_000,
    )
    api = FreshApi(server.http)
    catalog = (await api.http.get("/api/catalog")).json()
    env = Env(
        loop=asyncio.get_running_loop(),
        ws=server.ws,
        api=api,
        redis=redis,
        prefix=key_prefix,
        prices={gift["id"]: gift["coins"] for gift in catalog["gifts"]},
        package_coins={p["id"]: (p["coins"], p["bonus"]) for p in catalog["packages"]},
    )
    # The strategies draw from the default catalogue; the model prices from the server's.
    assert sorted(env.prices) == sorted(GIFTS)
    assert sorted(env.package_coins) == sorted(PACKAGES)

    class OnThisServer(EconomyMachine):
        def __init__(self) -> None:
            super().__init__(env)

    try:
        await asyncio.to_thread(run_state_machine_as_test, OnThisServer, settings=MODEL_SETTINGS)
        # The whole economy, every example together; dave, who takes no gifts, got nothing.
        await assert_books_balance(redis, key_prefix)
        dave = await api.wallet(await api.token("dave", "creator"))
        assert (dave["diamonds"], dave.get("received", 0)) == (0, 0)
    finally:
        await api.aclose()
