"""Helpers for the page tests: Debian's Chromium driven by Playwright.

Playwright's own browser download cannot work here: it always launches
``/usr/bin/chromium`` (``scripts/install-browser`` installs it). Without it
the page tests skip, except under CI, where they fail: a CI run that skipped
them would pass without testing the pages.
"""

from __future__ import annotations

import os
import re
import struct
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pytest
from playwright.async_api import Browser, BrowserContext, Page, ViewportSize

CHROMIUM = Path("/usr/bin/chromium")
# As root, headless Chromium needs no sandbox; the rest keeps it off the network.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
MISSING = "Chromium is not installed: run scripts/install-browser"
# Chromium logs failed WebSocket URLs whole; tests print the logs on failure.
SECRET_PARAMETER = re.compile(r"\b(token|key)=[^&\s'\"]+")

DESKTOP = ViewportSize(width=1280, height=800)
PHONE = ViewportSize(width=390, height=844)
OBS = ViewportSize(width=1920, height=1080)

Motion = Literal["reduce", "no-preference"]


def require_chromium(chromium: Path = CHROMIUM, environ: Mapping[str, str] = os.environ) -> None:
    """Skip the calling test without Chromium; under CI (``CI=true``), fail it."""
    if chromium.exists():
        return
    if environ.get("CI", "").strip().lower() in ("true", "1"):
        pytest.fail(f"{MISSING} (CI is set: the browser tests must run)", pytrace=False)
    pytest.skip(MISSING)


@dataclass
class Pages:
    """Pages opened for one test, each in a context of its own (own storage)."""

    browser: Browser
    # Not in the repr: page URLs carry overlay keys.
    contexts: list[BrowserContext] = field(default_factory=list, repr=False)
    pages: dict[str, Page] = field(default_factory=dict, repr=False)
    errors: list[str] = field(default_factory=list, repr=False)
    console: list[str] = field(default_factory=list, repr=False)

    async def open(
        self,
        name: str,
        url: str,
        viewport: ViewportSize = DESKTOP,
        *,
        reduced_motion: Motion | None = None,
        beside: str | None = None,
    ) -> Page:
        """``url`` in a context of its own, or in that of the page named ``beside``
        (one browser profile: same storage, same BroadcastChannels)."""
        if beside is None:
            context = await self.browser.new_context(
                viewport=viewport, reduced_motion=reduced_motion
            )
            self.contexts.append(context)
            page = await context.new_page()
        else:
            page = await self.pages[beside].context.new_page()
            await page.set_viewport_size(viewport)
            if reduced_motion is not None:
                await page.emulate_media(reduced_motion=reduced_motion)
        page.on("pageerror", lambda error: self.errors.append(f"{name}: {error}"))
        page.on(
            "console", lambda message: self.console.append(f"{name}: {secretless(message.text)}")
        )
        self.pages[name] = page
        await page.goto(url)
        return page

    async def save_screenshots(self, directory: Path) -> list[Path]:
        saved = []
        for name, page in self.pages.items():
            path = directory / f"{name}.png"
            try:
                await page.screenshot(path=path)
            except Exception:  # a page that died cannot be photographed
                continue
            saved.append(path)
        return saved

    async def close(self) -> None:
        for context in self.contexts:
            await context.close()


def secretless(text: str) -> str:
    """``text`` without the tokens and overlay keys of any URL in it."""
    return SECRET_PARAMETER.sub(r"\1=[redacted]", text)


# ---------------------------------------------------------------- PNG pixels


@dataclass(frozen=True)
class Image:
    """A decoded 8-bit RGB or RGBA PNG (as Chromium writes them)."""

    width: int
    height: int
    channels: int
    rows: list[bytes]

    def pixel(self, x: int, y: int) -> tuple[int, ...]:
        start = x * self.channels
        return tuple(self.rows[y][start : start + self.channels])

    def alpha(self, x: int, y: int) -> int:
        return self.pixel(x, y)[3] if self.channels == 4 else 255

    def alphas(self) -> set[int]:
        return {self.alpha(x, y) for y in range(self.height) for x in range(self.width)}


def decode_png(data: bytes) -> Image:
    """Enough of PNG for screenshots: 8-bit RGB(A), not interlaced."""
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG")
    position, idat = 8, b""
    width = height = channels = 0
    while position < len(data):
        (length,) = struct.unpack(">I", data[position : position + 4])
        kind = data[position + 4 : position + 8]
        body = data[position + 8 : position + 8 + length]
        position += 12 + length
        if kind == b"IHDR":
            width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", body)
            if depth != 8 or colour not in (2, 6) or interlace:
                raise ValueError(f"unsupported PNG: depth {depth}, colour type {colour}")
            channels = 4 if colour == 6 else 3
        elif kind == b"IDAT":
            idat += body
        elif kind == b"IEND":
            break
    return Image(width, height, channels, _unfilter(zlib.decompress(idat), width, height, channels))


def _unfilter(raw: bytes, width: int, height: int, bpp: int) -> list[bytes]:
    stride = width * bpp
    rows: list[bytes] = []
    previous = bytearray(stride)
    for y in range(height):
        start = y * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1 : start + 1 + stride])
        for i in range(stride):
            left = line[i - bpp] if i >= bpp else 0
            up = previous[i]
            corner = previous[i - bpp] if i >= bpp else 0
            if kind == 1:
                line[i] = (line[i] + left) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + up) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 0xFF
            elif kind == 4:
                line[i] = (line[i] + _paeth(left, up, corner)) & 0xFF
        rows.append(bytes(line))
        previous = line
    return rows


def _paeth(a: int, b: int, c: int) -> int:
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    if pa <= pb and pa <= pc:
        return a
    return b if pb <= pc else c
