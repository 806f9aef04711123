"""The demo pages in a real headless Chromium, against a real server.

Each test opens the pages the way people do (a viewer on a laptop, another on
a phone, the streamer's overlay at OBS size) and watches what they show.
Gifts are sent by tapping the page, or, where only the overlay is under
test, by a protocol client. Without Chromium these tests skip (fail under
CI): see ``tests/browser.py``.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.async_api import Browser, Page, Request, Route, async_playwright, expect
from redis.asyncio import Redis

from server.money.creators import ADULT, CACHE_SECONDS, CreatorProfile, Creators, Eligibility
from server.money.wallet import Wallets
from server.settings import Settings
from server.store.scripts import Scripts
from tests.browser import (
    CHROMIUM,
    CHROMIUM_ARGS,
    DESKTOP,
    MISSING,
    OBS,
    PHONE,
    Motion,
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
# Everything in a page that moves, or would move once shown: each element's
# (and ::before's, ::after's) animations whose keyframes change anything but
# opacity or that never end, and its transitions of position or size.
# Fades are not movement; a page honouring reduced motion lists nothing.
MOVING = """() => {
  const animated = new Map();
  const collect = (rules) => {
    for (const rule of rules) {
      if (rule instanceof CSSKeyframesRule) {
        const properties = new Set();
        for (const frame of rule.cssRules) {
          for (let i = 0; i < frame.style.length; i += 1) properties.add(frame.style[i]);
        }
        animated.set(rule.name, [...properties]);
      } else if (rule.cssRules) {
        collect(rule.cssRules);
      }
    }
  };
  for (const sheet of document.styleSheets) collect(sheet.cssRules);
  const moves =
    /^(all|transform|translate|rotate|scale|inset|top|left|right|bottom|width|height|margin.*)$/;
  const found = [];
  for (const element of document.querySelectorAll("*")) {
    const what = element.tagName.toLowerCase() + (element.id ? "#" + element.id : "") +
      [...element.classList].map((name) => "." + name).join("");
    for (const pseudo of [null, "::before", "::after"]) {
      const style = getComputedStyle(element, pseudo);
      const names = style.animationName.split(", ");
      const counts = style.animationIterationCount.split(", ");
      names.forEach((name, i) => {
        if (name === "none") return;
        const properties = animated.get(name) || ["(no keyframes)"];
        const endless = counts[i % counts.length] === "infinite";
        if (endless || properties.some((property) => property !== "opacity")) {
          found.push(`${what}${pseudo || ""}: ${name}`);
        }
      });
      const durations = style.transitionDuration.split(", ");
      style.transitionProperty.split(", ").forEach((property, i) => {
        if (moves.test(property) && parseFloat(durations[i % durations.length]) > 0) {
          found.push(`${what}${pseudo || ""}: transition of ${property}`);
        }
      });
    }
  }
  return found;
}"""
# A count that meets its noun in the plural when it is one.
ONE_PLURAL = re.compile(
    r"(?<![\d.,])1 (?:[a-z]+ ){0,2}(coins|diamonds|gifts|followers|alerts|viewers|people|events)\b"
)
# Every word a page shows or says: its text, and its titles and labels.
WORDS = """() => [
  document.body.innerText,
  ...[...document.querySelectorAll("[title], [aria-label]")].flatMap(
    (element) => [element.getAttribute("title"), element.getAttribute("aria-label")]
  ),
  ...[...document.querySelectorAll("svg title")].map((title) => title.textContent),
].filter(Boolean).join("\\n")"""


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
    pages: Pages,
    server: ServerProcess,
    user: str | None,
    *,
    phone: bool = False,
    room: str = "carol",
    options: str = "",
    reduced_motion: Motion | None = None,
) -> Page:
    query = f"room={room}" + (f"&user={user}" if user else "") + options
    name = f"{user or 'anonymous'}@{room}"
    page = await pages.open(
        name,
        f"{server.http}/viewer.html?{query}",
        PHONE if phone else DESKTOP,
        reduced_motion=reduced_motion,
    )
    await expect(page.locator("#state")).to_have_attribute("data-state", "live")
    return page


async def open_creator(pages: Pages, server: ServerProcess, user: str) -> Page:
    page = await pages.open(f"creator {user}", f"{server.http}/creator.html?user={user}")
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


async def open_overlay(
    pages: Pages,
    server: ServerProcess,
    options: str = "",
    *,
    reduced_motion: Motion | None = None,
    beside: str | None = None,
) -> Page:
    name = f"overlay{len(pages.pages)}"
    url = await overlay_url(server) + options
    page = await pages.open(name, url, OBS, reduced_motion=reduced_motion, beside=beside)
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


async def moving(page: Page) -> list[str]:
    found: list[str] = await page.evaluate(MOVING)
    return found


async def words(page: Page) -> str:
    text: str = await page.evaluate(WORDS)
    return text


async def save_creator(
    redis: Redis, server: ServerProcess, creator: str, *, gifting: bool, followers: int
) -> None:
    """Changes a creator's profile, and waits until the server's cache of it has expired."""
    assert server.key_prefix is not None
    profile = CreatorProfile(creator, gifting, followers, age=ADULT)
    await Creators(redis, server.key_prefix, Eligibility(1000)).save(profile)
    await asyncio.sleep(CACHE_SECONDS + 0.3)


async def grant(redis: Redis, server: ServerProcess, user: str, coins: int) -> None:
    assert server.key_prefix is not None
    wallets = Wallets(redis, Scripts.register(redis), Settings(key_prefix=server.key_prefix))
    await wallets.grant_coins(user, coins, reason="page-test", now_ms=int(time.time() * 1000))


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
    await expect(refused).to_have_attribute("data-code", "insufficient_coins")
    await expect(zoe.locator("#recharge")).to_be_visible()
    await expect(zoe.locator("#recharge-why")).to_have_text(
        "Not enough coins for Rose x1: it costs 1 coin and you have 0."
    )
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
        await alice.send({"type": "gift", "id": "o-rocket", "gift": "rocket", "confirm": True})
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
    # Half of each gift's coins, in order, the halves carried (docs/money.md):
    # 299 -> 149 carrying a half, 5 -> 3, 60 -> 30, 3 -> 1 carrying a half.
    await expect(creator.locator("#diamonds")).to_have_text("183")
    await expect(creator.locator("#received")).to_have_text("367 coins")
    await expect(creator.locator("#earned")).to_have_text("183 diamonds")
    await expect(creator.locator("#period-diamonds")).to_have_text("183")
    await expect(creator.locator("#stream-diamonds")).to_have_text("183")
    gifts = creator.locator("#by-gift tbody tr")
    await expect(gifts).to_have_count(3)
    await expect(gifts.first).to_have_attribute("data-gift", "corgi")  # most diamonds first
    rose = creator.locator("#by-gift tr[data-gift=rose]")
    await expect(rose).to_have_attribute("data-count", "8")
    await expect(rose).to_have_attribute("data-diamonds", "4")
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
    await expect(chart).to_have_attribute("data-total", "183")
    await expect(chart.locator("rect.bar:not(.empty-bar)")).to_have_count(1)
    await creator.click("#periods input[value=day] + span")
    await expect(chart).to_have_attribute("data-points", "24")
    await expect(chart).to_have_attribute("data-total", "183")
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
    # The overlay is in another browser (as in OBS): the page says it was sent,
    # and nothing it cannot know (that it shows now, or waits).
    status = creator.locator("#test-alert-status")
    await expect(status).to_have_attribute("data-state", "sent")
    await expect(status).to_contain_text("Test alert sent (Money Gun)")
    await expect(alert).to_be_hidden()
    await expect(status).to_have_attribute("data-state", "sent")
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
        rocket = await alice.gift("h-rocket", "rocket", confirm=True)
        await expect(alert).to_have_attribute("data-seq", str(rocket["seq"]))
        await expect(alert).to_be_hidden()
        assert await alerts_started(overlay) == [rocket["seq"]]
    finally:
        await alice.close()


# ---------------------------------------------------------------- a newcomer's first hour


async def test_a_room_whose_creator_takes_no_gifts_says_why_and_disables_them(
    server: ServerProcess, pages: Pages
) -> None:
    # dave has switched gifting off and has 350 followers of the 1,000 needed.
    dave = await open_viewer(pages, server, "alice", room="dave")
    await expect(dave.locator("body")).to_have_attribute("data-gifts", "off")
    off = dave.locator("#gifts-off")
    await expect(off).to_be_visible()
    await expect(off.locator(".gifts-off-title")).to_have_text("dave isn't taking gifts right now")
    await expect(off.locator(".gifts-off-why")).to_have_text(
        "dave has switched gifts off and needs more followers before they can receive gifts."
    )
    await expect(off).to_have_attribute("data-reasons", "gifting_off followers_below_minimum")
    await expect(dave.locator("#gifts button")).to_have_count(10)
    await expect(dave.locator("#gifts button:enabled")).to_have_count(0)
    await dave.locator("#gifts button[data-gift=rose]").click(force=True)
    await expect(dave.locator("#sends .send")).to_have_count(0)

    # A room with no creator behind it says so in its own words.
    nobody = await open_viewer(pages, server, "bob", room="zed")
    await expect(nobody.locator("#gifts-off .gifts-off-why")).to_have_text(
        "zed hasn't set up gifts as a creator."
    )

    # carol takes gifts: nothing is said and every gift can be sent.
    carol = await open_viewer(pages, server, "alice")
    await expect(carol.locator("body")).to_have_attribute("data-gifts", "on")
    await expect(carol.locator("#gifts-off")).to_be_hidden()
    await expect(carol.locator("#gifts button:enabled")).to_have_count(10)
    assert await wallet_coins(server, "alice") == 5000


async def test_gifts_switched_off_mid_stream_close_the_panel_with_one_message(
    server: ServerProcess, pages: Pages, redis: Redis
) -> None:
    alice = await open_viewer(pages, server, "alice")
    await expect(alice.locator("body")).to_have_attribute("data-gifts", "on")
    await save_creator(redis, server, "carol", gifting=False, followers=12_400)

    await alice.click("#gifts button[data-gift=rose]")

    refused = alice.locator("#sends .send").first
    await expect(refused).to_have_attribute("data-state", "failed")
    await expect(refused).to_have_attribute("data-code", "gifting_off")
    # The panel explains; the row only says that this gift was not sent.
    await expect(refused.locator(".send-status")).to_have_text("not sent")
    off = alice.locator("#gifts-off")
    await expect(off.locator(".gifts-off-title")).to_have_text("carol isn't taking gifts right now")
    await expect(off.locator(".gifts-off-why")).to_have_text("carol has switched gifts off.")
    await expect(alice.locator("#gifts button:enabled")).to_have_count(0)
    text = await alice.evaluate("document.body.innerText")
    assert text.count("taking gifts") == 1, text
    assert "does not accept" not in text, "the server's words are shown as well as the page's"
    await expect(alice.locator("#balance")).to_have_text("5,000")


async def test_too_few_coins_is_said_once(server: ServerProcess, pages: Pages) -> None:
    bob = await open_viewer(pages, server, "bob", options="&confirm=100000")
    await expect(bob.locator("#balance")).to_have_text("500")

    await bob.click("#gifts button[data-gift=rocket]")
    # The page was told not to ask (confirm=100000); the server asks for
    # the large send's confirmation before it looks at the coins.
    await expect(bob.locator("#confirm-text")).to_have_text("Send Rocket x1 for 1,999 coins?")
    await bob.click("#confirm-send")

    refused = bob.locator("#sends .send").first
    await expect(refused).to_have_attribute("data-state", "failed")
    await expect(refused.locator(".send-status")).to_have_text("not sent")
    await expect(bob.locator("#recharge")).to_be_visible()
    await expect(bob.locator("#recharge-why")).to_have_text(
        "Not enough coins for Rocket x1: it costs 1,999 coins and you have 500."
    )
    text = (await bob.evaluate("document.body.innerText")).lower()
    assert text.count("not enough coins") == 1, text
    assert "held" not in text, "the server's words are shown as well as the page's"

    # Closed without buying: still one account of it, and nothing was paid.
    await bob.click("#recharge button[value=close]")
    await expect(bob.locator("#recharge")).to_be_hidden()
    await expect(refused.locator(".send-status")).to_have_text("not sent")
    assert await wallet_coins(server, "bob") == 500


async def test_the_creator_page_says_whether_gifting_is_on_and_why(
    server: ServerProcess, pages: Pages, redis: Redis
) -> None:
    dave = await open_creator(pages, server, "dave")
    card = dave.locator("#gifting")
    await expect(card).to_have_attribute("data-state", "off")
    await expect(dave.locator("#gifting-state")).to_have_text("Off")
    await expect(dave.locator("#gifting-why li")).to_have_text(
        ["switched off", "350 of the 1,000 followers needed"]
    )
    await expect(card).to_have_attribute("data-reasons", "gifting_off followers_below_minimum")

    carol = await open_creator(pages, server, "carol")
    await expect(carol.locator("#gifting")).to_have_attribute("data-state", "on")
    await expect(carol.locator("#gifting-state")).to_have_text("On")
    await expect(carol.locator("#gifting-why li")).to_have_text(
        ["viewers can send you gifts", "12,400 followers"]
    )

    # Switched on, but too few followers: still off, for that reason alone.
    await save_creator(redis, server, "dave", gifting=True, followers=999)
    await dave.reload()
    await expect(dave.locator("#gifting-why li")).to_have_text(
        ["999 of the 1,000 followers needed"]
    )
    await expect(card).to_have_attribute("data-state", "off")


async def test_one_coin_is_one_coin_everywhere(
    server: ServerProcess, pages: Pages, redis: Redis
) -> None:
    await grant(redis, server, "penny", 2)
    creator = await open_creator(pages, server, "carol")
    penny = await open_viewer(pages, server, "penny", options="&confirm=0")

    helper = await penny.evaluate("""async () => {
      const { plural } = await import("/common.js");
      return [plural(1, "coin"), plural(0, "coin"), plural(2, "gift"), plural(1000, "diamond"),
              plural(1, "person", "people"), plural(3, "person", "people")];
    }""")
    assert helper == ["1 coin", "0 coins", "2 gifts", "1,000 diamonds", "1 person", "3 people"]

    rose = penny.locator("#gifts button[data-gift=rose]")
    await expect(rose).to_have_attribute("title", "Rose: 1 coin (small)")
    await expect(penny.locator(".coin-badge")).to_have_attribute("title", "you have 2 coins")
    await rose.click()
    await expect(penny.locator("#confirm-text")).to_have_text("Send Rose x1 for 1 coin?")
    await penny.click("#confirm-send")
    await expect(penny.locator("#sends .send .send-status").first).to_have_text("sent · 1 coin")
    await expect(penny.locator(".coin-badge")).to_have_attribute("title", "you have 1 coin")
    await expect(penny.locator("#viewers")).to_have_attribute(
        "title", re.compile(r"^2 people watching")
    )

    await expect(creator.locator("#live .feed-item .coins")).to_have_text("1 coin")
    await expect(creator.locator("#period-gifts")).to_have_text("1 gift")
    await expect(creator.locator("#period-coins")).to_have_text("1 coin")
    await expect(creator.locator("#received")).to_have_text("1 coin")
    await expect(creator.locator("#stream-note")).to_contain_text("1 gift · 1 coin")

    await penny.click("#recharge-open")
    await expect(penny.locator("#packages button")).to_have_count(6)
    await expect(penny.locator("#packages button[data-package=coins_65]")).to_have_attribute(
        "aria-label", "65 coins for 0.99 USD"
    )
    for page in (penny, creator):
        said = await words(page)
        assert "1 coin" in said
        assert not ONE_PLURAL.findall(said), ONE_PLURAL.findall(said)


async def test_a_test_alert_waiting_behind_a_gift_says_queued_until_it_plays(
    server: ServerProcess, pages: Pages
) -> None:
    creator = await open_creator(pages, server, "carol")
    # In the creator's browser, as when opened from the page's "Open" button.
    overlay = await open_overlay(pages, server, "&hold=0.5", beside="creator carol")
    alert = overlay.locator("#alert")
    alice = await protocol_client(server, "alice")
    try:
        jet = await alice.gift("q-jet", "jet", confirm=True)
    finally:
        await alice.close()
    await expect(alert).to_have_attribute("data-seq", str(jet["seq"]))

    await creator.click("#test-alert")

    note = overlay.locator("#test-status")
    status = creator.locator("#test-alert-status")
    await expect(note).to_have_text("Test alert queued: 1 alert ahead")
    await expect(status).to_have_attribute("data-state", "queued")
    await expect(status).to_have_text(
        "Test alert (Money Gun) queued on your overlay: 1 alert ahead of it."
    )
    # True while said: the jet is still on stage.
    assert await alert.get_attribute("data-seq") == str(jet["seq"])
    assert await alert.get_attribute("data-test") == "false"

    await expect(alert).to_have_attribute("data-test", "true", timeout=10_000)
    await expect(status).to_have_attribute("data-state", "showing")
    await expect(status).to_contain_text("showing the test alert (Money Gun) now")
    await expect(note).to_be_hidden()
    await expect(status).to_have_attribute("data-state", "shown", timeout=10_000)
    assert await alerts_started(overlay) == [jet["seq"], 0]


async def test_reduced_motion_shows_every_gift_still_and_whole(
    server: ServerProcess, pages: Pages
) -> None:
    still = await open_overlay(pages, server, "&hold=0.5", reduced_motion="reduce")
    lively = await open_overlay(pages, server, "&hold=0.5")
    alice = await open_viewer(
        pages, server, "alice", options="&confirm=100000", reduced_motion="reduce"
    )
    bob = await open_viewer(pages, server, "bob", phone=True)
    for _ in range(2):
        await alice.click("#gifts button[data-gift=rose]")
    await expect(alice.locator("#feed .feed-item[data-gift=rose]")).to_have_attribute(
        "data-count", "2"
    )

    await alice.click("#gifts button[data-gift=jet]")
    await alice.click("#confirm-send")  # the server asks for the large send's confirmation

    # The viewer's big show: the same picture and words, standing still.
    show = alice.locator("#bigshow")
    await expect(show).to_be_visible()
    await expect(show.locator(".bigshow-line")).to_have_text("alice sent Private Jet")
    await expect(show.locator(".bigshow-coins")).to_have_text("4,888 coins")
    picture = show.locator(".gift-picture")
    assert await picture.evaluate("(svg) => getComputedStyle(svg).animationName") == "none"
    box = await picture.bounding_box()
    assert box is not None
    assert box["width"] >= 200
    assert await moving(alice) == []
    # Where motion is welcome, the same page does move (the check can tell).
    await expect(bob.locator("#bigshow")).to_be_visible()
    assert any("big-enter" in found for found in await moving(bob)), await moving(bob)

    # The overlay: the full alert, its rays and its streak, none of them moving.
    for overlay in (still, lively):
        await expect(overlay.locator("#alert")).to_contain_text("alice sent Private Jet")
        await expect(overlay.locator("#alert .alert-detail")).to_have_text("4,888 coins")
        await expect(overlay.locator("#alert .alert-burst")).to_be_visible()
        await expect(overlay.locator("#streaks .streak")).to_have_attribute("data-count", "2")
    assert await moving(still) == []
    lively_moves = await moving(lively)
    assert any("fly-in" in found for found in lively_moves), lively_moves
    assert any("spin" in found for found in lively_moves), lively_moves


# ---------------------------------------------------------------- creator: gifting and withdrawals

PAYOUT_PROFILE = {
    "method": "paypal",
    "legal_name": "Carol Example",
    "tax_id": "123-45-6789",
    "account": "carol@example.com",
}


async def earn_two_rockets(server: ServerProcess) -> None:
    """carol earns 1,999 diamonds: half of alice's two rockets (2 x 1,999 coins)."""
    alice = await protocol_client(server, "alice")
    try:
        for n in range(2):
            assert (await alice.gift(f"w-rocket-{n}", "rocket", confirm=True))["type"] == "ack"
    finally:
        await alice.close()


async def creator_profile(server: ServerProcess, creator: str) -> dict[str, object]:
    api = Api(server.http)
    try:
        token = await api.token(creator, role="creator")
        response = await api.http.get("/api/creator/profile", headers=bearer(token))
        response.raise_for_status()
        profile: dict[str, object] = response.json()
        return profile
    finally:
        await api.aclose()


async def test_the_creator_gifting_switch_stays_off_when_refused_and_says_why_once(
    server: ServerProcess, pages: Pages
) -> None:
    dave = await open_creator(pages, server, "dave")
    switch = dave.locator("#gifting-switch")
    await expect(switch).to_be_enabled()
    await expect(switch).to_have_attribute("aria-checked", "false")

    await switch.click()

    # dave, an adult with 350 followers of the 1,000 needed, may not switch on.
    note = dave.locator("#gifting-note")
    await expect(note).to_have_text("Gifts stay off: 350 of the 1,000 followers needed.")
    await expect(switch).to_have_attribute("aria-checked", "false")
    await expect(switch).to_be_enabled()
    await expect(dave.locator("#gifting")).to_have_attribute("data-state", "off")
    await expect(dave.locator("#gifting-state")).to_have_text("Off")
    text = await dave.evaluate("document.body.innerText")
    assert text.count("followers needed") == 1, text
    assert "not eligible to take gifts" not in text, "the server's words are shown as well"
    assert (await creator_profile(server, "dave"))["gifting_enabled"] is False

    # carol switches off, and on again: the card follows each switch.
    carol = await open_creator(pages, server, "carol")
    switch = carol.locator("#gifting-switch")
    card = carol.locator("#gifting")
    await expect(switch).to_have_attribute("aria-checked", "true")
    await switch.click()
    await expect(switch).to_have_attribute("aria-checked", "false")
    await expect(card).to_have_attribute("data-state", "off")
    await expect(card).to_have_attribute("data-reasons", "gifting_off")
    await expect(carol.locator("#gifting-why li")).to_have_text(["switched off"])
    await expect(carol.locator("#gifting-note")).to_be_hidden()
    assert (await creator_profile(server, "carol"))["gifting_enabled"] is False
    await switch.click()
    await expect(switch).to_have_attribute("aria-checked", "true")
    await expect(card).to_have_attribute("data-state", "on")
    await expect(carol.locator("#gifting-why li")).to_have_text(
        ["viewers can send you gifts", "12,400 followers"]
    )
    assert (await creator_profile(server, "carol"))["gifting_enabled"] is True


async def test_the_creator_withdraws_diamonds_and_sees_them_paid(
    start_server: StartServer, pages: Pages
) -> None:
    server = await start_server(sandbox_payout_delay_seconds=2)
    creator = await open_creator(pages, server, "carol")
    diamonds = creator.locator("#wallet-diamonds")
    await expect(diamonds).to_have_attribute("data-value", "0")
    await expect(creator.locator("#withdrawals-empty")).to_be_visible()
    await expect(creator.locator("#payout-profile")).to_have_text("No payout profile yet.")
    withdrawal_reads: list[str] = []

    def count_reads(request: Request) -> None:
        if request.method == "GET" and request.url.endswith("/api/creator/withdrawals"):
            withdrawal_reads.append(request.url)

    creator.on("request", count_reads)

    await earn_two_rockets(server)
    await expect(diamonds).to_have_attribute("data-value", "1999")
    await expect(diamonds).to_have_text("1,999")

    status = creator.locator("#withdraw-status")
    await creator.fill("#withdraw-diamonds", "500")
    await creator.click("#withdraw-submit")
    await expect(status).to_have_attribute("data-code", "payout_profile_unverified")
    await expect(status).to_have_text("Add a payout profile first: it says where to pay you.")

    await creator.select_option("#payout-method", "paypal")
    await creator.fill("#payout-legal-name", PAYOUT_PROFILE["legal_name"])
    await creator.fill("#payout-tax-id", PAYOUT_PROFILE["tax_id"])
    await creator.fill("#payout-account", PAYOUT_PROFILE["account"])
    await creator.click("#payout-save")
    profile = creator.locator("#payout-profile")
    await expect(profile).to_have_attribute("data-verified", "true")
    await expect(profile).to_have_attribute("data-method", "paypal")
    await expect(profile).to_have_text("PayPal ****.com · paid in USD · verified")
    await expect(creator.locator("#payout-account")).to_have_value("")

    # Too few: said once, in the page's words.
    await creator.fill("#withdraw-diamonds", "100")
    await creator.click("#withdraw-submit")
    await expect(status).to_have_attribute("data-code", "below_minimum")
    await expect(status).to_have_text("That is below the minimum withdrawal.")
    text = await creator.evaluate("document.body.innerText")
    assert text.count("below the minimum") == 1, text
    assert "at least" not in text, "the server's words are shown as well"
    await expect(creator.locator("#withdrawals li")).to_have_count(0)

    await creator.fill("#withdraw-diamonds", "500")
    await creator.click("#withdraw-submit")
    await expect(status).to_have_attribute("data-state", "asked")
    await expect(status).to_contain_text("Withdrawal of 500 diamonds (2.50 USD) asked for")
    row = creator.locator("#withdrawals li")
    await expect(row).to_have_count(1)
    await expect(row).to_have_attribute("data-status", "pending")
    await expect(creator.locator("#wallet-reserved")).to_have_attribute("data-value", "500")
    await expect(diamonds).to_have_attribute("data-value", "1499")
    await expect(row.locator(".withdrawal-diamonds")).to_have_text("500 diamonds")
    await expect(row.locator(".withdrawal-diamonds")).to_have_attribute("data-value", "500")
    await expect(row.locator(".withdrawal-amount")).to_have_text("2.50 USD")
    await expect(row.locator("time.withdrawal-time")).to_have_attribute("datetime", re.compile("T"))
    reads_while_pending = len(withdrawal_reads)

    # The sandbox pays it 2 s later: the room socket's withdrawal message has
    # the page read it at once, without a reload (its own look comes every
    # 5 s, later than this waits).
    await expect(row).to_have_attribute("data-status", "paid", timeout=4_500)
    assert len(withdrawal_reads) - reads_while_pending >= 1, withdrawal_reads
    await expect(row.locator(".withdrawal-status")).to_have_text("paid")
    await expect(creator.locator("#wallet-paid-out")).to_have_attribute("data-value", "500")
    await expect(creator.locator("#wallet-reserved")).to_have_attribute("data-value", "0")
    await expect(diamonds).to_have_attribute("data-value", "1499")
    await expect(creator.locator("#diamonds")).to_have_text("1,499")
    polled = len(withdrawal_reads)
    # Nothing pending: the page stops asking (its 15 s refresh aside).
    await asyncio.sleep(3)
    assert len(withdrawal_reads) - polled <= 1, withdrawal_reads

    # More than held, said with the balance as it is now.
    await creator.fill("#withdraw-diamonds", "2000")
    await creator.click("#withdraw-submit")
    await expect(status).to_have_attribute("data-code", "insufficient_diamonds")
    await expect(status).to_have_text(
        "That is more than you hold: you have 1,499 diamonds to withdraw."
    )
    await expect(creator.locator("#withdrawals li")).to_have_count(1)


async def test_a_creator_withdrawal_without_an_answer_is_sent_again_with_the_same_id(
    start_server: StartServer, pages: Pages
) -> None:
    server = await start_server(sandbox_payout_delay_seconds=3600)
    await earn_two_rockets(server)
    api = Api(server.http)
    try:
        token = await api.token("carol", role="creator")
        saved = await api.http.put(
            "/api/creator/payout-profile", json=PAYOUT_PROFILE, headers=bearer(token)
        )
        assert saved.json()["verified"] is True
    finally:
        await api.aclose()
    creator = await open_creator(pages, server, "carol")
    await expect(creator.locator("#wallet-diamonds")).to_have_attribute("data-value", "1999")

    # Every attempt reaches the server, but its answer is lost on the way back:
    # the connection drops, or a proxy answers 503.
    sent: list[str] = []
    answers_lost = True

    async def lose_answers(route: Route) -> None:
        if route.request.method != "POST":
            await route.continue_()
            return
        body = route.request.post_data_json
        assert isinstance(body, dict), body
        sent.append(str(body["request_id"]))
        answer = await route.fetch()
        if not answers_lost:
            await route.fulfill(response=answer)
        elif len(sent) % 2:
            await route.abort("connectionreset")
        else:
            await route.fulfill(
                status=503,
                json={"code": "unavailable", "status": 503, "temporary": True, "detail": "proxy"},
            )

    await creator.route("**/api/creator/withdrawals", lose_answers)
    status = creator.locator("#withdraw-status")
    await creator.fill("#withdraw-diamonds", "500")
    await creator.click("#withdraw-submit")

    await expect(status).to_have_attribute("data-state", "unknown", timeout=10_000)
    await expect(status).to_have_text(
        "No answer from the server: the withdrawal of 500 diamonds may not have been made. "
        "Press Withdraw again to retry; it is never made twice."
    )
    assert len(sent) == 3, sent  # the first try and two retries
    assert len(set(sent)) == 1, sent
    await expect(creator.locator("#withdrawals li")).to_have_count(1)

    # Pressed again: the same submission, the same request id, made once.
    answers_lost = False
    await creator.click("#withdraw-submit")
    await expect(status).to_have_attribute("data-state", "asked")
    assert sent == [sent[0]] * 4, sent
    await expect(creator.locator("#withdrawals li[data-status=pending]")).to_have_count(1)
    await expect(creator.locator("#wallet-reserved")).to_have_attribute("data-value", "500")
    await expect(creator.locator("#wallet-diamonds")).to_have_attribute("data-value", "1499")

    # A new submission is a new request.
    await creator.fill("#withdraw-diamonds", "300")
    await creator.click("#withdraw-submit")
    await expect(creator.locator("#withdrawals li")).to_have_count(2)
    assert len(sent) == 5
    assert sent[4] != sent[0], sent
    await expect(creator.locator("#wallet-reserved")).to_have_attribute("data-value", "800")

    # The provider fails the newest: its diamonds come back, without a reload.
    newest = creator.locator("#withdrawals li").first
    await expect(newest).to_have_attribute("data-diamonds", "300")
    withdrawal_id = await newest.get_attribute("data-id")
    api = Api(server.http)
    try:
        failed = await api.http.post(
            f"/api/sandbox/payouts/{withdrawal_id}",
            json={"outcome": "failed"},
            headers=bearer(await api.token("carol", role="creator")),
        )
        assert failed.json()["status"] == "ok", failed.text
    finally:
        await api.aclose()
    await expect(newest).to_have_attribute("data-status", "failed")
    await expect(newest.locator(".withdrawal-status")).to_have_text("failed: diamonds returned")
    await expect(creator.locator("#wallet-diamonds")).to_have_attribute("data-value", "1499")
    await expect(creator.locator("#wallet-reserved")).to_have_attribute("data-value", "500")
    await expect(creator.locator("#diamonds")).to_have_text("1,499")
