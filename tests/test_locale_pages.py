"""The pages in both markets' languages, and the fan club, in a real Chromium.

A browser whose language is Chinese gets the pages in Simplified Chinese,
gift names from the catalogue in Chinese and the CNY packs in the top-up
sheet; ``?lang=`` wins over the browser, and the switcher's choice over the
browser from then on (kept across a reload). The overlay speaks what its
URL or its browser says. Refusals are said in the page's own Chinese words.
A viewer joins the fan club from the viewer page and their gifts then wear
its badge. The demo server's alice holds 5,000 coins, bob 500, and carol is
live. Without Chromium these tests skip (fail under CI).
"""

# Chinese text is written with fullwidth punctuation (commas, colons...), as the pages write it.
# ruff: noqa: RUF001

from __future__ import annotations

import json
import re
from urllib.parse import parse_qs, urlsplit

from playwright.async_api import Page, Route, expect

from tests.browser import DESKTOP, Pages, secretless
from tests.client import Api, bearer
from tests.conftest import ServerProcess
from tests.test_pages import (
    browser,
    open_overlay,
    open_viewer,
    pages,
    protocol_client,
    wallet_coins,
)

__all__ = ["browser", "pages"]  # fixtures, used by name

CHINESE = "zh-CN"


async def open_in_locale(
    pages: Pages, server: ServerProcess, name: str, path: str, locale: str
) -> Page:
    """``path`` of the server in a context of its own whose browser language is ``locale``
    (``navigator.languages`` and ``Accept-Language``)."""
    context = await pages.browser.new_context(viewport=DESKTOP, locale=locale)
    pages.contexts.append(context)
    page = await context.new_page()
    page.on("pageerror", lambda error: pages.errors.append(f"{name}: {error}"))
    page.on("console", lambda message: pages.console.append(f"{name}: {secretless(message.text)}"))
    pages.pages[name] = page
    await page.goto(f"{server.http}{path}")
    return page


async def open_chinese_viewer(
    pages: Pages, server: ServerProcess, user: str, options: str = ""
) -> Page:
    page = await open_in_locale(
        pages,
        server,
        f"{user}@carol ({CHINESE})",
        f"/viewer.html?room=carol&user={user}{options}",
        CHINESE,
    )
    await expect(page.locator("#state")).to_have_attribute("data-state", "live")
    return page


async def page_language(page: Page) -> str:
    lang: str = await page.evaluate("document.documentElement.lang")
    return lang


async def open_top_up(page: Page) -> None:
    await page.click("#recharge-open")
    await expect(page.locator("#recharge")).to_be_visible()


# ---------------------------------------------------------------- choosing the language


async def test_a_chinese_browser_gets_the_viewer_page_in_chinese_with_cny_packs(
    server: ServerProcess, pages: Pages
) -> None:
    alice = await open_chinese_viewer(pages, server, "alice")

    assert await page_language(alice) == CHINESE
    await expect(alice.locator("#gifts-title")).to_have_text("送礼物")
    await expect(alice.locator("#state")).to_have_text("已连接")
    await expect(alice.locator("#gifts button[data-gift=rose] .gift-label")).to_have_text("玫瑰")
    await expect(alice.locator("#gifts button[data-gift=rose]")).to_have_attribute(
        "title", "玫瑰：1 金币（小）"
    )
    await expect(alice.locator("#top-gifters-title")).to_have_text("礼物榜")
    await expect(alice.locator("#leaderboard-empty")).to_have_text("本场直播还没有礼物。")
    await expect(alice.locator("#balance")).to_have_text("5,000")
    await expect(alice.locator("#fanclub-join")).to_have_text("加入粉丝团 · 1 金币")

    # The top-up sheet: Douyin's packs, in yuan (1 CNY = 10 coins).
    await open_top_up(alice)
    packs = alice.locator("#packages button")
    await expect(alice.locator("#packages")).to_have_attribute("data-region", "CN")
    await expect(packs).to_have_count(7)
    for currency in await packs.evaluate_all("(buttons) => buttons.map((b) => b.dataset.currency)"):
        assert currency == "CNY"
    await expect(
        alice.locator("#packages button[data-package=cny_98] .package-price")
    ).to_have_text("¥98.00")
    await expect(
        alice.locator("#packages button[data-package=cny_98] .package-coins")
    ).to_have_text("980")
    await expect(alice.locator("#recharge-title")).to_have_text("充值金币")

    # A gift in Chinese in the feed, from the catalogue's Chinese names.
    await alice.click("#recharge button[value=close]")
    await alice.click("#gifts button[data-gift=corgi]")
    row = alice.locator("#feed .feed-item[data-gift=corgi]")
    await expect(row).to_contain_text("alice 送出 柯基")
    await expect(alice.locator("#sends .send .send-status").first).to_have_text("已送出 · 299 金币")


async def test_lang_in_the_url_wins_and_the_switchers_choice_survives_a_reload(
    server: ServerProcess, pages: Pages
) -> None:
    alice = await open_chinese_viewer(pages, server, "alice", "&lang=en")

    # The URL says English: English words and names, USD packs, on a Chinese browser.
    assert await page_language(alice) == "en"
    await expect(alice.locator("#gifts-title")).to_have_text("Send a gift")
    await expect(alice.locator("#gifts button[data-gift=rose] .gift-label")).to_have_text("Rose")
    await open_top_up(alice)
    await expect(alice.locator("#packages")).to_have_attribute("data-region", "US")
    await expect(alice.locator("#packages button")).to_have_count(6)
    await expect(
        alice.locator("#packages button[data-package=coins_330] .package-price")
    ).to_have_text("$4.99")
    await alice.click("#recharge button[value=close]")

    # The switcher: Chinese at once, without a reload, and the URL's choice is gone.
    await alice.evaluate("window.markedLoad = true")
    await expect(alice.locator("#language")).to_have_value("en")
    await alice.select_option("#language", CHINESE)
    await expect(alice.locator("#gifts-title")).to_have_text("送礼物")
    await expect(alice.locator("#gifts button[data-gift=rose] .gift-label")).to_have_text("玫瑰")
    await expect(alice.locator("#state")).to_have_text("已连接")
    assert await page_language(alice) == CHINESE
    assert "lang" not in parse_qs(urlsplit(alice.url).query)
    assert await alice.evaluate("window.markedLoad === true"), "the page was reloaded"
    assert await alice.evaluate("localStorage.getItem('giftstream:lang')") == CHINESE
    await open_top_up(alice)
    await expect(alice.locator("#packages")).to_have_attribute("data-region", "CN")
    await expect(alice.locator("#packages button").first).to_contain_text("¥")
    await alice.click("#recharge button[value=close]")

    # Remembered: a reload (no ?lang any more) is in Chinese still.
    await alice.reload()
    await expect(alice.locator("#state")).to_have_attribute("data-state", "live")
    assert await page_language(alice) == CHINESE
    await expect(alice.locator("#gifts-title")).to_have_text("送礼物")
    await expect(alice.locator("#language")).to_have_value(CHINESE)

    # And back to English, remembered the same way.
    await alice.select_option("#language", "en")
    await expect(alice.locator("#gifts-title")).to_have_text("Send a gift")
    await alice.reload()
    await expect(alice.locator("#gifts button[data-gift=rose] .gift-label")).to_have_text("Rose")
    assert await page_language(alice) == "en"


async def test_the_browsers_languages_choose_the_first_one_served(
    server: ServerProcess, pages: Pages
) -> None:
    page = await open_in_locale(pages, server, "index", "/", "en-US")
    picked = await page.evaluate("""async () => {
      const { pickLanguage } = await import("/i18n.js");
      return [
        pickLanguage({ preferred: ["fr-FR", "zh-Hans-CN", "en"] }),
        pickLanguage({ preferred: ["zh"] }),
        pickLanguage({ preferred: ["zh-TW", "en-GB"] }),
        pickLanguage({ preferred: ["de", "fr"] }),
        pickLanguage({ stored: "zh-CN", preferred: ["en-US"] }),
        pickLanguage({ asked: "en", stored: "zh-CN", preferred: ["zh-CN"] }),
        pickLanguage({ asked: "zh-cn" }),
        pickLanguage({ asked: "xx", preferred: ["zh-SG"] }),
      ];
    }""")
    assert picked == ["zh-CN", "zh-CN", "en", "en", "zh-CN", "en", "zh-CN", "zh-CN"]

    chinese = await open_in_locale(pages, server, "index (zh)", "/", CHINESE)
    await expect(chinese.locator("main a").first).to_have_text("carol 的直播间，以 alice 身份")
    await expect(chinese.locator("#overlay-link")).to_have_text("carol 的 OBS 叠加层")
    await expect(page.locator("main a").first).to_have_text("carol's room, as alice")


# ---------------------------------------------------------------- the overlay


async def test_the_overlay_with_lang_zh_cn_shows_its_alerts_in_chinese(
    server: ServerProcess, pages: Pages
) -> None:
    overlay = await open_overlay(pages, server, "&lang=zh-CN")
    assert await page_language(overlay) == CHINESE

    alice = await protocol_client(server, "alice")
    try:
        assert (await alice.gift("zh-corgi", "corgi"))["type"] == "ack"
        assert (await alice.gift("zh-rose", "rose"))["type"] == "ack"
    finally:
        await alice.close()

    alert = overlay.locator("#alert")
    await expect(alert.locator(".alert-line")).to_have_text("alice 送出 柯基")
    await expect(alert.locator(".alert-detail")).to_have_text("299 金币")
    await expect(overlay.locator("#streaks .streak .streak-gift")).to_have_text("送出 玫瑰")


# ---------------------------------------------------------------- refusals


async def test_a_refusal_is_said_in_the_pages_chinese_words(
    server: ServerProcess, pages: Pages
) -> None:
    bob = await open_chinese_viewer(pages, server, "bob")
    await expect(bob.locator("#balance")).to_have_text("500")

    await bob.click("#gifts button[data-gift=rocket]")
    await expect(bob.locator("#confirm-text")).to_have_text("花 1,999 金币 送出 火箭 x1？")
    await bob.click("#confirm-send")

    refused = bob.locator("#sends .send").first
    await expect(refused).to_have_attribute("data-code", "insufficient_coins")
    await expect(refused.locator(".send-status")).to_have_text("未送出")
    await expect(bob.locator("#recharge")).to_be_visible()
    await expect(bob.locator("#recharge-why")).to_have_text(
        "金币不足，无法送出 火箭 x1：需要 1,999 金币，你有 500。"
    )
    text = await bob.evaluate("document.body.innerText")
    assert text.count("金币不足") == 1, text
    assert "held" not in text, "the server's English words on a Chinese page"
    assert "enough" not in text, "English words on a Chinese page"
    assert await wallet_coins(server, "bob") == 500


# ---------------------------------------------------------------- the fan club


async def fan_club(server: ServerProcess, user: str) -> dict[str, object]:
    api = Api(server.http)
    try:
        answer = await api.http.get(
            "/api/rooms/carol/fanclub", headers=bearer(await api.token(user))
        )
        answer.raise_for_status()
        you: dict[str, object] = answer.json()["you"]
        return you
    finally:
        await api.aclose()


async def test_a_viewer_joins_the_fan_club_and_their_gifts_wear_its_badge(
    server: ServerProcess, pages: Pages
) -> None:
    alice = await open_viewer(pages, server, "alice")
    bob = await open_viewer(pages, server, "bob")
    card = alice.locator("#fanclub")
    await expect(card).to_have_attribute("data-member", "false")
    await expect(alice.locator("#fanclub-join")).to_have_text("Join the fan club · 1 coin")
    await expect(alice.locator("#fanclub-level")).to_be_hidden()

    await alice.click("#fanclub-join")

    await expect(card).to_have_attribute("data-member", "true")
    await expect(card).to_have_attribute("data-level", "1")
    await expect(alice.locator("#fanclub-level")).to_have_text("Fan club Lv 1")
    await expect(alice.locator("#fanclub-next")).to_have_text("99 coins to Lv 2")
    await expect(alice.locator("#fanclub-badge")).to_have_text("carol Lv 1")
    await expect(alice.locator("#fanclub-join")).to_be_hidden()
    await expect(alice.locator("#balance")).to_have_text("4,999")
    assert await wallet_coins(server, "alice") == 4999
    assert (await fan_club(server, "alice"))["member"] is True

    # Her next gift wears the badge, on her page and on everyone's.
    await alice.click("#gifts button[data-gift=doughnut]")
    for page in (alice, bob):
        badge = page.locator("#feed .feed-item[data-sender=alice] .gift-fan-badge")
        await expect(badge).to_have_text("carol Lv 1")
        await expect(badge).to_have_attribute("data-level", "1")
    await expect(alice.locator("#feed .feed-item[data-sender=alice]")).to_contain_text(
        "alice carol Lv 1 sent Doughnut"
    )
    # The coins to the next level follow her gifts here.
    await expect(alice.locator("#fanclub-next")).to_have_text("69 coins to Lv 2")
    await expect(alice.locator("#balance")).to_have_text("4,969")

    # bob is no member: his gift has no badge.
    await bob.click("#gifts button[data-gift=rose]")
    bobs = alice.locator("#feed .feed-item[data-sender=bob]")
    await expect(bobs).to_contain_text("bob sent Rose")
    await expect(bobs.locator(".gift-fan-badge")).to_have_count(0)

    # In Chinese, at once: the card, and the feed's rows.
    await alice.select_option("#language", CHINESE)
    await expect(alice.locator("#fanclub-level")).to_have_text("粉丝团 Lv 1")
    await expect(alice.locator("#fanclub-next")).to_have_text("再送 69 金币 升到 Lv 2")
    await expect(alice.locator("#feed .feed-item[data-sender=alice]")).to_contain_text(
        "送出 甜甜圈"
    )


async def test_a_second_join_is_said_once_and_pays_nothing(
    server: ServerProcess, pages: Pages
) -> None:
    first = await open_viewer(pages, server, "alice")
    second = await pages.open("alice again", f"{server.http}/viewer.html?room=carol&user=alice")
    await expect(second.locator("#fanclub")).to_have_attribute("data-member", "false")
    await first.click("#fanclub-join")
    await expect(first.locator("#fanclub")).to_have_attribute("data-member", "true")

    # The other page, opened before, still offers to join: the server says she is in.
    await second.click("#fanclub-join")
    await expect(second.locator("#fanclub-status")).to_have_text(
        "You are in this fan club already."
    )
    await expect(second.locator("#fanclub")).to_have_attribute("data-member", "true")
    await expect(second.locator("#fanclub-level")).to_have_text("Fan club Lv 1")
    assert await wallet_coins(server, "alice") == 4999


async def test_a_gift_for_a_higher_fan_level_shows_locked_and_is_not_sent(
    server: ServerProcess, pages: Pages
) -> None:
    async def lock_the_corgi(route: Route) -> None:
        response = await route.fetch()
        catalogue = json.loads(await response.text())
        for gift in catalogue["gifts"]:
            if gift["id"] == "corgi":
                gift["fan_level_required"] = 3
        await route.fulfill(response=response, json=catalogue)

    alice = await pages.open("alice@carol", "about:blank")
    await alice.route(re.compile(r"/api/catalog\?"), lock_the_corgi)
    await alice.goto(f"{server.http}/viewer.html?room=carol&user=alice")
    await expect(alice.locator("#state")).to_have_attribute("data-state", "live")

    corgi = alice.locator("#gifts button[data-gift=corgi]")
    await expect(corgi).to_have_attribute("data-locked", "true")
    await expect(corgi.locator(".gift-lock")).to_have_text("Lv 3")
    await expect(corgi).to_have_attribute("title", "Corgi: for fan club Lv 3 and up")
    await expect(alice.locator("#gifts button[data-gift=rose]")).not_to_have_attribute(
        "data-locked", "true"
    )

    await corgi.click()
    await expect(alice.locator("#notice")).to_contain_text(
        "Corgi is for fan club members of Lv 3 and up"
    )
    await expect(alice.locator("#sends .send")).to_have_count(0)
    assert await wallet_coins(server, "alice") == 5000
