"""Take the README's screenshots of the demo pages, in a real state.

Starts a demo server of its own (embedded Valkey in a temporary directory,
a free port), gives creator carol a week of earlier gifts from a few other
supporters (paid and settled by the real Lua scripts, at past times, so
that her earnings chart has a history), opens the pages in Debian's
Chromium, sets a goal and sends gifts by tapping the pages as people would,
and saves PNGs under docs/screenshots/: the viewer (on a laptop, on a
phone, and in Chinese, with a fan club badge), the creator page, the
overlay's alert and its two widgets (top gifters, the goal).

    .venv/bin/python scripts/screenshots.py [--out docs/screenshots]

Needs /usr/bin/chromium (scripts/install-browser), and a font with Chinese
characters for viewer-zh.png (Debian: fonts-wqy-microhei or fonts-noto-cjk).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from playwright.sync_api import Browser, Page, ViewportSize, sync_playwright
from redis.asyncio import Redis

from server.core.catalog import load_catalog
from server.money.wallet import GiftOrder, Wallets
from server.ops.embedded import LOCK_NAME
from server.settings import Settings
from server.store.scripts import Scripts

REPO_ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
LISTENING = "giftstream: listening on"
REDIS_LINE = "redis:"
DAY_MS = 86_400_000
# (days ago, hour UTC, supporter, gift, count): carol's week before today.
HISTORY = [
    (6, 19, "erin", "rose", 30),
    (6, 20, "femi", "corgi", 1),
    (5, 18, "gus", "doughnut", 4),
    (5, 21, "erin", "money_gun", 1),
    (4, 20, "hana", "hand_hearts", 3),
    (3, 19, "femi", "rocket", 1),
    (3, 20, "erin", "corgi", 2),
    (3, 21, "gus", "rose", 99),
    (2, 20, "hana", "money_gun", 2),
    (1, 19, "erin", "jet", 1),
    (1, 20, "femi", "finger_heart", 20),
]
START_TIMEOUT = 30.0
DESKTOP = ViewportSize(width=1280, height=800)
PHONE = ViewportSize(width=390, height=844)
OBS = ViewportSize(width=1920, height=1080)
CHINESE = "zh-CN"
# carol's goal in the pictures: the gifts below fill about half of it.
GOAL_TITLE = "New camera"
GOAL_COINS = 5000


@contextmanager
def demo_server() -> Iterator[tuple[str, str]]:
    """A `giftstream serve --demo` on a free port; yields its base URL and Redis URL."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIFTSTREAM_")}
    env.pop("REDIS_URL", None)
    env["PYTHONUNBUFFERED"] = "1"
    with tempfile.TemporaryDirectory(prefix="giftstream-shots-") as data_dir:
        serve = ["serve", "--demo", "--port", "0", "--data-dir", data_dir, "--log-level", "WARNING"]
        process = subprocess.Popen(
            [sys.executable, "-m", "server", *serve],
            cwd=REPO_ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            base, shown = _wait_listening(process)
            yield base, _redis_url(Path(data_dir), shown)
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _wait_listening(process: subprocess.Popen[str]) -> tuple[str, str]:
    lines: queue.Queue[str | None] = queue.Queue()

    def drain() -> None:
        # Read to the end, so that a full pipe never blocks the server.
        assert process.stdout is not None
        for line in process.stdout:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=drain, daemon=True).start()
    deadline = time.monotonic() + START_TIMEOUT
    seen: list[str] = []
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
        except queue.Empty:
            break
        if line is None:
            break
        seen.append(line)
        if line.startswith(LISTENING):
            redis = [seen.strip().removeprefix(REDIS_LINE).strip() for seen in seen
                     if seen.strip().startswith(REDIS_LINE)]  # fmt: skip
            if not redis:
                raise SystemExit("the demo server did not say which Redis it uses")
            return line.removeprefix(LISTENING).strip(), redis[0]
    raise SystemExit("the demo server did not start:\n" + "".join(seen))


def _redis_url(data_dir: Path, shown: str) -> str:
    """The embedded Valkey's URL with its password: the banner hides the password;
    the first line of its lock file (its owner's alone) holds the URL whole."""
    lock = data_dir / "valkey" / LOCK_NAME
    try:
        return lock.read_text(encoding="utf-8").splitlines()[0].strip()
    except (OSError, IndexError):
        return shown.split()[0]


async def seed_history(redis_url: str) -> None:
    """Earlier gifts to carol, through the same scripts as live ones, at past times."""
    redis = Redis.from_url(redis_url)
    try:
        wallets = Wallets(redis, Scripts.register(redis), Settings())
        catalog = load_catalog()
        today = int(time.time() * 1000) // DAY_MS * DAY_MS
        for user in sorted({sender for _, _, sender, _, _ in HISTORY}):
            await wallets.grant_coins(user, 20_000, "screenshots", today - 7 * DAY_MS)
        for number, (days_ago, hour, sender, gift, count) in enumerate(HISTORY):
            at = today - days_ago * DAY_MS + hour * 3_600_000
            order = GiftOrder(
                sender, f"history-{number}", catalog.gift(gift), count, "carol", "carol", at
            )
            await wallets.send_gift(order)
            for credit in await wallets.pending_credits(sender):
                await wallets.settle(credit, at)
    finally:
        await redis.aclose()


def open_page(
    browser: Browser, url: str, viewport: ViewportSize, locale: str | None = None
) -> Page:
    page = browser.new_context(viewport=viewport, locale=locale).new_page()
    page.on("pageerror", lambda error: print(f"page error in {url.split('?')[0]}: {error}"))
    page.goto(url)
    return page


def wait_live(page: Page) -> None:
    page.wait_for_selector("[data-state=live]")


def tap(page: Page, gift: str, times: int = 1, batch: int = 1) -> None:
    page.click(f".batch input[value='{batch}'] + span")
    for _ in range(times):
        page.click(f"#gifts button[data-gift={gift}]")
        page.wait_for_timeout(150)


def set_goal(creator: Page) -> None:
    creator.fill("#goal-title", GOAL_TITLE)
    creator.fill("#goal-coins", str(GOAL_COINS))
    creator.click("#goal-set")
    creator.wait_for_selector("#goal-card[data-state=set]")


def take(base: str, out: Path) -> None:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        creator = open_page(browser, f"{base}/creator.html?user=carol", DESKTOP)
        wait_live(creator)
        creator.wait_for_function("document.querySelector('#overlay-url').value !== ''")
        overlay_url = creator.input_value("#overlay-url")
        set_goal(creator)
        overlay = open_page(browser, overlay_url, OBS)
        board_widget = open_page(browser, f"{overlay_url}&widget=leaderboard", OBS)
        goal_widget = open_page(browser, f"{overlay_url}&widget=goal", OBS)
        alice = open_page(browser, f"{base}/viewer.html?room=carol&user=alice", DESKTOP)
        bob = open_page(browser, f"{base}/viewer.html?room=carol&user=bob", PHONE)
        # hana (20,000 coins from the history) watches in Chinese, a browser of that language.
        hana = open_page(browser, f"{base}/viewer.html?room=carol&user=hana", DESKTOP, CHINESE)
        for page in (overlay, board_widget, goal_widget, alice, bob, hana):
            wait_live(page)

        # Streaks, then a rocket (over 1,000 coins: the page asks first).
        tap(alice, "rose", times=6)
        tap(bob, "doughnut")
        tap(alice, "finger_heart", batch=10)
        tap(alice, "rocket")
        alice.click("#confirm-send")
        overlay.wait_for_selector("#alert[data-tier=large]")
        overlay.wait_for_timeout(1200)  # the rocket's fly-in
        overlay.screenshot(path=out / "overlay.png", omit_background=True)
        if not overlay.is_visible("#alert[data-tier=large]"):
            raise SystemExit("the rocket's alert ended before its picture was taken")

        for page in (alice, bob):
            page.wait_for_selector("#bigshow", state="hidden")
        tap(alice, "hand_hearts")
        tap(bob, "rose", times=3)
        tap(alice, "corgi")
        tap(alice, "rose", times=8)  # a streak still running in the pictures
        alice.wait_for_timeout(600)
        alice.screenshot(path=out / "viewer.png")
        bob.screenshot(path=out / "viewer-phone.png")
        creator.wait_for_timeout(3000)  # settlement, then the earnings refresh
        creator.wait_for_selector("#chart rect.bar")
        creator.screenshot(path=out / "creator.png", full_page=True)
        take_widgets(board_widget, goal_widget, out)
        take_chinese(hana, out)
        browser.close()


def take_widgets(board_widget: Page, goal_widget: Page, out: Path) -> None:
    """The overlay's two widgets, each cropped to itself (as OBS's source would be)."""
    # Rankings are counted a second or two after each gift.
    board_widget.wait_for_function(
        "document.querySelectorAll('#leaderboard .board-row').length >= 2", timeout=15_000
    )
    board_widget.wait_for_timeout(500)
    board_widget.locator("#board-widget").screenshot(
        path=out / "leaderboard-widget.png", omit_background=True
    )
    goal_widget.wait_for_function(
        "Number(document.querySelector('#goal').dataset.progress) > 0", timeout=15_000
    )
    goal_widget.wait_for_timeout(800)  # the bar's fill
    goal_widget.locator(".goal-widget").screenshot(
        path=out / "goal-widget.png", omit_background=True
    )


def take_chinese(hana: Page, out: Path) -> None:
    """The viewer in Chinese: hana joins the fan club, sends a gift wearing its
    badge, and the top gifters and the goal bar are in the picture."""
    hana.click("#fanclub-join")
    hana.wait_for_selector("#fanclub[data-member=true]")
    tap(hana, "hand_hearts")
    hana.wait_for_selector("#feed .feed-item[data-sender=hana] .gift-fan-badge")
    hana.wait_for_selector("#leaderboard .board-row[data-user=hana]", timeout=15_000)
    hana.locator("#top-gifters").scroll_into_view_if_needed()
    hana.wait_for_timeout(600)
    hana.screenshot(path=out / "viewer-zh.png")


def has_chinese_font() -> bool:
    """Whether fontconfig knows a font with Chinese characters (else they draw as boxes)."""
    if shutil.which("fc-list") is None:
        return True  # cannot tell: let the picture show
    listed = subprocess.run(
        ["fc-list", ":lang=zh"], capture_output=True, text=True, check=False
    ).stdout
    return bool(listed.strip())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "docs" / "screenshots")
    args = parser.parse_args()
    if not Path(CHROMIUM).exists():
        raise SystemExit("Chromium is not installed: run scripts/install-browser")
    if not has_chinese_font():
        print(
            "warning: no font with Chinese characters: viewer-zh.png will show boxes "
            "(apt-get install fonts-wqy-microhei)",
            file=sys.stderr,
        )
    args.out.mkdir(parents=True, exist_ok=True)
    with demo_server() as (base, redis_url):
        asyncio.run(seed_history(redis_url))
        take(base, args.out)
    for path in sorted(args.out.glob("*.png")):
        print(path.relative_to(REPO_ROOT) if path.is_relative_to(REPO_ROOT) else path)


if __name__ == "__main__":
    main()
