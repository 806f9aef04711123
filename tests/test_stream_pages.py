"""Going live and offline, as the demo pages show it, in a real Chromium.

A room takes gifts only while its creator is live. With
``min_creator_followers=350`` the demo's dave (350 followers, gifts off, not
live) may switch gifts on: his room is then closed for one reason only, that
he is offline. The viewer page must follow his streams as they start and end,
without a reload; the creator page goes live and ends the stream, lists the
period's streams with their earnings, and saves a selection as CSV.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Download, Page, WebSocketRoute, expect

from tests.browser import Pages
from tests.client import Api, RoomClient, bearer
from tests.conftest import ServerProcess, StartServer
from tests.test_pages import browser, open_creator, open_viewer, pages

__all__ = ["browser", "pages"]  # fixtures, used by name

STREAM_ID = re.compile(r"^st-[0-9a-f]+-[0-9a-f]+$")
CSV_HEADER = "section,key,label,count,coins,diamonds"
# A corgi (299 coins) and five roses (5): half of each to dave, the halves
# carried (docs/money.md): 149 carrying a half, then 3.
GIFT_COINS, GIFT_COUNT, GIFT_DIAMONDS = 304, 6, 152


class Creator:
    """A creator's HTTP API, with their creator token."""

    def __init__(self, api: Api, token: str) -> None:
        self.api = api
        self.token = token

    async def post(self, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        response = await self.api.http.post(path, json=body, headers=bearer(self.token))
        assert response.is_success, response.text
        answer: dict[str, Any] = response.json()
        return answer

    async def get(self, path: str) -> dict[str, Any]:
        response = await self.api.http.get(path, headers=bearer(self.token))
        assert response.is_success, response.text
        answer: dict[str, Any] = response.json()
        return answer

    async def go_live(self) -> str:
        stream = await self.post("/api/creator/streams")
        assert stream["live"] is True
        stream_id: str = stream["stream_id"]
        return stream_id

    async def end(self, stream_id: str) -> None:
        stream = await self.post(f"/api/creator/streams/{stream_id}/end")
        assert (stream["live"], stream["end_reason"]) == (False, "ended")


@pytest.fixture
async def server(start_server: StartServer) -> ServerProcess:
    """A demo server on which dave, with his 350 followers, may take gifts."""
    return await start_server(min_creator_followers=350)


@pytest.fixture
async def dave(server: ServerProcess) -> AsyncIterator[Creator]:
    api = Api(server.http)
    try:
        yield Creator(api, await api.token("dave", role="creator"))
    finally:
        await api.aclose()


async def viewer_client(server: ServerProcess, user: str, room: str) -> RoomClient:
    api = Api(server.http)
    try:
        return await RoomClient.open(server.ws, room, await api.token(user))
    finally:
        await api.aclose()


async def saved_lines(download: Download) -> list[str]:
    """The lines of a file the page saved."""
    text = await asyncio.to_thread(Path(await download.path()).read_text)
    return text.splitlines()


async def mark_load(page: Page) -> None:
    """Marks this load of the page: `same_load` tells whether it was reloaded since."""
    await page.evaluate("window.markedLoad = true")


async def same_load(page: Page) -> bool:
    marked: bool = await page.evaluate("window.markedLoad === true")
    return marked


# ---------------------------------------------------------------- the viewer


async def test_the_viewer_page_opens_gifts_while_the_creator_is_live(
    server: ServerProcess, pages: Pages, dave: Creator
) -> None:
    switched = await dave.post("/api/creator/gifting", {"enabled": True})
    assert (switched["gifting_enabled"], switched["eligible"]) == (True, True)
    viewer = await open_viewer(pages, server, "alice", room="dave")
    await mark_load(viewer)
    badge = viewer.locator("#live-badge")
    off = viewer.locator("#gifts-off")
    gifts = viewer.locator("#gifts button")

    # Eligible and switched on, but not live: offline, and that is the reason.
    await expect(badge).to_have_text("OFFLINE")
    await expect(viewer.locator("body")).to_have_attribute("data-live", "false")
    await expect(viewer.locator("body")).to_have_attribute("data-gifts", "off")
    await expect(off).to_be_visible()
    await expect(off).to_have_attribute("data-reasons", "room_offline")
    await expect(off.locator(".gifts-off-title")).to_have_text("dave is offline")
    await expect(off.locator(".gifts-off-why")).to_have_text("Gifts open when the stream starts.")
    await expect(gifts).to_have_count(10)
    await expect(viewer.locator("#gifts button:enabled")).to_have_count(0)
    await viewer.locator("#gifts button[data-gift=rose]").click(force=True)
    await expect(viewer.locator("#sends .send")).to_have_count(0)

    # dave goes live: the room's stream_started opens the gifts, no reload.
    stream_id = await dave.go_live()
    await expect(viewer.locator("#gifts button:enabled")).to_have_count(10)
    await expect(off).to_be_hidden()
    await expect(badge).to_have_text("LIVE")
    await expect(viewer.locator("body")).to_have_attribute("data-gifts", "on")
    await expect(viewer.locator("#notice")).to_have_text("dave is live: gifts are open.")
    await expect(viewer.locator("#feed .feed-note").first).to_have_text("dave went live")
    await viewer.click("#gifts button[data-gift=rose]")
    sent = viewer.locator("#sends .send").first
    await expect(sent).to_have_attribute("data-state", "confirmed")
    await expect(viewer.locator("#balance")).to_have_text("4,999")

    # The stream ends: offline again, every gift button off.
    await dave.end(stream_id)
    await expect(off).to_be_visible()
    await expect(off).to_have_attribute("data-reasons", "room_offline")
    await expect(badge).to_have_text("OFFLINE")
    await expect(viewer.locator("#gifts button:enabled")).to_have_count(0)
    await expect(viewer.locator("#feed .feed-note").first).to_have_text("the stream ended")
    assert await same_load(viewer), "the page was reloaded"


async def test_a_room_offline_refusal_closes_the_panel_until_the_room_is_live(
    server: ServerProcess, pages: Pages, dave: Creator
) -> None:
    await dave.post("/api/creator/gifting", {"enabled": True})
    first = await dave.go_live()
    # The page hears nothing of the stream's end: its socket loses the event,
    # so its gift is sent, and refused.
    ended = re.compile(r'"type"\s*:\s*"stream_ended"')

    async def lose_stream_ends(socket: WebSocketRoute) -> None:
        server_side = socket.connect_to_server()
        server_side.on_message(
            lambda message: None if ended.search(str(message)) else socket.send(message)
        )

    viewer = await pages.open("alice@dave", "about:blank")
    await viewer.route_web_socket(re.compile(r"/ws/rooms/dave"), lose_stream_ends)
    await viewer.goto(f"{server.http}/viewer.html?room=dave&user=alice")
    await expect(viewer.locator("#state")).to_have_attribute("data-state", "live")
    await expect(viewer.locator("#gifts button:enabled")).to_have_count(10)
    await dave.end(first)

    await viewer.click("#gifts button[data-gift=rose]")

    refused = viewer.locator("#sends .send").first
    await expect(refused).to_have_attribute("data-code", "room_offline")
    # The panel explains; the row only says that this gift was not sent.
    await expect(refused.locator(".send-status")).to_have_text("not sent")
    off = viewer.locator("#gifts-off")
    await expect(off.locator(".gifts-off-title")).to_have_text("dave is offline")
    await expect(viewer.locator("#gifts button:enabled")).to_have_count(0)
    text = await viewer.evaluate("document.body.innerText")
    assert text.count("dave is offline") == 1, text
    assert "not live" not in text, "the server's words are shown as well as the page's"
    await expect(viewer.locator("#balance")).to_have_text("5,000")

    # Asked again once the server's second of caching is over: still offline.
    async with viewer.expect_response(re.compile(r"/api/rooms/dave$")) as asked:
        pass
    assert (await (await asked.value).json())["live"] is False
    await expect(viewer.locator("#gifts button:enabled")).to_have_count(0)
    await dave.go_live()
    await expect(viewer.locator("#gifts button:enabled")).to_have_count(10)
    await expect(off).to_be_hidden()


# ---------------------------------------------------------------- the creator


async def test_the_creator_goes_live_sees_the_stream_earn_and_ends_it(
    server: ServerProcess, pages: Pages, dave: Creator
) -> None:
    studio = await open_creator(pages, server, "dave")
    await mark_load(studio)
    card = studio.locator("#on-air")
    await expect(card).to_have_attribute("data-live", "false")
    await expect(studio.locator("#on-air-state")).to_have_text("Not live")
    await expect(studio.locator("#end-stream")).to_be_disabled()
    await expect(studio.locator("#streams tbody tr.none")).to_have_text(
        "No streams in this period."
    )
    await studio.click("#gifting-switch")
    await expect(studio.locator("#gifting")).to_have_attribute("data-state", "on")

    await studio.click("#go-live")

    await expect(card).to_have_attribute("data-live", "true")
    await expect(studio.locator("#on-air-state")).to_have_text("Live")
    await expect(studio.locator("#on-air-since")).to_contain_text("since ")
    await expect(studio.locator("#go-live")).to_be_disabled()
    await expect(studio.locator("#end-stream")).to_be_enabled()
    stream_id = await card.get_attribute("data-stream")
    assert stream_id is not None
    assert STREAM_ID.match(stream_id), stream_id
    assert (await dave.get("/api/creator/streams"))["live"]["stream_id"] == stream_id
    row = studio.locator(f"#streams tbody tr[data-stream='{stream_id}']")
    await expect(row.locator(".stream-length")).to_have_text("live")
    await expect(studio.locator("#stream-title")).to_have_text("This stream")

    alice = await viewer_client(server, "alice", "dave")
    try:
        assert (await alice.gift("s-corgi", "corgi"))["type"] == "ack"
        assert (await alice.gift("s-rose", "rose", 5))["type"] == "ack"
    finally:
        await alice.close()

    await expect(row).to_have_attribute("data-coins", str(GIFT_COINS))
    await expect(row).to_have_attribute("data-diamonds", str(GIFT_DIAMONDS))
    await expect(row).to_have_attribute("data-count", str(GIFT_COUNT))
    await expect(studio.locator("#streams tbody tr")).to_have_count(1)
    await expect(studio.locator("#stream-diamonds")).to_have_text(str(GIFT_DIAMONDS))
    await expect(studio.locator("#stream-note")).to_contain_text("6 gifts · 304 coins · since")

    # Chosen, the stream shows its own earnings.
    await row.click()
    detail = studio.locator("#stream-detail")
    await expect(detail).to_be_visible()
    await expect(detail).to_have_attribute("data-stream", stream_id)
    await expect(detail).to_have_attribute("data-coins", str(GIFT_COINS))
    await expect(row).to_have_class(re.compile(r"\bchosen\b"))
    await expect(studio.locator("#stream-detail-gifts tr[data-gift=corgi]")).to_have_attribute(
        "data-coins", "299"
    )
    await expect(studio.locator("#stream-detail-gifts tr[data-gift=rose]")).to_have_attribute(
        "data-count", "5"
    )
    supporter = studio.locator("#stream-detail-supporters tr[data-user=alice]")
    await expect(supporter).to_have_attribute("data-coins", str(GIFT_COINS))
    await expect(studio.locator("#stream-chart")).to_have_attribute("data-total", "152")
    await expect(studio.locator("#stream-detail-totals")).to_contain_text("6 gifts · 304 coins")

    # The selection, saved as CSV.
    async with studio.expect_download() as saving:
        await studio.click("#download-csv")
    download = await saving.value
    assert download.suggested_filename == f"earnings-dave-{stream_id}.csv"
    lines = await saved_lines(download)
    assert lines[0] == CSV_HEADER
    assert f"total,,,{GIFT_COUNT},{GIFT_COINS},{GIFT_DIAMONDS}" in lines, lines
    assert any(line.startswith(f"stream,{stream_id},") for line in lines), lines
    await expect(studio.locator("#csv-status")).to_be_hidden()

    await studio.click("#end-stream")

    await expect(card).to_have_attribute("data-live", "false")
    await expect(studio.locator("#on-air-state")).to_have_text("Not live")
    await expect(studio.locator("#on-air-since")).to_contain_text("Last stream ended at")
    await expect(studio.locator("#go-live")).to_be_enabled()
    await expect(studio.locator("#end-stream")).to_be_disabled()
    await expect(row.locator(".stream-length")).not_to_have_text("live")
    await expect(row).to_have_attribute("data-live", "false")
    await expect(studio.locator("#stream-title")).to_have_text("Last stream")
    await expect(studio.locator("#stream-diamonds")).to_have_text(str(GIFT_DIAMONDS))
    assert (await dave.get("/api/creator/streams"))["live"] is None

    # Started and ended elsewhere (another tab, the API): the room's events say so.
    second = await dave.go_live()
    await expect(card).to_have_attribute("data-live", "true")
    await expect(card).to_have_attribute("data-stream", second)
    await expect(studio.locator("#streams tbody tr")).to_have_count(2)
    await expect(studio.locator("#stream-title")).to_have_text("This stream")
    await expect(studio.locator("#stream-diamonds")).to_have_text("0")
    await dave.end(second)
    await expect(card).to_have_attribute("data-live", "false")
    assert await same_load(studio), "the page was reloaded"


async def test_the_period_csv_holds_the_period_and_a_new_period_lets_the_stream_go(
    server: ServerProcess, pages: Pages, dave: Creator
) -> None:
    await dave.post("/api/creator/gifting", {"enabled": True})
    stream_id = await dave.go_live()
    alice = await viewer_client(server, "alice", "dave")
    try:
        assert (await alice.gift("p-corgi", "corgi"))["type"] == "ack"
        assert (await alice.gift("p-rose", "rose", 5))["type"] == "ack"
    finally:
        await alice.close()
    studio = await open_creator(pages, server, "dave")
    row = studio.locator(f"#streams tbody tr[data-stream='{stream_id}']")
    await expect(row).to_have_attribute("data-coins", str(GIFT_COINS))
    await row.locator("button").click()
    await expect(studio.locator("#stream-detail")).to_be_visible()

    # Another period: the stream is let go, and the CSV is the period's.
    await studio.click("#periods input[value=day] + span")
    await expect(studio.locator("#stream-detail")).to_be_hidden()
    await expect(row).not_to_have_class(re.compile(r"\bchosen\b"))
    async with studio.expect_download() as saving:
        await studio.click("#download-csv")
    download = await saving.value
    assert download.suggested_filename == "earnings-dave-days.csv"
    lines = await saved_lines(download)
    assert lines[0] == CSV_HEADER
    assert f"total,,,{GIFT_COUNT},{GIFT_COINS},{GIFT_DIAMONDS}" in lines, lines
    assert sum(line.startswith("day,") for line in lines) >= 1, lines
