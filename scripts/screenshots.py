"""Take the README's screenshots of the demo pages, in a real state.

Starts a demo server of its own (embedded Valkey in a temporary directory,
a free port), gives creator carol a week of earlier gifts from a few other
supporters (paid and settled by the real Lua scripts, at past times, so
that her earnings chart has a history), opens the pages in Debian's
Chromium, sends gifts by tapping the viewer pages as people would, and
saves PNGs under docs/screenshots/:

    .venv/bin/python scripts/screenshots.py [--out docs/screenshots]

Needs /usr/bin/chromium (scripts/install-browser).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import queue
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
            yield _wait_listening(process)
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


def open_page(browser: Browser, url: str, viewport: ViewportSize) -> Page:
    page = browser.new_context(viewport=viewport).new_page()
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


def take(base: str, out: Path) -> None:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        creator = open_page(browser, f"{base}/creator.html?user=carol", DESKTOP)
        wait_live(creator)
        creator.wait_for_function("document.querySelector('#overlay-url').value !== ''")
        overlay = open_page(browser, creator.input_value("#overlay-url"), OBS)
        alice = open_page(browser, f"{base}/viewer.html?room=carol&user=alice", DESKTOP)
        bob = open_page(browser, f"{base}/viewer.html?room=carol&user=bob", PHONE)
        for page in (overlay, alice, bob):
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
        browser.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "docs" / "screenshots")
    args = parser.parse_args()
    if not Path(CHROMIUM).exists():
        raise SystemExit("Chromium is not installed: run scripts/install-browser")
    args.out.mkdir(parents=True, exist_ok=True)
    with demo_server() as (base, redis_url):
        asyncio.run(seed_history(redis_url))
        take(base, args.out)
    for path in sorted(args.out.glob("*.png")):
        print(path.relative_to(REPO_ROOT) if path.is_relative_to(REPO_ROOT) else path)


if __name__ == "__main__":
    main()
