"""`giftstream serve`: flags over the environment, the banner, and a real process
whose embedded Valkey stops with it."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from redis.asyncio import Redis
from websockets.asyncio.client import connect
from websockets.exceptions import WebSocketException

from server.cli import LISTENING, banner, build_parser, hide_password, main, settings_from
from server.ops.embedded import LOCK_NAME, DataDirInUse, EmbeddedValkey
from server.settings import Settings
from tests.conftest import (
    REPO_ROOT,
    SERVER_START_TIMEOUT,
    ServerProcess,
    StartServer,
    server_environment,
    spawn_server,
)

# ---------------------------------------------------------------- settings


def test_flags_override_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GIFTSTREAM_PORT", "9000")
    monkeypatch.setenv("GIFTSTREAM_KEY_PREFIX", "from-env")
    monkeypatch.setenv("REDIS_URL", "redis://env:1/0")
    args = build_parser().parse_args(["serve", "--port", "0", "--redis-url", "redis://flag:2/0"])
    settings = settings_from(args)
    assert settings.port == 0
    assert settings.redis_url == "redis://flag:2/0"
    assert settings.key_prefix == "from-env"


def test_demo_flag_turns_on_dev_tokens_and_sandbox(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GIFTSTREAM_DEMO", raising=False)
    plain = settings_from(build_parser().parse_args(["serve"]))
    demo = settings_from(build_parser().parse_args(["serve", "--demo"]))
    assert (plain.demo, plain.dev_tokens, plain.sandbox_payments) == (False, False, False)
    assert (demo.demo, demo.dev_tokens, demo.sandbox_payments) == (True, True, True)


def test_no_demo_flag_keeps_the_environments_demo(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GIFTSTREAM_DEMO", "1")
    assert settings_from(build_parser().parse_args(["serve"])).demo is True


def test_bad_log_level_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["serve", "--log-level", "LOUD"])
    assert exited.value.code == 2
    assert "LOUD" in capsys.readouterr().err


def test_invalid_settings_are_a_usage_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("GIFTSTREAM_REVENUE_SHARE_PERCENT", "150")
    with pytest.raises(SystemExit) as exited:
        main(["serve"])
    assert exited.value.code == 2
    assert "revenue_share_percent" in capsys.readouterr().err


def test_no_command_prints_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "serve" in capsys.readouterr().out


def test_a_taken_port_is_one_clear_line(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        arguments = ["serve", "--port", str(port), "--redis-url", "redis://127.0.0.1:1/0"]
        result = subprocess.run(
            [sys.executable, "-m", "server", *arguments],
            cwd=REPO_ROOT,
            env=server_environment(tmp_path, {}),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last == f"giftstream: error: cannot listen on 127.0.0.1:{port}: Address already in use"


# ---------------------------------------------------------------- banner


def test_banner_lists_demo_pages_and_hides_redis_password() -> None:
    settings = Settings(demo=True, redis_url="redis://:hunter2@db.internal:6379/0")
    text = banner(settings, 8123, embedded=None)
    assert "hunter2" not in text
    assert "redis://:***@db.internal:6379/0" in text
    # The pages ship with the browser-client work; until then, the terminal client.
    assert "scripts/demo_client.py --server http://127.0.0.1:8123 watch carol" in text
    assert text.splitlines()[-1] == f"{LISTENING} http://127.0.0.1:8123"


def test_banner_gives_a_browsable_address_for_a_wildcard_host() -> None:
    text = banner(Settings(host="0.0.0.0", redis_url="redis://r:1/0"), 80, embedded=None)
    assert text.splitlines()[-1] == f"{LISTENING} http://127.0.0.1:80"
    assert "viewer.html" not in text


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://localhost:6379/0", "redis://localhost:6379/0"),
        ("redis://user:pw@h:1/2", "redis://user:***@h:1/2"),
        ("rediss://:pw@h:1", "rediss://:***@h:1"),
    ],
)
def test_hide_password(url: str, shown: str) -> None:
    assert hide_password(url) == shown


# ---------------------------------------------------------------- real processes


def embedded_serve(data_dir: Path) -> tuple[list[str], dict[str, str]]:
    """Arguments and environment for a server that starts its own Valkey."""
    arguments = ["serve", "--port", "0", "--data-dir", str(data_dir)]
    return arguments, server_environment(data_dir, {})


async def wait_for_exit(server: ServerProcess) -> int:
    await asyncio.wait_for(server.process.wait(), SERVER_START_TIMEOUT)
    return await server.stop()


async def start_when_free(data_dir: Path, within: float = 10.0) -> EmbeddedValkey:
    """An embedded Valkey on ``data_dir`` once whoever holds it has let go."""
    deadline = time.monotonic() + within
    while True:
        valkey = EmbeddedValkey(data_dir)
        try:
            await valkey.start()
        except DataDirInUse:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.1)
        else:
            return valkey


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
async def test_serve_starts_and_stops_its_embedded_valkey(tmp_path: Path, sig: int) -> None:
    server = await spawn_server(*embedded_serve(tmp_path))
    try:
        await server.wait_listening()
        await server.wait_ready()
        assert "embedded Valkey" in server.output()
        assert "REDIS_URL=redis://127.0.0.1:" in server.output()
    finally:
        code = await server.stop(signal.Signals(sig))
    assert code == 0, server.output()
    # The Valkey held the data dir's lock until it exited, so a new one can
    # start there at once; and what the demo wrote came back from the AOF.
    async with EmbeddedValkey(tmp_path / "valkey") as again:
        client = Redis.from_url(again.url)
        try:
            assert await client.dbsize() > 0
        finally:
            await client.aclose()


async def test_a_killed_servers_valkey_keeps_the_data_dir(
    tmp_path: Path, start_server: StartServer
) -> None:
    first = await spawn_server(*embedded_serve(tmp_path))
    await first.wait_listening()
    await first.stop(signal.SIGKILL)
    url, pid, *_ = (tmp_path / "valkey" / LOCK_NAME).read_text().split("\n")
    try:
        second = await spawn_server(*embedded_serve(tmp_path))
        assert await wait_for_exit(second) == 1
        assert f"REDIS_URL={url}" in second.output()
        # Which is how to use it: a server pointed at that URL works.
        shared = await start_server(redis_url=url)
        assert await shared.stop() == 0
    finally:
        os.kill(int(pid), signal.SIGTERM)
    freed = await start_when_free(tmp_path / "valkey")
    await freed.stop()


async def test_server_logs_json_lines_without_tokens(start_server: StartServer) -> None:
    server = await start_server()
    url = f"{server.ws}/ws/rooms/carol?token=NOT.A.REAL.TOKEN"
    try:
        async with connect(url, open_timeout=5) as socket:
            await asyncio.wait_for(socket.recv(), 5)
    except (WebSocketException, TimeoutError, OSError):
        pass  # refused or closed: either way uvicorn has logged the path
    await server.stop()
    log_lines = [line.removeprefix("err| ") for line in server.lines if line.startswith("err| ")]
    assert log_lines
    for line in log_lines:
        assert isinstance(json.loads(line), dict), line
    assert "NOT.A.REAL.TOKEN" not in server.output()
    assert "/ws/rooms/carol?[redacted]" in server.output()
