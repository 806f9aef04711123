"""What informs the room besides its gifts, as the pages show it, in a real Chromium.

The viewer page ranks the room's top gifters (for the stream, today or all
time) and lets a viewer hide their name in rankings; the overlay shows the
same ranking, or the creator's goal, as a widget on its own; the creator
page sets and clears the goal, which fills on every page as gifts arrive
and is celebrated once when reached; and a viewer's own send is marked
once the room has shown it. Rankings and goals are counted a second or two
after each gift, so each check allows some seconds. The demo server's
alice holds 5,000 coins, bob 500, and carol is live. Without Chromium these
tests skip (fail under CI).
"""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

from playwright.async_api import Locator, Page, WebSocketRoute, expect

from server.money.leaderboard import ACTIVE_SECONDS
from tests.browser import Pages
from tests.client import Api, RoomClient, bearer
from tests.conftest import ServerProcess
from tests.test_pages import (
    browser,
    open_creator,
    open_overlay,
    open_viewer,
    pages,
    protocol_client,
)

__all__ = ["browser", "pages"]  # fixtures, used by name

# Rankings and goals are counted 1-3 s after a gift, and sent at most once a second.
COUNTED_MS = 15_000


async def tap(page: Page, gift: str) -> Locator:
    """Taps a gift; its row, once the server has taken it."""
    rows = page.locator("#sends .send")
    before = await rows.count()
    await page.click(f"#gifts button[data-gift={gift}]")
    await expect(rows).to_have_count(min(before + 1, 6))
    row = rows.first
    await expect(row).to_have_attribute("data-state", "confirmed")
    return row


async def mark_load(page: Page) -> None:
    """Marks this load of the page: `same_load` tells whether it was reloaded since."""
    await page.evaluate("window.markedLoad = true")


async def same_load(page: Page) -> bool:
    marked: bool = await page.evaluate("window.markedLoad === true")
    return marked


async def anonymous_in_rankings(server: ServerProcess, user: str) -> bool:
    api = Api(server.http)
    try:
        answer = await api.http.get("/api/me/privacy", headers=bearer(await api.token(user)))
        answer.raise_for_status()
        anonymous: bool = answer.json()["anonymous"]
        return anonymous
    finally:
        await api.aclose()


async def buyer(server: ServerProcess, user: str) -> RoomClient:
    """A protocol client in carol's room for ``user``, who has bought 330 coins."""
    api = Api(server.http)
    try:
        token = await api.token(user)
        await api.buy(token, "coins_330")
        client = await RoomClient.open(server.ws, "carol", token)
        await client.of_type("welcome")
        return client
    finally:
        await api.aclose()


async def give(client: RoomClient, request_id: str, gift: str, count: int = 1) -> None:
    assert (await client.gift(request_id, gift, count))["type"] == "ack"


# ---------------------------------------------------------------- the viewer's ranking


async def test_the_viewer_page_ranks_top_gifters_and_hides_a_name_on_request(
    server: ServerProcess, pages: Pages
) -> None:
    alice = await open_viewer(pages, server, "alice")
    bob = await open_viewer(pages, server, "bob")
    for page in (alice, bob):
        await expect(page.locator("#leaderboard-empty")).to_have_text(
            "No gifts in this stream yet."
        )
        await expect(page.locator("#privacy-label")).to_be_visible()
        await expect(page.locator("#privacy")).not_to_be_checked()

    await tap(alice, "corgi")  # 299 coins
    await tap(bob, "doughnut")  # 30

    # Both pages read an empty ranking when they opened: this one came as a message.
    for page in (alice, bob):
        rows = page.locator("#leaderboard .board-row")
        await expect(rows.locator(".board-name")).to_have_text(["alice", "bob"], timeout=COUNTED_MS)
        await expect(rows.locator(".board-coins")).to_have_text(["299", "30"])
        await expect(rows.locator(".board-rank")).to_have_text(["1", "2"])
        await expect(page.locator("#leaderboard-empty")).to_be_hidden()
    await expect(alice.locator("#leaderboard .board-row.own")).to_have_attribute(
        "data-user", "alice"
    )
    await expect(bob.locator("#leaderboard .board-row[data-own=true]")).to_have_attribute(
        "data-user", "bob"
    )

    # The other periods are read when chosen; a gift counts in each.
    board = alice.locator("#top-gifters")
    for period, label in (("all", "All time"), ("day", "Today")):
        await alice.click(f"#top-gifters label:has(input[value={period}])")
        await expect(board).to_have_attribute("data-period", period)
        await expect(board.locator(".board-name")).to_have_text(["alice", "bob"])
        await expect(board.locator(f"label:has(input[value={period}])")).to_have_text(label)
    await alice.click("#top-gifters label:has(input[value=stream])")
    await expect(board).to_have_attribute("data-period", "stream")

    # bob hides his name once the room is quiet (no message would say it):
    # his page reads the ranking again, and he is ranked unnamed.
    await asyncio.sleep(ACTIVE_SECONDS + 1)
    await bob.check("#privacy")
    bob_rows = bob.locator("#leaderboard .board-row")
    await expect(bob_rows.locator(".board-name")).to_have_text(["alice", "anonymous"])
    await expect(bob_rows.nth(1)).to_have_attribute("data-user", "")
    await expect(bob_rows.locator(".board-coins")).to_have_text(["299", "30"])
    await expect(bob.locator("#leaderboard .board-row.own")).to_have_count(0)
    assert await anonymous_in_rankings(server, "bob")

    # alice's page hears it with the next change of the ranking.
    await tap(alice, "rose")
    alice_rows = alice.locator("#leaderboard .board-row")
    await expect(alice_rows.locator(".board-coins")).to_have_text(["300", "30"], timeout=COUNTED_MS)
    await expect(alice_rows.locator(".board-name")).to_have_text(["alice", "anonymous"])

    # The box says what the server keeps.
    await bob.reload()
    await expect(bob.locator("#privacy")).to_be_checked()


# ---------------------------------------------------------------- the overlay's leaderboard


async def test_the_leaderboard_widget_shows_the_top_five_as_gifts_arrive(
    server: ServerProcess, pages: Pages
) -> None:
    overlay = await open_overlay(pages, server, "&widget=leaderboard")
    await mark_load(overlay)
    widget = overlay.locator("#board-widget")
    rows = widget.locator(".board-row")
    await expect(widget).to_be_visible()
    await expect(widget.locator(".empty")).to_be_visible()
    await expect(rows).to_have_count(0)

    alice = await protocol_client(server, "alice")
    try:
        await give(alice, "lb-a", "corgi")  # 299 coins
        await expect(rows.locator(".board-name")).to_have_text(["alice"], timeout=COUNTED_MS)
        await expect(rows.locator(".board-coins")).to_have_text(["299"])
        await expect(widget.locator(".empty")).to_be_hidden()

        # Six gifters: the widget shows the top five.
        bob = await protocol_client(server, "bob")
        await give(bob, "lb-b", "hand_hearts")  # 100
        await bob.close()
        for user, gift, count in (
            ("gina", "doughnut", 2),  # 60
            ("hugo", "doughnut", 1),  # 30
            ("ines", "finger_heart", 2),  # 10
            ("jon", "rose", 1),  # 1
        ):
            client = await buyer(server, user)
            await give(client, f"lb-{user}", gift, count)
            await client.close()
        await expect(rows.locator(".board-name")).to_have_text(
            ["alice", "bob", "gina", "hugo", "ines"], timeout=COUNTED_MS
        )
        await expect(rows.locator(".board-coins")).to_have_text(["299", "100", "60", "30", "10"])
    finally:
        await alice.close()

    # Only the widget: no alert played, and all of it without a reload.
    await expect(overlay.locator("#alert")).to_be_hidden()
    assert await overlay.evaluate("window.alertsStarted") == []
    await expect(overlay.locator("#goal")).to_be_hidden()
    assert await same_load(overlay)


# ---------------------------------------------------------------- the goal


async def test_a_goal_set_by_the_creator_fills_on_every_page_and_is_celebrated_once(
    server: ServerProcess, pages: Pages
) -> None:
    creator = await open_creator(pages, server, "carol")
    viewer = await open_viewer(pages, server, "alice")
    overlay = await open_overlay(pages, server, "&widget=goal")
    await expect(creator.locator("#goal-none")).to_be_visible()
    await expect(creator.locator("#goal-clear")).to_be_disabled()
    for page in (viewer, overlay):
        await expect(page.locator("#goal")).to_be_hidden()
    await expect(overlay.locator("#board-widget")).to_be_hidden()

    await creator.fill("#goal-title", "New camera")
    await creator.fill("#goal-coins", "50")
    await creator.click("#goal-set")

    await expect(creator.locator("#goal-status")).to_have_text(
        "Goal set: it fills as gifts arrive."
    )
    await expect(creator.locator("#goal-none")).to_be_hidden()
    everywhere = (creator, viewer, overlay)
    for page in everywhere:
        bar = page.locator("#goal")
        await expect(bar).to_be_visible()
        await expect(bar.locator(".goal-title")).to_have_text("New camera")
        await expect(bar.locator(".goal-numbers")).to_have_text("0 / 50 coins")

    # Gifts fill it, on every page, without a reload.
    await tap(viewer, "doughnut")  # 30 coins
    for page in everywhere:
        bar = page.locator("#goal")
        await expect(bar.locator(".goal-numbers")).to_have_text("30 / 50 coins", timeout=COUNTED_MS)
        await expect(bar).to_have_attribute("data-reached", "false")
        assert await bar.locator(".goal-fill").evaluate("(fill) => fill.style.width") == "60%"
    await expect(viewer.locator("#goal-celebration")).to_be_hidden()

    # The gift that reaches it: the room's goal_reached, celebrated.
    await tap(viewer, "doughnut")
    for page in everywhere:
        bar = page.locator("#goal")
        await expect(bar.locator(".goal-numbers")).to_have_text("60 / 50 coins", timeout=COUNTED_MS)
        await expect(bar).to_have_attribute("data-reached", "true")
        await expect(bar.locator(".goal-done")).to_be_visible()
        assert await bar.locator(".goal-fill").evaluate("(fill) => fill.style.width") == "100%"
    await expect(viewer.locator("#goal-celebration")).to_have_text(
        "carol's goal is reached: New camera!"
    )
    await expect(overlay.locator("#goal-celebration")).to_have_text("Goal reached!")
    await expect(creator.locator("#goal-card")).to_have_attribute("data-state", "reached")
    viewer_notes = viewer.locator("#feed .feed-note[data-note=goal]")
    creator_notes = creator.locator("#live .feed-note[data-note=goal]")
    await expect(viewer_notes).to_have_text(["Goal reached: New camera!"])
    await expect(creator_notes).to_have_text(["Goal reached: New camera!"])

    # A gift after it is reached is no second celebration (nor, on this
    # server, progress: a reached goal stays as it was reached). Once the
    # ranking has counted that gift, the goal has been looked at since.
    await tap(viewer, "doughnut")
    await expect(viewer.locator("#leaderboard .board-coins")).to_have_text(
        ["90"], timeout=COUNTED_MS
    )
    await asyncio.sleep(2)
    await expect(viewer_notes).to_have_count(1)
    await expect(creator_notes).to_have_count(1)
    for page in everywhere:
        await expect(page.locator("#goal")).to_have_attribute("data-reached", "true")

    # Cleared by the creator: the bar goes from every page.
    await creator.click("#goal-clear")
    await expect(creator.locator("#goal-status")).to_have_text("Goal cleared.")
    for page in everywhere:
        await expect(page.locator("#goal")).to_be_hidden()
    await expect(creator.locator("#goal-none")).to_be_visible()
    await expect(creator.locator("#goal-clear")).to_be_disabled()


async def test_a_gift_goal_names_its_gift_and_counts_only_that_gift(
    server: ServerProcess, pages: Pages
) -> None:
    creator = await open_creator(pages, server, "carol")
    viewer = await open_viewer(pages, server, "alice")

    # Not sent: a title of spaces is said in the page's words.
    await creator.fill("#goal-title", "   ")
    await creator.check("input[name=goal-kind][value=gift]")
    await expect(creator.locator("#goal-coins")).to_be_hidden()
    await creator.select_option("#goal-gift", "rose")
    await creator.fill("#goal-count", "3")
    await creator.click("#goal-set")
    await expect(creator.locator("#goal-status")).to_have_attribute("data-state", "error")
    await expect(creator.locator("#goal-none")).to_be_visible()

    await creator.fill("#goal-title", "Roses, please")
    await creator.click("#goal-set")

    bar = viewer.locator("#goal")
    await expect(bar.locator(".goal-title")).to_have_text("Roses, please")
    await expect(bar.locator(".goal-numbers")).to_have_text("Rose 0 / 3")
    await expect(bar).to_have_attribute("data-kind", "gift")
    await expect(bar.locator(".goal-picture svg")).to_have_count(1)
    await tap(viewer, "doughnut")  # another gift: not counted
    await tap(viewer, "rose")
    await tap(viewer, "rose")
    for page in (viewer, creator):
        await expect(page.locator("#goal .goal-numbers")).to_have_text(
            "Rose 2 / 3", timeout=COUNTED_MS
        )
    await expect(bar).to_have_attribute("data-reached", "false")


# ---------------------------------------------------------------- the viewer's own sends


class GiftHider:
    """Keeps ``user``'s gift events (and the ends of their streaks) from a page's
    room socket while ``hiding``; the payloads it changed are in ``changed``."""

    def __init__(self, user: str) -> None:
        self.user = user
        self.hiding = True
        self.combos: set[str] = set()
        self.changed: list[str | bytes] = []

    def hides(self, event: dict[str, Any]) -> bool:
        if event.get("type") == "combo_end":
            return event.get("combo") in self.combos
        if not (self.hiding and event.get("type") == "gift" and event.get("sender") == self.user):
            return False
        if event.get("combo"):
            self.combos.add(event["combo"]["id"])
        return True

    def filter(self, payload: str | bytes) -> str | bytes | None:
        """The frame to pass on (None: nothing left of it)."""
        message: dict[str, Any] = json.loads(payload)
        if message.get("type") == "events":
            events = [event for event in message["events"] if not self.hides(event)]
            if len(events) == len(message["events"]):
                return payload
            self.changed.append(payload)
            return json.dumps({**message, "events": events}) if events else None
        if self.hides(message):
            self.changed.append(payload)
            return None
        return payload

    async def route(self, socket: WebSocketRoute) -> None:
        server_side = socket.connect_to_server()

        def relay(payload: str | bytes) -> None:
            passed = self.filter(payload)
            if passed is not None:
                socket.send(passed)

        server_side.on_message(relay)


async def test_the_viewers_own_send_is_marked_shown_when_the_room_shows_it(
    server: ServerProcess, pages: Pages
) -> None:
    hider = GiftHider("bob")
    bob = await pages.open("bob@carol", "about:blank")
    await bob.route_web_socket(re.compile(r"/ws/rooms/carol"), hider.route)
    await bob.goto(f"{server.http}/viewer.html?room=carol&user=bob")
    await expect(bob.locator("#state")).to_have_attribute("data-state", "live")

    # bob's first rose: taken, but the room's event for it never reaches his page.
    request_id = await (await tap(bob, "rose")).get_attribute("data-id")
    assert request_id
    first = bob.locator(f'#sends .send[data-id="{request_id}"]')
    await expect(first.locator(".send-status")).to_have_text("sent · 1 coin")

    # alice's gift under the same request id (ids are each sender's own) is not bob's.
    alice = await protocol_client(server, "alice")
    try:
        await give(alice, request_id, "finger_heart")
    finally:
        await alice.close()
    theirs = bob.locator("#feed .feed-item[data-sender=alice]")
    await expect(theirs).to_contain_text("alice sent Finger Heart")
    # Room events come in order: bob's own, had it come, would have come first.
    assert len(hider.changed) == 1, hider.changed
    await expect(first).not_to_have_attribute("data-shown", "true")
    await expect(first.locator(".send-shown")).to_be_hidden()
    await expect(theirs).not_to_have_attribute("data-own", "true")

    # His next send's event reaches the page: that row says the room showed it.
    hider.hiding = False
    second = await tap(bob, "finger_heart")
    await expect(second).to_have_attribute("data-shown", "true")
    await expect(second.locator(".send-status")).to_have_text("sent · 5 coins")
    await expect(second.locator(".send-shown")).to_have_text("· shown")
    await expect(second.locator(".send-shown")).to_be_visible()
    mine = bob.locator("#feed .feed-item[data-sender=bob]")
    await expect(mine).to_have_count(1)
    await expect(mine).to_have_attribute("data-own", "true")
    await expect(mine).to_have_attribute("data-gift", "finger_heart")
    await expect(first).not_to_have_attribute("data-shown", "true")
    # Played once: one row in the feed per send, and no big show for small gifts.
    await expect(bob.locator("#feed .feed-item")).to_have_count(2)
