"""The payer's side of the viewer page, in a real Chromium: "My coins" and
the limits on a send.

The sheet lists the wallet's history a page at a time and sets the viewer's
own spending limits; the page says above the gifts what those limits still
allow. A send is refused when it crosses a limit (the page says what is
left), when it is worth more than the server lets a send be without the
user's confirmation (the page asks, then sends it again with it), and when
it is worth more than any send may be. The demo server's alice holds 5,000
coins and carol is live. Without Chromium these tests skip (fail under CI).
"""

from __future__ import annotations

import json
from typing import Any

from playwright.async_api import Page, WebSocket, expect

from tests.browser import Pages
from tests.conftest import ServerProcess, StartServer
from tests.test_pages import browser, open_viewer, pages, protocol_client, wallet_coins

__all__ = ["browser", "pages"]  # fixtures, used by name

MINUS = "\u2212"


async def recording_viewer(
    pages: Pages, server: ServerProcess, user: str, options: str = ""
) -> tuple[Page, list[dict[str, Any]]]:
    """A viewer page, and the `gift` frames its room socket sends, as they go."""
    sent: list[dict[str, Any]] = []

    def record(payload: str | bytes) -> None:
        message = json.loads(payload)
        if message.get("type") == "gift":
            sent.append(message)

    def watch(socket: WebSocket) -> None:
        socket.on("framesent", record)

    page = await pages.open(f"{user}@carol", "about:blank")
    page.on("websocket", watch)
    await page.goto(f"{server.http}/viewer.html?room=carol&user={user}{options}")
    await expect(page.locator("#state")).to_have_attribute("data-state", "live")
    return page, sent


async def tap(page: Page, gift: str) -> None:
    """Taps a gift and waits for its row to say how it went."""
    rows = page.locator("#sends .send")
    before = await rows.count()
    await page.click(f"#gifts button[data-gift={gift}]")
    await expect(rows).to_have_count(min(before + 1, 6))
    await expect(rows.first).not_to_have_attribute("data-state", "pending")


# ---------------------------------------------------------------- history


async def test_my_coins_lists_the_history_newest_first_a_page_at_a_time(
    server: ServerProcess, pages: Pages
) -> None:
    alice = await protocol_client(server, "alice")
    try:
        for request_id, gift, count in (("h-1", "rose", 5), ("h-2", "doughnut", 1)):
            assert (await alice.gift(request_id, gift, count))["type"] == "ack"
        assert (await alice.gift("h-3", "corgi"))["balance"] == 4666
    finally:
        await alice.close()
    anonymous = await open_viewer(pages, server, None)
    await expect(anonymous.locator("#coins-open")).to_be_hidden()
    page = await open_viewer(pages, server, "alice", options="&rows=3")
    await expect(page.locator("#balance")).to_have_text("4,666")

    await page.click("#coins-open")

    rows = page.locator("#history .history-row")
    await expect(rows).to_have_count(3)
    await expect(rows.locator(".history-what")).to_have_text(
        ["Corgi x1 to carol", "Doughnut x1 to carol", "Rose x5 to carol"]
    )
    await expect(rows.locator(".history-amount")).to_have_text(
        [f"{MINUS}299", f"{MINUS}30", f"{MINUS}5"]
    )
    await expect(rows.locator(".history-balance")).to_have_text(["4,666", "4,965", "4,995"])
    more = page.locator("#history-more")
    await expect(more).to_be_visible()

    await more.click()

    await expect(rows).to_have_count(4)
    promo = rows.nth(3)
    await expect(promo).to_have_attribute("data-kind", "promo")
    await expect(promo.locator(".history-what")).to_have_text("Promotional coins")
    await expect(promo.locator(".history-amount")).to_have_text("+5,000")
    await expect(promo.locator(".history-balance")).to_have_text("5,000")
    await expect(more).to_be_hidden()
    ids = await rows.evaluate_all("(rows) => rows.map((row) => row.dataset.id)")
    assert len(set(ids)) == 4, ids

    # Closed, a gift from the page, opened again: the first page afresh.
    await page.click("#coins button[value=close]")
    await tap(page, "rose")
    await expect(page.locator("#sends .send").first).to_have_attribute("data-state", "confirmed")
    await page.click("#coins-open")
    await expect(rows).to_have_count(3)
    await expect(rows.first.locator(".history-what")).to_have_text("Rose x1 to carol")
    await expect(rows.first.locator(".history-balance")).to_have_text("4,665")
    await expect(rows.nth(2).locator(".history-what")).to_have_text("Doughnut x1 to carol")
    await expect(more).to_be_visible()


# ---------------------------------------------------------------- spending limits


async def test_a_daily_limit_set_in_the_page_refuses_the_gift_that_would_cross_it(
    server: ServerProcess, pages: Pages
) -> None:
    page = await open_viewer(pages, server, "alice")
    line = page.locator("#budget-line")
    daily = page.locator("#budget tr[data-window=daily]")
    await expect(line).to_be_hidden()
    await page.click("#coins-open")
    await expect(daily.locator(".budget-limit")).to_have_text("none")
    await expect(page.locator("#budget-rule")).to_contain_text("raises apply after 24 hours")

    await page.fill("#budget-form input[name=daily]", "100")
    await page.click("#budget-save")

    await expect(page.locator("#budget-status")).to_have_text("Saved: your limits apply now.")
    await expect(daily.locator(".budget-limit")).to_have_text("100")
    await expect(daily.locator(".budget-left")).to_have_text("100")
    await expect(page.locator("#budget tr[data-window=weekly] .budget-limit")).to_have_text("none")
    await page.click("#coins button[value=close]")
    await expect(line).to_have_text("100 coins left today")

    # Up to the limit: what is left is read again after each ack.
    for _ in range(3):
        await tap(page, "doughnut")
        await expect(page.locator("#sends .send").first).to_have_attribute(
            "data-state", "confirmed"
        )
    await expect(line).to_have_text("10 coins left today")

    # The gift that would cross it is refused, and the page says what is left.
    await tap(page, "doughnut")
    refused = page.locator("#sends .send").first
    await expect(refused).to_have_attribute("data-code", "budget_exceeded")
    await expect(refused.locator(".send-status")).to_have_text("not sent: over your limit")
    await expect(page.locator("#notice")).to_have_text(
        "Doughnut x1 is over your spending limit: 10 coins left today."
    )
    await expect(page.locator("#balance")).to_have_text("4,910")
    assert await wallet_coins(server, "alice") == 4910
    await tap(page, "finger_heart")
    await expect(page.locator("#sends .send").first).to_have_attribute("data-state", "confirmed")
    await expect(line).to_have_text("5 coins left today")
    await expect(line).to_have_attribute("data-remaining", "5")

    # A raise waits for its cooling-off, and says when it applies.
    await page.click("#coins-open")
    await expect(daily.locator(".budget-spent")).to_have_text("95")
    await expect(page.locator("#budget-form input[name=daily]")).to_have_value("100")
    await page.fill("#budget-form input[name=daily]", "500")
    await page.click("#budget-save")
    await expect(page.locator("#budget-status")).to_contain_text(
        "Saved. A raise applies after 24 hours"
    )
    pending = page.locator("#budget-pending li")
    await expect(pending).to_have_count(1)
    await expect(pending).to_have_attribute("data-limit", "500")
    await expect(pending).to_contain_text("A daily limit of 500 coins from")
    await expect(daily.locator(".budget-limit")).to_have_text("100")
    await expect(page.locator("#budget-form input[name=daily]")).to_have_value("500")
    await expect(line).to_have_text("5 coins left today")


# ---------------------------------------------------------------- confirmations


async def test_a_rocket_asks_first_and_is_sent_only_when_confirmed(
    server: ServerProcess, pages: Pages
) -> None:
    page, sent = await recording_viewer(pages, server, "alice")
    dialog = page.locator("#confirm")

    await page.click("#gifts button[data-gift=rocket]")
    await expect(dialog).to_be_visible()
    await expect(page.locator("#confirm-text")).to_have_text("Send Rocket x1 for 1,999 coins?")
    await page.click("#confirm button[value=cancel]")
    await expect(dialog).to_be_hidden()
    await expect(page.locator("#sends .send")).to_have_count(0)
    assert await wallet_coins(server, "alice") == 5000

    await page.click("#gifts button[data-gift=rocket]")
    await expect(dialog).to_be_visible()
    await page.click("#confirm-send")

    row = page.locator("#sends .send")
    await expect(row).to_have_count(1)
    await expect(row).to_have_attribute("data-state", "confirmed")
    await expect(page.locator("#balance")).to_have_text("3,001")
    assert [(frame["gift"], frame.get("confirm")) for frame in sent] == [("rocket", True)]
    assert await wallet_coins(server, "alice") == 3001


async def test_a_confirmation_the_server_wants_is_asked_for_and_the_gift_sent_again(
    start_server: StartServer, pages: Pages
) -> None:
    server = await start_server(confirm_above_coins=10)
    # The page thinks nothing under 100,000 coins needs asking.
    page, sent = await recording_viewer(pages, server, "alice", "&confirm=100000")

    await page.click("#gifts button[data-gift=doughnut]")

    row = page.locator("#sends .send").first
    await expect(row).to_have_attribute("data-code", "confirm_required")
    await expect(page.locator("#confirm")).to_be_visible()
    await expect(page.locator("#confirm-text")).to_have_text("Send Doughnut x1 for 30 coins?")
    await expect(row.locator(".send-status")).to_have_text("waiting for your answer…")
    assert [(frame["gift"], "confirm" in frame) for frame in sent] == [("doughnut", False)]
    assert await wallet_coins(server, "alice") == 5000

    await page.click("#confirm-send")

    await expect(row).to_have_attribute("data-state", "confirmed")
    await expect(row).not_to_have_attribute("data-code", "confirm_required")
    await expect(page.locator("#sends .send")).to_have_count(1)
    await expect(page.locator("#balance")).to_have_text("4,970")
    first, second = sent
    assert (second["gift"], second["confirm"]) == ("doughnut", True)
    assert second["id"] != first["id"]
    assert await wallet_coins(server, "alice") == 4970

    # Having heard the server's threshold, the page asks first; no is no.
    await page.click("#gifts button[data-gift=doughnut]")
    await expect(page.locator("#confirm")).to_be_visible()
    await page.click("#confirm button[value=cancel]")
    await expect(page.locator("#confirm")).to_be_hidden()
    await expect(page.locator("#sends .send")).to_have_count(1)
    assert len(sent) == 2
    assert await wallet_coins(server, "alice") == 4970


async def test_a_send_worth_more_than_any_send_may_be_says_the_limit(
    start_server: StartServer, pages: Pages
) -> None:
    server = await start_server(max_send_coins=1000)
    page = await open_viewer(pages, server, "alice")

    await page.click("#gifts button[data-gift=rocket]")
    await page.click("#confirm-send")

    row = page.locator("#sends .send").first
    await expect(row).to_have_attribute("data-code", "send_limit_exceeded")
    await expect(row.locator(".send-status")).to_have_text("not sent: too much for one send")
    await expect(page.locator("#notice")).to_have_text(
        "One send may be worth at most 1,000 coins; Rocket x1 is 1,999 coins."
    )
    await expect(page.locator("#balance")).to_have_text("5,000")
    assert await wallet_coins(server, "alice") == 5000
