"""The demo pages in a real headless Chromium, against a real server.

Each test opens the pages the way people do (a viewer on a laptop, another on
a phone, the streamer's overlay at OBS size) and watches what they show.
Gifts are sent by tapping the page, or, where only the overlay is under
test, by a protocol client. Without Chromium these tests skip (fail under
CI): see ``tests/browser.py``.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.async_api import Browser, Page, async_playwright, expect

from tests.browser import (
    CHROMIUM,
    CHROMIUM_ARGS,
    DESKTOP,
    MISSING,
    OBS,
    PHONE,
    Pages,
    decode_png,
    require_chromium,
)
from tests.client import Api, RoomClient, bearer
from tests.conftest import (
    ServerProcess,
    StartServer,
    has_failed,
    server_environment,
    spawn_server,
)

TRANSPARENT = "rgba(0, 0, 0, 0)"
# Records, in the overlay, the seq of every alert it starts.
RECORD_ALERTS = """() => {
  window.alertsStarted = [];
  const alert = document.querySelector("#alert");
  new MutationObserver(() => {
    const seq = alert.dataset.seq;
    if (seq && window.alertsStarted.at(-1) !== Number(seq)) window.alertsStarted.push(Number(seq));
  }).observe(alert, { attributes: true, attributeFilter: ["data-seq"] });
}"""
# The same, installed by every load of a page that has an overlay's #alert.
RECORD_ALERTS_AT_LOAD = f"""addEventListener("DOMContentLoaded", () => {{
  if (document.querySelector("#alert")) ({RECORD_ALERTS})();
}});"""


# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    require_chromium()
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS
        )
        yield chromium
        await chromium.close()


@pytest.fixture
async def pages(
    browser: Browser, request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[Pages]:
    opened = Pages(browser)
    yield opened
    if has_failed(request):
        shots = await opened.save_screenshots(tmp_path)
        print("pages at the failure:", *shots, sep="\n  ")
        print("console:", *opened.console[-40:], sep="\n  ")
    await opened.close()
    assert not opened.errors, f"uncaught errors in the pages: {opened.errors}"


# ---------------------------------------------------------------- helpers


async def open_viewer(
    pages: Pages, server: ServerProcess, user: str | None, *, phone: bool = False
) -> Page:
    query = "room=carol" + (f"&user={user}" if user else "")
    page = await pages.open(
        user or "anonymous", f"{server.http}/viewer.html?{query}", PHONE if phone else DESKTOP
    )
    await expect(page.locator("#state")).to_have_attribute("data-state", "live")
    return page


async def overlay_url(server: ServerProcess) -> str:
    api = Api(server.http)
    try:
        token = await api.token("carol", role="creator")
        response = await api.http.get("/api/creator/overlay-key", headers=bearer(token))
        response.raise_for_status()
        return server.http + str(response.json()["url"])
    finally:
        await api.aclose()


async def open_overlay(pages: Pages, server: ServerProcess, options: str = "") -> Page:
    name = f"overlay{len(pages.pages)}"
    page = await pages.open(name, await overlay_url(server) + options, OBS)
    await expect(page.locator("body")).to_have_attribute("data-state", "live")
    await page.evaluate(RECORD_ALERTS)
    return page


async def alerts_started(overlay: Page) -> list[int]:
    started: list[int] = await overlay.evaluate("window.alertsStarted")
    return started


async def wallet_coins(server: ServerProcess, user: str) -> int:
    api = Api(server.http)
    try:
        coins: int = (await api.wallet(await api.token(user)))["coins"]
        return coins
    finally:
        await api.aclose()


async def protocol_client(server: ServerProcess, user: str) -> RoomClient:
    api = Api(server.http)
    try:
        return await RoomClient.open(server.ws, "carol", await api.token(user))
    finally:
        await api.aclose()


# ---------------------------------------------------------------- the tests


def test_without_chromium_the_tests_skip_but_fail_under_ci(tmp_path: Path) -> None:
    absent = tmp_path / "no-chromium"
    with pytest.raises(pytest.skip.Exception, match=MISSING):
        require_chromium(absent, environ={})
    with pytest.raises(pytest.fail.Exception, match=MISSING):
        require_chromium(absent, environ={"CI": "true"})
    require_chromium(Path(__file__), environ={"CI": "true"})  # present: nothing happens


async def test_a_gift_reaches_the_other_viewer_and_the_overlay(
    server: ServerProcess, pages: Pages
) -> None:
    overlay = await open_overlay(pages, server)
    alice = await open_viewer(pages, server, "alice")
    bob = await open_viewer(pages, server, "bob", phone=True)
    await expect(bob.locator("#viewers")).to_have_text("3 watching")
    await expect(alice.locator("#balance")).to_have_text("5,000")
    await expect(alice.locator("#gifts button[data-gift=corgi]")).to_contain_text("299")

    await alice.click("#gifts button[data-gift=corgi]")

    sent = alice.locator("#sends .send").first
    await expect(sent).to_have_attribute("data-state", "confirmed")
    await expect(sent).to_contain_text("Corgi x1")
    await expect(alice.locator("#balance")).to_have_text("4,701")
    await expect(bob.locator("#feed .feed-item[data-gift=corgi]")).to_contain_text(
        "alice sent Corgi"
    )
    await expect(overlay.locator("#alert")).to_contain_text("alice sent Corgi")
    await expect(overlay.locator("#alert")).to_contain_text("299 coins")

    # Over the confirmation threshold: asked first; then full screen for the room.
    await alice.click("#gifts button[data-gift=rocket]")
    await expect(alice.locator("#confirm")).to_be_visible()
    await expect(alice.locator("#confirm-text")).to_contain_text("1,999 coins")
    await alice.click("#confirm-send")
    await expect(bob.locator("#bigshow")).to_be_visible()
    await expect(bob.locator("#bigshow")).to_contain_text("alice sent Rocket")
    await expect(alice.locator("#balance")).to_have_text("2,702")
    assert await wallet_coins(server, "alice") == 5000 - 299 - 1999


async def test_a_streak_is_one_counter_that_grows(start_server: StartServer, pages: Pages) -> None:
    server = await start_server(combo_window_ms=2000)
    overlay = await open_overlay(pages, server)
    alice = await open_viewer(pages, server, "alice")
    bob = await open_viewer(pages, server, "bob", phone=True)
    anonymous = await open_viewer(pages, server, None)
    await expect(anonymous.locator("#watch-only")).to_be_visible()
    await expect(anonymous.locator("#gifts")).to_have_class("gift-grid disabled")
    roses = bob.locator("#feed .feed-item[data-gift=rose]")

    await alice.click("#gifts button[data-gift=rose]")
    await expect(roses).to_have_attribute("data-count", "1")
    counter = await roses.element_handle()
    await alice.click("#gifts button[data-gift=rose]")
    await alice.click("#gifts button[data-gift=rose]")
    await alice.click(".batch input[value='10'] + span")
    await alice.click("#gifts button[data-gift=rose]")

    await expect(roses).to_have_attribute("data-count", "13")
    await expect(roses).to_contain_text("alice sent Rose")
    await expect(roses).to_contain_text("x13")
    await expect(roses).to_have_count(1)
    assert await counter.get_attribute("data-count") == "13", "not updated in place"
    streak = overlay.locator("#streaks .streak")
    await expect(streak).to_have_attribute("data-count", "13")
    await expect(streak).to_have_count(1)
    assert await alerts_started(overlay) == [], "a streak must not raise alerts"
    await expect(anonymous.locator("#feed .feed-item[data-gift=rose]")).to_contain_text("x13")
    await expect(alice.locator("#balance")).to_have_text("4,987")

    # The streak lapses: combo_end closes the one counter with its total.
    await expect(roses).to_have_attribute("data-ended", "true", timeout=6000)
    await expect(roses).to_contain_text("x13")
    await expect(roses).to_have_count(1)


async def test_too_few_coins_offers_a_recharge_that_restores_the_balance(
    server: ServerProcess, pages: Pages
) -> None:
    zoe = await open_viewer(pages, server, "zoe", phone=True)
    await expect(zoe.locator("#balance")).to_have_text("0")

    await zoe.click("#gifts button[data-gift=rose]")

    refused = zoe.locator("#sends .send").first
    await expect(refused).to_have_attribute("data-state", "failed")
    await expect(refused).to_contain_text("not enough coins")
    await expect(zoe.locator("#recharge")).to_be_visible()
    await expect(zoe.locator("#recharge-why")).to_contain_text("Not enough coins")
    await expect(zoe.locator("#packages button")).to_have_count(6)

    await zoe.click("#packages button[data-package=coins_65]")

    await expect(zoe.locator("#recharge")).to_be_hidden()
    await expect(zoe.locator("#balance")).to_have_text("65")
    await zoe.click("#gifts button[data-gift=rose]")
    await expect(zoe.locator("#sends .send").first).to_have_attribute("data-state", "confirmed")
    await expect(zoe.locator("#balance")).to_have_text("64")
    assert await wallet_coins(server, "zoe") == 64


async def test_the_overlay_is_transparent_and_plays_bigger_gifts_first(
    server: ServerProcess, pages: Pages
) -> None:
    overlay = await open_overlay(pages, server)
    quick = await open_overlay(pages, server, "&hold=0.2&min=100&sound=1")
    backgrounds = await overlay.evaluate(
        "[document.documentElement, document.body].map((e) => getComputedStyle(e).backgroundColor)"
    )
    assert backgrounds == [TRANSPARENT, TRANSPARENT]
    assert await overlay.evaluate("[innerWidth, innerHeight]") == [1920, 1080]

    alice = await protocol_client(server, "alice")
    try:
        rose = await alice.gift("o-rose", "rose")
        first = await alice.gift("o-corgi-1", "corgi")
        await expect(quick.locator("#alert")).to_have_attribute("data-seq", str(first["seq"]))
        # Both on their way before either is answered.
        await alice.send({"type": "gift", "id": "o-corgi-2", "gift": "corgi"})
        await alice.send({"type": "gift", "id": "o-rocket", "gift": "rocket"})
        second = await alice.reply("o-corgi-2")
        rocket = await alice.reply("o-rocket")
    finally:
        await alice.close()
    assert rose["seq"] < first["seq"] < second["seq"] < rocket["seq"]

    # A screenshot without the page's background is see-through but for the alert.
    await expect(overlay.locator("#alert")).to_have_attribute("data-seq", str(first["seq"]))
    corner = await overlay.screenshot(
        omit_background=True, clip={"x": 0, "y": 0, "width": 24, "height": 24}
    )
    assert decode_png(corner).alphas() == {0}
    card = await overlay.locator(".alert-line").screenshot(
        omit_background=True, animations="disabled"
    )
    assert 255 in decode_png(card).alphas()
    # The rose streak: a counter on the overlay with no minimum...
    await expect(overlay.locator("#streaks .streak")).to_have_count(1)

    # ...none where the minimum is 100 coins; and the rocket, sent after the
    # second corgi, plays before it.
    await expect(quick.locator("#alert")).to_have_attribute("data-seq", str(rocket["seq"]))
    assert await alerts_started(quick) == [first["seq"], rocket["seq"]]
    await expect(quick.locator("#alert")).to_have_attribute("data-seq", str(second["seq"]))
    await expect(quick.locator("#streaks .streak")).to_have_count(0)

    async with httpx.AsyncClient(base_url=server.http) as http:
        chime = await http.get("/sounds/large.wav")
    assert chime.status_code == 200
    assert chime.content[:4] == b"RIFF"


async def test_the_creator_page_shows_earnings_and_regenerates_the_overlay_key(
    server: ServerProcess, pages: Pages
) -> None:
    creator = await pages.open("creator", f"{server.http}/creator.html?user=carol")
    await expect(creator.locator("#state")).to_have_attribute("data-state", "live")
    url = creator.locator("#overlay-url")
    first_url = await overlay_url(server)
    await expect(url).to_have_value(first_url)
    await expect(creator.locator("#diamonds")).to_have_text("0")
    await expect(creator.locator("#by-gift tbody tr.none")).to_have_count(1)

    alice = await protocol_client(server, "alice")
    bob = await protocol_client(server, "bob")
    try:
        await alice.gift("c-corgi", "corgi")
        await alice.gift("c-rose", "rose", 5)
        await bob.gift("c-doughnut", "doughnut", 2)
        await bob.gift("c-rose", "rose", 3)
    finally:
        await alice.close()
        await bob.close()

    await expect(creator.locator("#live .feed-item[data-gift=corgi]")).to_contain_text(
        "alice sent Corgi"
    )
    # Half of each gift's coins, rounded down per gift, once settled:
    # 299 -> 149, 5 -> 2, 60 -> 30, 3 -> 1.
    await expect(creator.locator("#diamonds")).to_have_text("182")
    await expect(creator.locator("#received")).to_have_text("367")
    await expect(creator.locator("#period-diamonds")).to_have_text("182")
    await expect(creator.locator("#stream-diamonds")).to_have_text("182")
    gifts = creator.locator("#by-gift tbody tr")
    await expect(gifts).to_have_count(3)
    await expect(gifts.first).to_have_attribute("data-gift", "corgi")  # most diamonds first
    rose = creator.locator("#by-gift tr[data-gift=rose]")
    await expect(rose).to_have_attribute("data-count", "8")
    await expect(rose).to_have_attribute("data-diamonds", "3")
    supporters = creator.locator("#top-supporters tbody tr")
    await expect(supporters).to_have_count(2)
    await expect(supporters.first).to_have_attribute("data-user", "alice")
    await expect(supporters.first).to_have_attribute("data-coins", "304")
    await expect(creator.locator("#top-supporters tr[data-user=bob]")).to_have_attribute(
        "data-diamonds", "31"
    )
    await expect(creator.locator("#supporters li[data-sender=alice]")).to_contain_text("304")
    await expect(creator.locator("#stream-by-gift tr[data-gift=doughnut]")).to_contain_text("x2")

    # The chart: a bar per day of the week, their sum the week's diamonds.
    chart = creator.locator("#chart")
    await expect(chart).to_have_attribute("data-points", "7")
    await expect(chart).to_have_attribute("data-total", "182")
    await expect(chart.locator("rect.bar:not(.empty-bar)")).to_have_count(1)
    await creator.click("#periods input[value=day] + span")
    await expect(chart).to_have_attribute("data-points", "24")
    await expect(chart).to_have_attribute("data-total", "182")
    await expect(creator.locator("#period-title")).to_have_text("Today")

    await creator.click("#regenerate")
    await creator.click("#regenerate-yes")
    await expect(url).not_to_have_value(first_url)
    assert await url.input_value() == await overlay_url(server)


async def test_the_test_alert_button_plays_on_the_overlay_and_not_in_the_room(
    server: ServerProcess, pages: Pages
) -> None:
    overlay = await open_overlay(pages, server, "&hold=0.3&min=100000")
    alice = await open_viewer(pages, server, "alice")
    creator = await pages.open("creator", f"{server.http}/creator.html?user=carol")
    await expect(creator.locator("#state")).to_have_attribute("data-state", "live")

    await creator.click("#test-alert")

    alert = overlay.locator("#alert")
    # Shown whatever the overlay's minimum, marked as a test, outside the sequence.
    await expect(alert).to_have_attribute("data-test", "true")
    await expect(alert).to_have_attribute("data-seq", "0")
    await expect(alert).to_contain_text("Test alert sent Money Gun")
    await expect(creator.locator("#overlay-status")).to_contain_text("Test alert sent")
    await expect(alert).to_be_hidden()
    # The viewers' room shows nothing of it.
    await expect(alice.locator("#feed .feed-item")).to_have_count(0)
    await expect(alice.locator("#bigshow")).to_be_hidden()


async def test_the_index_links_every_page(server: ServerProcess, pages: Pages) -> None:
    index = await pages.open("index", f"{server.http}/")
    links = index.locator("main a")
    await expect(index.locator("#overlay-link")).to_have_attribute("href", re.compile("key="))
    hrefs = [await link.get_attribute("href") or "" for link in await links.all()]
    for page in ("viewer.html?room=carol&user=alice", "creator.html?user=carol"):
        assert page in hrefs
    assert any(href.startswith("overlay.html?room=carol&key=") for href in hrefs)


async def test_the_viewer_page_recovers_after_a_server_restart(
    server: ServerProcess,
    pages: Pages,
    redis_url: str,
    key_prefix: str,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    overlay = await open_overlay(pages, server, "&hold=0.2")
    alice = await open_viewer(pages, server, "alice")
    state = alice.locator("#state")

    rose = await protocol_client(server, "bob")
    try:
        before = await rose.gift("r-rose", "rose")
    finally:
        await rose.close()
    await expect(alice.locator("#feed .feed-item[data-sender=bob]")).to_have_count(1)

    await server.stop()

    await expect(state).to_have_attribute("data-state", "offline")
    await expect(state).to_contain_text("reconnecting")
    # Kept away until bob's gift below is in the room's history.
    await alice.context.set_offline(True)
    await alice.click("#gifts button[data-gift=corgi]")
    waiting = alice.locator("#sends .send").first
    await expect(waiting).to_have_attribute("data-state", "pending")

    port = urlsplit(server.http).port
    arguments = ["serve", "--port", str(port), "--redis-url", redis_url, "--key-prefix", key_prefix]
    restarted = await spawn_server(arguments, server_environment(tmp_path / "restarted", {}))
    try:
        await restarted.wait_listening()
        await restarted.wait_ready()
        bob = await protocol_client(restarted, "bob")
        try:
            missed = await bob.gift("r-corgi", "corgi")
        finally:
            await bob.close()
        assert missed["seq"] > before["seq"]
        await alice.context.set_offline(False)

        # The page comes back by itself, shows what it missed, once, and
        # sends the gift that was waiting.
        await expect(state).to_have_attribute("data-state", "live", timeout=20_000)
        await expect(alice.locator("#notice")).to_contain_text("caught up")
        bobs = alice.locator("#feed .feed-item[data-sender=bob]")
        await expect(bobs.and_(alice.locator("[data-gift=corgi]"))).to_have_count(1)
        await expect(waiting).to_have_attribute("data-state", "confirmed")
        await expect(alice.locator("#balance")).to_have_text("4,701")
        assert await wallet_coins(restarted, "alice") == 4701

        await expect(overlay.locator("body")).to_have_attribute(
            "data-state", "live", timeout=20_000
        )
        await alice.click("#gifts button[data-gift=money_gun]")
        await expect(overlay.locator("#alert")).to_contain_text("alice sent Money Gun")
        started = await alerts_started(overlay)
        assert len(started) == len(set(started)), f"an alert played twice: {started}"
        # Nothing came twice: bob's two gifts, alice's two, in the room's order.
        await expect(alice.locator("#feed .feed-item[data-gift=money_gun]")).to_have_count(1)
        assert await bobs.count() == 2
        seqs = await alice.locator("#feed .feed-item").evaluate_all(
            "(rows) => rows.map((row) => Number(row.dataset.seq))"
        )
        assert seqs == sorted(set(seqs), reverse=True), seqs
    finally:
        await restarted.stop()
        if has_failed(request):
            print("----- the restarted server -----", restarted.output(), sep="\n")


async def test_the_viewer_count_follows_who_comes_and_goes(
    server: ServerProcess, pages: Pages
) -> None:
    alice = await open_viewer(pages, server, "alice")
    await expect(alice.locator("#viewers")).to_have_text("1 watching")

    bob = await protocol_client(server, "bob")
    try:
        await expect(alice.locator("#viewers")).to_have_text("2 watching", timeout=10_000)
    finally:
        await bob.close()
    await expect(alice.locator("#viewers")).to_have_text("1 watching", timeout=10_000)


async def test_the_overlay_shown_again_plays_what_it_missed_and_nothing_twice(
    server: ServerProcess, pages: Pages
) -> None:
    overlay = await open_overlay(pages, server, "&hold=0.2")
    address = overlay.url
    # From the next load on, alerts are recorded from the start.
    await overlay.context.add_init_script(RECORD_ALERTS_AT_LOAD)
    alert = overlay.locator("#alert")
    alice = await protocol_client(server, "alice")
    try:
        corgi = await alice.gift("h-corgi", "corgi")
        await expect(alert).to_have_attribute("data-seq", str(corgi["seq"]))

        # OBS hides the source (it unloads the page)...
        await overlay.goto("about:blank")
        gun = await alice.gift("h-gun", "money_gun")
        # ...and shows it again: the gift sent meanwhile plays, the one shown does not.
        await overlay.goto(address)
        await expect(alert).to_have_attribute("data-seq", str(gun["seq"]))
        await expect(alert).to_be_hidden()
        assert await alerts_started(overlay) == [gun["seq"]]

        # Reloaded with nothing new: nothing plays; the next gift does.
        await overlay.reload()
        await expect(overlay.locator("body")).to_have_attribute("data-state", "live")
        rocket = await alice.gift("h-rocket", "rocket")
        await expect(alert).to_have_attribute("data-seq", str(rocket["seq"]))
        await expect(alert).to_be_hidden()
        assert await alerts_started(overlay) == [rocket["seq"]]
    finally:
        await alice.close()
