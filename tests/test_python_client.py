"""server.client against a real demo server: both codecs, drops and resumes,
lost answers retried with the same request id, typed errors, watching."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pytest

from server.client import (
    ANY_MESSAGE,
    Backoff,
    ConnectionState,
    GiftstreamError,
    GiftstreamRoom,
    HandshakeRefused,
    StateDetail,
    WelcomeInfo,
    connect,
)
from server.core.protocol import Codec
from tests.client import Api
from tests.conftest import ServerProcess, StartServer

Message = dict[str, Any]
WAIT = 10.0


async def until(condition: Callable[[], bool], what: str, within: float = WAIT) -> None:
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {within:g} s for {what}")
        await asyncio.sleep(0.02)


def received(room: GiftstreamRoom) -> list[Message]:
    """Every room message ``room`` delivers from now on, in order."""
    messages: list[Message] = []
    room.on(ANY_MESSAGE, messages.append)
    return messages


def sequenced(messages: list[Message]) -> list[int]:
    return [m["seq"] for m in messages if isinstance(m.get("seq"), int) and m["seq"] > 0]


def drop(room: GiftstreamRoom) -> None:
    """Cut the room's connection as a failing network would: no close frame."""
    assert room.connection is not None
    room.connection.transport.abort()


@pytest.mark.parametrize("codec", ["msgpack", "json"])
async def test_gifts_are_answered_and_shown_in_either_codec(
    server: ServerProcess, api: Api, codec: Any
) -> None:
    token = await api.token("alice")
    async with (
        connect(server.http, "carol", codec=codec) as watcher,
        connect(server.http, "carol", token=token, codec=codec) as sender,
    ):
        assert sender.connection is not None
        assert sender.connection.subprotocol == str(Codec(f"giftstream.v1.{codec}"))
        assert sender.welcome is not None
        assert sender.welcome["you"] == {"user": "alice", "role": "viewer", "can_send": True}
        seen_by_watcher, seen_by_sender = received(watcher), received(sender)

        ack = await sender.send_gift("rose", 3)
        assert (ack["type"], ack["coins"], ack["balance"], ack["duplicate"]) == (
            "ack", 3, 4997, False,
        )  # fmt: skip
        await until(lambda: ack["seq"] in sequenced(seen_by_watcher), "the watcher's event")
        await until(lambda: ack["seq"] in sequenced(seen_by_sender), "the sender's event")
        [shown] = [m for m in seen_by_watcher if m.get("seq") == ack["seq"]]
        [own] = [m for m in seen_by_sender if m.get("seq") == ack["seq"]]
        assert (shown["type"], shown["sender"], shown["count"]) == ("gift", "alice", 3)
        assert shown["request_id"] == ack["id"]
        # Only the client that sent it calls it its own.
        assert (shown["own"], own["own"]) == (False, True)
    assert sender.state == watcher.state == "closed"


async def test_a_dropped_watcher_gets_every_event_once_and_in_order(
    server: ServerProcess, api: Api
) -> None:
    token = await api.token("alice")
    states: list[ConnectionState] = []
    welcomes: list[tuple[Message, WelcomeInfo]] = []
    # At least half a second away: long enough to miss gifts while away.
    slow_return = Backoff(initial=1.0, maximum=1.0)
    async with (
        connect(server.http, "carol", codec="json", backoff=slow_return) as watcher,
        connect(server.http, "carol", token=token) as sender,
    ):
        assert watcher.welcome is not None
        first_seq = watcher.welcome["last_seq"] + 1
        watcher.on_state(lambda state, _: states.append(state))
        watcher.on_welcome(lambda welcome, info: welcomes.append((welcome, info)))
        seen = received(watcher)

        acks = [await sender.send_gift("rose") for _ in range(3)]
        await until(lambda: acks[-1]["seq"] in sequenced(seen), "the events before the drop")
        drop(watcher)
        await until(lambda: watcher.state == "reconnecting", "the drop to be noticed")
        acks += [await sender.send_gift("rose", 2) for _ in range(3)]
        await until(lambda: watcher.state == "open", "the reconnect", within=5.0)
        acks += [await sender.send_gift("rocket", confirm=True)]
        last = acks[-1]["seq"]
        await until(lambda: last in sequenced(seen), "every event after the reconnect")

    assert states[:2] == ["reconnecting", "open"]
    [(welcome, info)] = welcomes
    assert (info.reconnected, info.missed) == (True, False)
    assert welcome["resume"]["status"] == "ok"
    assert welcome["resume"]["replayed"] >= 3
    # Each event once, in seq order, none missing: combo_end events included.
    seqs = [seq for seq in sequenced(seen) if seq <= last]
    assert seqs == list(range(first_seq, last + 1))
    gifts = [m for m in seen if m["type"] == "gift"]
    assert [g["seq"] for g in gifts] == [ack["seq"] for ack in acks]


async def test_a_send_whose_answer_was_lost_is_sent_again_and_paid_once(
    server: ServerProcess, api: Api
) -> None:
    token = await api.token("alice")
    async with (
        connect(server.http, "carol") as watcher,
        connect(server.http, "carol", token=token, backoff=Backoff(0.1, 0.2)) as sender,
    ):
        seen = received(watcher)
        assert sender.connection is not None
        # The answer will come but not be read: the connection dies first.
        sender.connection.transport.pause_reading()
        sending = asyncio.create_task(sender.send_gift("rose", 7, request_id="lost-answer-1"))
        await until(lambda: any(m.get("count") == 7 for m in seen), "the paid gift's event")
        assert not sending.done()
        drop(sender)
        ack = await asyncio.wait_for(sending, WAIT)
        # The same id went again after the reconnect: the first outcome came back.
        assert (ack["id"], ack["coins"], ack["duplicate"]) == ("lost-answer-1", 7, True)
        await asyncio.sleep(0.3)
        assert [m["count"] for m in seen if m["type"] == "gift"] == [7]
    wallet = await api.wallet(token)
    assert wallet["coins"] == 5000 - 7


async def test_a_rate_limited_send_is_retried_with_its_id_until_it_goes(
    start_server: StartServer,
) -> None:
    # Two frames at once, then one every quarter of a second.
    tight = await start_server(gift_rate_per_second=4, gift_rate_burst=2)
    api = Api(tight.http)
    try:
        token = await api.token("alice")
        refusals: list[Message] = []

        def keep_refusals(frame: Message) -> None:
            if frame["type"] == "error":
                refusals.append(frame)

        async with connect(tight.http, "carol", token=token) as sender:
            sender.on_frame(keep_refusals)
            ids = [f"tight-{n}" for n in range(4)]
            acks = await asyncio.gather(*(sender.send_gift("rose", request_id=i) for i in ids))
        assert [ack["id"] for ack in acks] == ids
        assert not any(ack["duplicate"] for ack in acks)
        assert {frame["code"] for frame in refusals} == {"rate_limited"}
        # Refused at first, then paid for under the same id.
        assert {frame["id"] for frame in refusals} & set(ids), "the burst was never exceeded"
        assert (await api.wallet(token))["coins"] == 5000 - 4
    finally:
        await api.aclose()


def test_reconnect_delays_double_up_to_the_cap_with_jitter() -> None:
    backoff = Backoff(initial=0.5, maximum=4.0)
    for failures, ceiling in [(0, 0.5), (1, 1.0), (2, 2.0), (3, 4.0), (10, 4.0), (99, 4.0)]:
        delays = [backoff.delay(failures) for _ in range(200)]
        assert all(ceiling / 2 <= delay <= ceiling for delay in delays), (failures, delays)
        assert max(delays) - min(delays) > ceiling / 10, "no jitter"


async def test_refusals_are_typed_errors_with_their_fields(server: ServerProcess, api: Api) -> None:
    alice, bob = await api.token("alice"), await api.token("bob")
    async with (
        connect(server.http, "carol", token=alice, codec="json") as rich,
        connect(server.http, "carol", token=bob) as poor,
    ):
        with pytest.raises(GiftstreamError) as unknown:
            await rich.send_gift("no_such_gift", request_id="typed-1")
        assert (unknown.value.code, unknown.value.request_id) == ("unknown_gift", "typed-1")
        assert (unknown.value.temporary, unknown.value.outcome_unknown) == (False, False)

        with pytest.raises(GiftstreamError) as unconfirmed:
            await rich.send_gift("rocket")
        assert unconfirmed.value.code == "confirm_required"
        assert unconfirmed.value.fields == {"coins": 1999, "threshold": 1000}

        with pytest.raises(GiftstreamError) as short:
            await poor.send_gift("universe", confirm=True)
        assert short.value.code == "insufficient_coins"
        assert short.value.message

        # Nothing was debited by any of them; a confirmed rocket still goes.
        ack = await rich.send_gift("rocket", confirm=True)
        assert ack["balance"] == 5000 - 1999
    assert (await api.wallet(bob))["coins"] == 500


async def test_a_watcher_without_a_token_sees_but_cannot_send(
    server: ServerProcess, api: Api
) -> None:
    states: list[tuple[ConnectionState, StateDetail]] = []
    watcher = connect(server.http, "carol")
    watcher.on_state(lambda state, detail: states.append((state, detail)))
    welcome = await watcher.start()
    assert (welcome["you"]["role"], welcome["balance"]) == ("anonymous", None)
    with pytest.raises(GiftstreamError) as refused:
        await watcher.send_gift("rose")
    assert refused.value.code == "not_allowed"

    messages = watcher.messages()
    async with connect(server.http, "carol", token=await api.token("alice")) as sender:
        ack = await sender.send_gift("rose", 2)
    message = await asyncio.wait_for(anext(messages), WAIT)
    while message.get("seq") != ack["seq"]:
        message = await asyncio.wait_for(anext(messages), WAIT)
    assert (message["type"], message["count"], message["own"]) == ("gift", 2, False)

    await watcher.close()
    assert [state for state, _ in states] == ["open", "closed"]
    with pytest.raises(GiftstreamError) as closed:
        await watcher.send_gift("rose")
    assert closed.value.code == "closed"


async def test_a_refused_handshake_says_why(server: ServerProcess) -> None:
    with pytest.raises(HandshakeRefused) as refused:
        await connect(server.http, "no such room!").start()
    assert (refused.value.status, refused.value.code) == (404, "unknown_room")
    with pytest.raises(HandshakeRefused) as forged:
        await connect(server.http, "carol", token="forged").start()
    assert (forged.value.status, forged.value.code) == (401, "unauthorized")
