"""Start-up as a newcomer sees it: `giftstream serve --demo` in a terminal.

The server runs on a pseudo-terminal, as `scripts/serve` does in a shell: its
logs are short human lines there, the banner is printed once the server is
ready and is the last thing start-up prints, and pages connecting to it do
not push the banner away. Off a terminal (a pipe), logs stay JSON lines.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pty
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx

from server.commands.banner import LISTENING
from server.ops.embedded import EmbeddedValkey, free_port
from tests.client import Api, RoomClient
from tests.conftest import REPO_ROOT, SERVER_START_TIMEOUT, server_environment, spawn_server

HUMAN_LOG_LINE = re.compile(r"\d\d:\d\d:\d\d (DEBUG|INFO|WARNING|ERROR|CRITICAL) +\S.*")
ANNOUNCED = re.compile(re.escape(LISTENING) + r" (http://\S+)")


def announced(text: str) -> bool:
    return ANNOUNCED.search(text) is not None


class Terminal:
    """A ``giftstream`` process whose stdin, stdout and stderr are one terminal."""

    def __init__(self, arguments: list[str], env: dict[str, str]) -> None:
        self.main, side = pty.openpty()
        os.set_blocking(self.main, False)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "server", *arguments],
            cwd=REPO_ROOT, env=env, stdin=side, stdout=side, stderr=side,
            start_new_session=True,
        )  # fmt: skip
        os.close(side)
        self.text = ""

    def read(self) -> str:
        """Everything printed so far, with the terminal's line ends made plain."""
        while True:
            try:
                chunk = os.read(self.main, 65536)
            except BlockingIOError:
                break
            except OSError:  # EIO: the process has closed its side
                break
            if not chunk:
                break
            self.text += chunk.decode(errors="replace")
        return self.text.replace("\r\n", "\n")

    async def wait_for(self, done: Callable[[str], bool], within: float) -> str:
        deadline = time.monotonic() + within
        while not done(self.read()):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"not printed within {within:g} s; printed:\n{self.read()}")
            await asyncio.sleep(0.05)
        return self.read()

    async def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        deadline = time.monotonic() + SERVER_START_TIMEOUT
        while self.process.poll() is None and time.monotonic() < deadline:
            self.read()  # a full terminal would block its writes
            await asyncio.sleep(0.05)
        if self.process.poll() is None:
            self.process.kill()
        code = self.process.wait()
        self.read()
        os.close(self.main)
        return code


@contextlib.contextmanager
def stopped_at_the_end(terminal: Terminal) -> Iterator[Terminal]:
    try:
        yield terminal
    finally:
        if terminal.process.poll() is None:
            terminal.process.send_signal(signal.SIGKILL)
            terminal.process.wait()


def after_banner(text: str) -> str:
    return text.split(LISTENING, 1)[1].split("\n", 1)[1]


async def a_page_opens(base: str) -> None:
    """What a viewer page does: fetch itself, get a token, open the room socket."""
    async with httpx.AsyncClient(base_url=base) as http:
        assert (await http.get("/viewer.html")).status_code == 200
    api = Api(base)
    try:
        room = await RoomClient.open(
            "ws" + base.removeprefix("http"), "carol", await api.token("bob")
        )
        await room.of_type("welcome")
        await room.close()
    finally:
        await api.aclose()


async def test_in_a_terminal_the_banner_is_the_last_thing_and_stays_so(tmp_path: Path) -> None:
    arguments = ["serve", "--demo", "--port", "0", "--data-dir", str(tmp_path)]
    terminal = Terminal(arguments, server_environment(tmp_path, {}))
    with stopped_at_the_end(terminal):
        text = await terminal.wait_for(announced, SERVER_START_TIMEOUT)
        found = ANNOUNCED.search(text)
        assert found is not None
        base = found[1]
        # The server was ready before it said so.
        async with httpx.AsyncClient(base_url=base) as http:
            assert (await http.get("/readyz")).status_code == 200
        await a_page_opens(base)
        await asyncio.sleep(1.0)  # what the page caused would be printed by now
        text = terminal.read()
        assert after_banner(text).strip() == ""
        before, banner = text.split("giftstream ", 1)
        assert "Application startup complete." in before
        assert f"{base}/overlay.html?room=carol&key=" in banner
        assert f"{base}/viewer.html?room=carol&user=alice" in banner
        assert f"{base}/creator.html?user=carol" in banner
        assert f"{base}/metrics" in banner
        logs = [line for line in before.splitlines() if line.strip()]
        assert logs
        assert all(HUMAN_LOG_LINE.fullmatch(line) for line in logs), logs
        assert await terminal.stop() == 0
    assert "embedded Valkey stopped" in terminal.read()


async def test_access_log_shows_each_socket_after_the_banner(tmp_path: Path) -> None:
    arguments = ["serve", "--demo", "--port", "0", "--data-dir", str(tmp_path), "--access-log"]
    terminal = Terminal(arguments, server_environment(tmp_path, {}))
    with stopped_at_the_end(terminal):
        found = ANNOUNCED.search(await terminal.wait_for(announced, SERVER_START_TIMEOUT))
        assert found is not None
        await a_page_opens(found[1])
        text = await terminal.wait_for(lambda t: "[accepted]" in after_banner(t), 5.0)
        accepted = [line for line in after_banner(text).splitlines() if "[accepted]" in line]
        assert accepted
        assert accepted[0].endswith('"WebSocket /ws/rooms/carol?token=[redacted]" [accepted]')
        assert re.search(r'"GET /viewer.html HTTP/1.1" 200', after_banner(text))
        assert await terminal.stop() == 0


async def test_the_banner_waits_for_redis(tmp_path: Path) -> None:
    redis_port, http_port = free_port(), free_port()
    env = server_environment(tmp_path, {"demo": False})
    arguments = [
        "serve", "--port", str(http_port),
        "--redis-url", f"redis://:known-in-advance@127.0.0.1:{redis_port}/0",
    ]  # fmt: skip
    server = await spawn_server(arguments, env)
    try:
        base = f"http://127.0.0.1:{http_port}"
        async with httpx.AsyncClient(base_url=base, timeout=5.0) as http:
            deadline = time.monotonic() + SERVER_START_TIMEOUT
            while True:
                with contextlib.suppress(httpx.TransportError):
                    if (await http.get("/livez")).status_code == 200:
                        break
                assert time.monotonic() < deadline, server.output()
                await asyncio.sleep(0.1)
            assert (await http.get("/readyz")).status_code == 503
            await asyncio.sleep(1.0)
            assert LISTENING not in server.output()
            assert "Redis does not answer yet" in server.output()
            valkey_dir = tmp_path / "valkey"
            async with EmbeddedValkey(valkey_dir, port=redis_port, password="known-in-advance"):
                await server.wait_listening()
                assert server.http == base
                assert (await http.get("/readyz")).status_code == 200
                assert await server.stop() == 0
    finally:
        await server.stop()


async def test_a_demo_on_an_unreachable_redis_is_one_line(tmp_path: Path) -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"
    server = await spawn_server(
        ["serve", "--demo", "--port", "0", "--redis-url", url], server_environment(tmp_path, {})
    )
    await asyncio.wait_for(server.process.wait(), SERVER_START_TIMEOUT)
    assert await server.stop() == 1
    assert "Traceback" not in server.output()
    last = server.lines[-1]
    assert last.startswith(f"err| giftstream: error: cannot reach Redis at {url}: "), last
