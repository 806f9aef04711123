"""giftstream.js, the browser client library, in a real Chromium against a real server.

The example page sends roses with either codec and a watcher from Python
sees them. Other pages import the module themselves and connect through a
WebSocket subclass (the library's ``WebSocket`` option) that records every
frame the library writes and can cut the connection from the page's side:
it closes the socket, and while "offline" sends new connections to a room id
the server refuses. After such a drop the library resumes with every room
event once and in order; a gift whose answer was lost, or that was sent
while offline, goes again with its request id and is paid once. Refusals
reject with typed errors, and the MessagePack codec agrees byte for byte
with the Python ``msgpack`` package. Without Chromium these tests skip (fail
under CI).
"""

from __future__ import annotations

import asyncio
from typing import Any

import msgpack
import pytest
from playwright.async_api import Page, WebSocket, expect

from server.client.frames import Message
from tests.browser import Pages
from tests.client import Api, RoomClient, bearer, funded_sender
from tests.conftest import ServerProcess
from tests.test_pages import browser, pages

__all__ = ["browser", "pages"]  # fixtures, used by name

LIBRARY = "/giftstream.js"
EXAMPLE = "/examples/send-gifts.html"
ROOM = "carol"
# The demo server grants alice these coins; a rose costs 1.
ALICE_COINS = 5000
# Room events, in the room's sequence; the lab records each as delivered.
SEQUENCED = ["gift", "combo_end", "stream_started", "stream_ended", "goal_reached"]

# Imports the library into a page of the server's origin and connects to
# ``roomId`` through a WebSocket subclass that records each frame the library
# writes. ``lab.offline`` sends new connections to a room id the server
# refuses (as a dead network would fail them); ``lab.dropAfterGift`` closes
# the socket right after the next gift frame leaves, before any answer;
# ``lab.rewind`` asks the server to resume that many events early, so that it
# replays events the page has delivered already.
CONNECT = """async ({ roomId, token, codec, sequenced }) => {
  const { connect, decodeMsgpack } = await import("/giftstream.js");
  const lab = (window.lab = {
    sent: [], events: [], welcomes: [], sockets: [],
    offline: false, dropAfterGift: false, rewind: 0,
  });
  const refused = (url) => url.replace(/\\/ws\\/rooms\\/[^?]+/, "/ws/rooms/%21");
  const rewound = (url) =>
    url.replace(/since=(\\d+)/, (_, since) => `since=${Math.max(0, since - lab.rewind)}`);
  class LabSocket extends WebSocket {
    constructor(url, protocols) {
      super(lab.offline ? refused(url) : rewound(url), protocols);
      lab.sockets.push(this);
    }
    send(data) {
      const frame = typeof data === "string" ? JSON.parse(data) : decodeMsgpack(data);
      lab.sent.push(frame);
      super.send(data);
      if (frame.type === "gift" && lab.dropAfterGift) {
        lab.dropAfterGift = false;
        lab.offline = true;
        this.close();
      }
    }
  }
  const options = { token, codec, backoff: { initialMs: 50, maxMs: 200 }, WebSocket: LabSocket };
  const room = (window.room = connect({ room: roomId, ...options }));
  for (const type of sequenced) {
    room.on(type, ({ seq, request_id = null, own = null }) => {
      lab.events.push({ type, seq, request_id, own });
    });
  }
  room.on("welcome", ({ resume, you }, info) => lab.welcomes.push({ resume, you, ...info }));
  await new Promise((resolve) => room.on("welcome", resolve));
}"""

# Sends a gift; what the promise settled with: the ack, or the error's fields.
SEND = """async ({ gift, count }) => {
  const { GiftstreamError } = await import("/giftstream.js");
  const sending = room.sendGift(gift, count);
  try {
    return { ack: await sending, requestId: sending.requestId };
  } catch (error) {
    return { ...error, name: error.name, message: error.message,
             typed: error instanceof GiftstreamError, requestId: sending.requestId };
  }
}"""


# ---------------------------------------------------------------- helpers


async def open_lab(
    pages: Pages, server: ServerProcess, name: str, token: str | None, codec: str
) -> Page:
    """A page of the server's origin (the module itself) connected by the lab."""
    page = await pages.open(name, server.http + LIBRARY)
    arguments = {"roomId": ROOM, "token": token, "codec": codec, "sequenced": SEQUENCED}
    await page.evaluate(CONNECT, arguments)
    return page


async def go_offline(page: Page) -> None:
    """Closes the page's socket and keeps new ones from connecting."""
    await page.evaluate("() => { lab.offline = true; lab.sockets.at(-1).close(); }")
    await page.wait_for_function("() => room.state === 'reconnecting'")


async def go_online(page: Page, welcomes: int) -> None:
    """Lets the library connect again; returns after its ``welcomes``-th welcome."""
    await page.evaluate("() => { lab.offline = false; }")
    await page.wait_for_function("n => lab.welcomes.length >= n", arg=welcomes)
    assert await page.evaluate("() => room.state") == "open"


async def answer(page: Page, name: str) -> Message:
    """What the send kept as ``window[name]`` resolved with, within 5 s."""
    ack: Message = await page.evaluate(
        """(name) => Promise.race([window[name], new Promise((_, reject) =>
             setTimeout(() => reject(new Error(`${name}: no answer within 5 s`)), 5000))])""",
        name,
    )
    return ack


async def gift_frames(page: Page, request_id: str) -> int:
    """How many gift frames with ``request_id`` the library wrote."""
    count: int = await page.evaluate(
        "id => lab.sent.filter((frame) => frame.type === 'gift' && frame.id === id).length",
        request_id,
    )
    return count


async def watcher(server: ServerProcess) -> RoomClient:
    """An anonymous socket in the room, from Python, welcomed."""
    client = await RoomClient.open(server.ws, ROOM)
    await client.of_type("welcome")
    return client


async def shown_gift(client: RoomClient, request_id: str) -> Message:
    return await client.next(
        lambda m: m.get("type") == "gift" and m.get("request_id") == request_id
    )


async def give(client: RoomClient, request_id: str) -> None:
    assert (await client.gift(request_id, "rose"))["type"] == "ack"


# ---------------------------------------------------------------- sending


@pytest.mark.parametrize("codec", ["msgpack", "json"])
async def test_the_example_page_sends_roses_that_the_room_sees_as_its_own(
    server: ServerProcess, api: Api, pages: Pages, codec: str
) -> None:
    token = await api.token("alice")
    room = await watcher(server)
    page = await pages.open("alice", server.http + LIBRARY)
    frames: list[str | bytes] = []

    def record_frames(socket: WebSocket) -> None:
        def record(frame: str | bytes) -> None:
            frames.append(frame)

        socket.on("framereceived", record)

    page.on("websocket", record_frames)
    await page.goto(f"{server.http}{EXAMPLE}?room={ROOM}&token={token}&codec={codec}")
    await expect(page.locator("#state")).to_have_attribute("data-state", "open")
    await expect(page.locator("#balance")).to_have_text(str(ALICE_COINS))

    send = page.locator("#send-rose")
    await send.click()
    await send.click()
    paid = page.locator("#sends li[data-state=paid]")
    await expect(paid).to_have_count(2)
    sends = await paid.evaluate_all(
        "rows => rows.map((row) => [row.dataset.requestId, Number(row.dataset.balance)])"
    )
    request_ids = {request_id for request_id, _ in sends}
    assert len(request_ids) == 2
    assert sorted(balance for _, balance in sends) == [ALICE_COINS - 2, ALICE_COINS - 1]
    assert (await api.wallet(token))["coins"] == ALICE_COINS - 2

    # The room shows each send once, under the page's request id.
    for request_id in request_ids:
        event = await shown_gift(room, request_id)
        assert (event["sender"], event["gift"], event["count"]) == ("alice", "rose", 1)
    assert not [m for m in await room.drain() if m.get("type") == "gift"]
    own = page.locator("#events li[data-type=gift][data-own=true]")
    await expect(own).to_have_count(2)
    assert set(await own.evaluate_all("items => items.map((i) => i.dataset.requestId)")) == (
        request_ids
    )

    # The codec asked for is the one spoken: binary frames, or text.
    assert frames
    assert all(isinstance(frame, bytes if codec == "msgpack" else str) for frame in frames)


# ---------------------------------------------------------------- drops


async def test_after_a_drop_a_watcher_gets_every_room_event_once_and_in_order(
    server: ServerProcess, api: Api, pages: Pages
) -> None:
    room = await watcher(server)
    bob = await funded_sender(server.ws, api, "bob")
    page = await open_lab(pages, server, "watch-only", None, "msgpack")
    ids = [f"drop-{n}" for n in range(1, 10)]

    for request_id in ids[:3]:
        await give(bob, request_id)
    await page.wait_for_function("id => lab.events.some((e) => e.request_id === id)", arg=ids[2])
    await go_offline(page)
    for request_id in ids[3:7]:  # while the page is away: replayed when it resumes
        await give(bob, request_id)
    # Resumed two events early, the server replays two the page has delivered.
    await page.evaluate("() => { lab.rewind = 2; }")
    await go_online(page, welcomes=2)
    for request_id in ids[7:]:
        await give(bob, request_id)

    last = (await shown_gift(room, ids[-1]))["seq"]
    await page.wait_for_function("last => lab.events.some((e) => e.seq >= last)", arg=last)
    events: list[Message] = await page.evaluate("() => lab.events")
    seqs = [event["seq"] for event in events]
    assert seqs == list(range(seqs[0], seqs[-1] + 1)), "a gap or a repeat"
    watched = [m["seq"] for m in room.seen if isinstance(m.get("seq"), int) and m["seq"] > 0]
    assert seqs == [seq for seq in watched if seqs[0] <= seq <= seqs[-1]]
    assert [e["request_id"] for e in events if e["type"] == "gift"] == ids
    assert not any(event["own"] for event in events)  # watch-only: nothing is its own

    first, second = await page.evaluate("() => lab.welcomes")
    assert (first["reconnected"], second["reconnected"], second["missed"]) == (False, True, False)
    assert second["resume"]["status"] == "ok"
    assert second["resume"]["replayed"] >= 4 + 2

    # Without a token the page only watches.
    assert first["you"] == {"user": None, "role": "anonymous", "can_send": False}
    refused: Message = await page.evaluate(SEND, {"gift": "rose", "count": 1})
    assert (refused["typed"], refused["code"], refused["temporary"]) == (True, "not_allowed", False)


async def test_a_gift_left_unanswered_goes_again_with_its_id_and_is_paid_once(
    server: ServerProcess, api: Api, pages: Pages
) -> None:
    token = await api.token("alice")
    room = await watcher(server)
    page = await open_lab(pages, server, "alice", token, "json")

    # The socket drops right after the gift frame leaves: its answer is lost.
    lost: str = await page.evaluate(
        "() => { lab.dropAfterGift = true; window.lost = room.sendGift('rose');"
        " return window.lost.requestId; }"
    )
    await page.wait_for_function("() => room.state === 'reconnecting'")
    await go_online(page, welcomes=2)
    ack = await answer(page, "lost")
    assert (ack["type"], ack["id"], ack["balance"], ack["coins"]) == ("ack", lost, 4999, 1)
    assert await gift_frames(page, lost) == 2

    # Sent while offline: it waits for the next welcome, then goes once.
    await go_offline(page)
    waiting: str = await page.evaluate(
        "() => { window.waiting = room.sendGift('rose'); return window.waiting.requestId; }"
    )
    await asyncio.sleep(0.3)  # several failed reconnects
    assert await gift_frames(page, waiting) == 0
    await go_online(page, welcomes=3)
    ack = await answer(page, "waiting")
    assert (ack["id"], ack["balance"], ack["duplicate"]) == (waiting, 4998, False)
    assert await gift_frames(page, waiting) == 1
    assert lost != waiting

    # Paid once each, shown once each, and known by the page as its own.
    assert (await api.wallet(token))["coins"] == ALICE_COINS - 2
    for request_id in (lost, waiting):
        await shown_gift(room, request_id)
    assert not [m for m in await room.drain() if m.get("type") == "gift"]
    await page.wait_for_function("id => lab.events.some((e) => e.request_id === id)", arg=waiting)
    mine: list[Message] = await page.evaluate("() => lab.events.filter((e) => e.type === 'gift')")
    assert [(e["request_id"], e["own"]) for e in mine] == [(lost, True), (waiting, True)]


# ---------------------------------------------------------------- refusals


async def test_refusals_reject_with_typed_errors(
    server: ServerProcess, api: Api, pages: Pages
) -> None:
    token = await api.token("alice")
    page = await open_lab(pages, server, "alice", token, "msgpack")

    unknown: Message = await page.evaluate(SEND, {"gift": "no_such_gift", "count": 1})
    assert unknown["typed"] is True
    assert unknown["name"] == "GiftstreamError"
    assert (unknown["code"], unknown["temporary"], unknown["outcomeUnknown"]) == (
        "unknown_gift",
        False,
        False,
    )
    assert unknown["requestId"].startswith("gs-")
    assert unknown["message"]

    # The frame's extra fields come with the error.
    rocket: Message = await page.evaluate(SEND, {"gift": "rocket", "count": 1})
    assert (rocket["code"], rocket["coins"], rocket["threshold"]) == (
        "confirm_required",
        1999,
        1000,
    )
    count: Message = await page.evaluate(SEND, {"gift": "rose", "count": 0})
    assert (count["code"], count["temporary"]) == ("bad_count", False)

    # Closed for good: an unanswered send is refused, and nothing reconnects.
    await go_offline(page)
    closed: Message = await page.evaluate(
        "async () => { const sending = room.sendGift('rose'); room.close();"
        " try { await sending; } catch (error) { return { ...error, state: room.state }; } }"
    )
    assert (closed["code"], closed["outcomeUnknown"], closed["state"]) == (
        "closed",
        False,
        "closed",
    )
    sockets = await page.evaluate("() => lab.sockets.length")
    await asyncio.sleep(0.5)
    assert await page.evaluate("() => lab.sockets.length") == sockets
    assert (await api.wallet(token))["coins"] == ALICE_COINS


# ---------------------------------------------------------------- overlay keys


async def test_an_overlay_key_connects_in_place_of_a_token(
    server: ServerProcess, api: Api, pages: Pages
) -> None:
    creator = await api.token("carol", role="creator")
    overlay = await api.http.get("/api/creator/overlay-key", headers=bearer(creator))
    page = await pages.open("overlay", server.http + LIBRARY)
    you: Message = await page.evaluate(
        """async (key) => {
          const { connect } = await import("/giftstream.js");
          const room = connect({ room: "carol", key, codec: "json" });
          const welcome = await new Promise((resolve) => room.on("welcome", resolve));
          room.close();
          return welcome.you;
        }""",
        overlay.json()["key"],
    )
    assert you == {"user": "carol", "role": "overlay", "can_send": False}


# ---------------------------------------------------------------- MessagePack

# What the protocol carries, at the edges of each MessagePack form.
EDGE_VALUES: dict[str, Any] = {
    "ts": 1_767_225_600_123,
    "max_safe": 2**53 - 1,
    "unsigned": [0, 127, 128, 255, 256, 65_535, 65_536, 2**32 - 1, 2**32],
    "negative": [-1, -32, -33, -128, -129, -32_768, -32_769, -(2**31), -(2**31) - 1, -(2**53 - 1)],
    "floats": [0.5, -1.25, 3.141592653589793, 1e300, -2.5e-300],
    "nested": {"a": {"b": {"c": [1, {"d": None}, [True, False]]}}},
    "unicode": "żółć · 玫瑰 · 🌹 · \u0000",
    "strings": ["", "x" * 31, "x" * 32, "y" * 255, "y" * 256, "z" * 65_536],
    "wide": {f"k{n}": n for n in range(16)},
    "long": list(range(16)),
    "empty": {"map": {}, "list": []},
}

# In the page: the bytes of ``value``, the names of the values (``value``'s
# and some JSON cannot carry) that did not come back from a round trip, and
# the malformed inputs that were not refused with a RangeError.
ROUND_TRIP = """async (value) => {
  const { encodeMsgpack, decodeMsgpack } = await import("/giftstream.js");
  const same = (a, b) => {
    if (a instanceof Uint8Array || Array.isArray(a)) {
      return b?.constructor === a.constructor && a.length === b.length &&
        a.every((item, i) => same(item, b[i]));
    }
    if (a && typeof a === "object") {
      const keys = Object.keys(a);
      return b !== null && typeof b === "object" && Object.keys(b).length === keys.length &&
        keys.every((key) => same(a[key], b[key]));
    }
    return Object.is(a, b);
  };
  const values = {
    ...value, minusZero: -0, nan: NaN, infinity: -Infinity,
    bin: new Uint8Array([0, 1, 254, 255]), bigBin: new Uint8Array(70000).fill(7),
  };
  const roundTrip = (item) => decodeMsgpack(encodeMsgpack(item));
  const lost = Object.keys(values).filter((name) => !same(roundTrip(values[name]), values[name]));
  // A bigint comes back as a Number, like any integer.
  if (roundTrip(-(2n ** 40n)) !== -(2 ** 40)) lost.push("bigint");
  const malformed = [[0xcf, 0, 0], [0xc7, 1, 1, 0], [0xc1], [0x91], [0xc0, 0xc0]];
  const accepted = malformed.filter((bytes) => {
    try {
      decodeMsgpack(new Uint8Array(bytes));
      return true;
    } catch (error) {
      return !(error instanceof RangeError);
    }
  });
  return { bytes: Array.from(encodeMsgpack(value)), lost, accepted };
}"""

# In the page: decodes bytes packed by Python into something JSON can carry
# (bin as {bin: [...]}), and the value of its "__proto__" key, if any.
DECODE = """async (bytes) => {
  const { decodeMsgpack } = await import("/giftstream.js");
  const value = decodeMsgpack(new Uint8Array(bytes));
  const binAsList = (key, item) => (item instanceof Uint8Array ? { bin: Array.from(item) } : item);
  // A key "__proto__" must stay a key, not become the map's prototype.
  const ownProto = Object.getPrototypeOf(value) === Object.prototype &&
    Object.hasOwn(value, "__proto__");
  return {
    value: JSON.parse(JSON.stringify(value, binAsList)),
    proto: ownProto ? value["__proto__"] : "lost",
  };
}"""


async def test_the_messagepack_codec_round_trips_edge_values(
    server: ServerProcess, pages: Pages
) -> None:
    page = await pages.open("codec", server.http + LIBRARY)
    encoded: Message = await page.evaluate(ROUND_TRIP, EDGE_VALUES)
    assert encoded["lost"] == []
    assert encoded["accepted"] == [], "truncated, extension, unused or trailing bytes"
    # Byte for byte the smallest forms, as the Python package writes them.
    assert bytes(encoded["bytes"]) == msgpack.packb(EDGE_VALUES)

    decoded: Message = await page.evaluate(DECODE, list(msgpack.packb(EDGE_VALUES)))
    assert decoded["value"] == EDGE_VALUES
    # A map key "__proto__", bin, 64-bit integers, 32-bit floats.
    other = {"bin": b"\x00\xff", "int64": -(2**40), "uint64": 2**53 - 1}
    decoded = await page.evaluate(DECODE, list(msgpack.packb({**other, "__proto__": 1})))
    assert decoded["proto"] == 1
    decoded["value"].pop("__proto__", None)  # Playwright may not carry it back
    assert decoded["value"] == {**other, "bin": {"bin": [0, 255]}}
    single = await page.evaluate(DECODE, list(msgpack.packb([1.5, -0.25], use_single_float=True)))
    assert single["value"] == [1.5, -0.25]
