"""`giftstream serve`: flags over the environment, the banner, and a real process
whose embedded Valkey stops with it."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from redis.asyncio import Redis
from websockets.asyncio.client import connect
from websockets.exceptions import WebSocketException

from server.cli import build_parser, main, settings_from
from server.commands.banner import LISTENING, banner, hide_password
from server.commands.help_format import shown_default
from server.ops.embedded import LOCK_NAME, DataDirInUse, EmbeddedValkey
from server.settings import Settings, env_name
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
    # The flag turns on all that the environment's GIFTSTREAM_DEMO does.
    assert (plain.sandbox_payouts, plain.operator_token) == (False, None)
    assert demo.sandbox_payouts is True
    assert demo.operator_token is not None
    assert len(demo.operator_token) >= 16
    monkeypatch.setenv("GIFTSTREAM_DEMO", "1")
    from_env = settings_from(build_parser().parse_args(["serve"]))
    assert (from_env.sandbox_payouts, from_env.dev_tokens) == (True, True)


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


def test_log_format_and_access_log_flags(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GIFTSTREAM_LOG_FORMAT", "json")
    monkeypatch.delenv("GIFTSTREAM_ACCESS_LOG", raising=False)
    from_env = settings_from(build_parser().parse_args(["serve"]))
    assert (from_env.log_format, from_env.access_log) == ("json", False)
    flags = build_parser().parse_args(["serve", "--log-format", "human", "--access-log"])
    assert (settings_from(flags).log_format, settings_from(flags).access_log) == ("human", True)


def test_an_unknown_log_format_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["serve", "--log-format", "pretty"])
    assert exited.value.code == 2
    assert "pretty" in capsys.readouterr().err


@pytest.mark.parametrize("environ", [{}, {"GIFTSTREAM_DEMO": "1"}], ids=["plain", "demo-env"])
def test_reset_without_the_demo_flag_is_refused(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], environ: dict[str, str]
) -> None:
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    assert main(["serve", "--reset", "--redis-url", "redis://127.0.0.1:1/0"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.splitlines() == [
        "giftstream: error: --reset deletes data, so it is refused without --demo "
        "(a demo's data only)"
    ]


def test_reconcile_on_an_unreachable_redis_is_one_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["reconcile", "--redis-url", "redis://127.0.0.1:1/0"]) == 2
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith("giftstream: error: cannot read Redis at redis://127.0.0.1:1/0: ")


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


# ---------------------------------------------------------------- help

# Options whose help states their default in words rather than as the value.
WORDED_DEFAULTS = {("giftstream loadtest", "--signed-viewers"): "watchers are anonymous"}


def every_parser(parser: argparse.ArgumentParser) -> Iterator[argparse.ArgumentParser]:
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for command in action.choices.values():
                yield from every_parser(command)


def help_entries(text: str) -> dict[str, str]:
    """Each option's entry in a --help text, by its first name, blanks collapsed."""
    entries: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in text.splitlines():
        if re.match(r"  \S", line):
            current = entries.setdefault(line.split()[0].rstrip(","), [])
            current.append(line.strip())
        elif line.startswith("   ") and current is not None:
            current.append(line.strip())
        else:
            current = None
    return {name: " ".join(" ".join(lines).split()) for name, lines in entries.items()}


def name_in_help(action: argparse.Action) -> str:
    if action.option_strings:
        return action.option_strings[0]
    return str(action.metavar or action.dest)


def defaults_missing_from_help(parser: argparse.ArgumentParser) -> list[str]:
    """Every option with a default whose --help entry does not give it."""
    missing = []
    for each in every_parser(parser):
        entries = help_entries(each.format_help())
        for action in each._actions:
            if action.default is None or action.default == argparse.SUPPRESS:
                continue
            name = name_in_help(action)
            entry = entries.get(name, "")
            worded = WORDED_DEFAULTS.get((each.prog, name))
            expected = (
                f"default: {worded}"
                if worded
                else f"default:? {re.escape(shown_default(action.default))}(?!\\w)"
            )
            if not re.search(expected, entry):
                missing.append(f"{each.prog} {name}: {entry!r}")
    return missing


def test_every_default_is_in_the_help(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "1000")  # no wrapping inside a value
    assert defaults_missing_from_help(build_parser()) == []


def test_the_check_sees_a_missing_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "1000")
    parser = argparse.ArgumentParser(prog="plain")
    parser.add_argument("--rate", type=float, default=50.0, help="gifts per second")
    assert defaults_missing_from_help(parser) == ["plain --rate: '--rate RATE gifts per second'"]


@pytest.mark.parametrize(
    ("flag", "field"),
    [
        ("--host", "host"),
        ("--port", "port"),
        ("--data-dir", "data_dir"),
        ("--key-prefix", "key_prefix"),
        ("--log-level", "log_level"),
        ("--log-format", "log_format"),
        ("--redis-cluster", "redis_cluster"),
        ("--demo", "demo"),
        ("--access-log", "access_log"),
    ],
)
def test_serve_flags_give_their_settings_default_and_variable(
    monkeypatch: pytest.MonkeyPatch, flag: str, field: str
) -> None:
    monkeypatch.setenv("COLUMNS", "1000")
    [serve] = [p for p in every_parser(build_parser()) if p.prog == "giftstream serve"]
    entry = help_entries(serve.format_help())[flag]
    default = shown_default(getattr(Settings(), field))
    assert f"(default: {default}; {env_name(field)})" in entry


# ---------------------------------------------------------------- banner


def test_banner_lists_demo_pages_and_hides_redis_password() -> None:
    settings = Settings(demo=True, redis_url="redis://:hunter2@db.internal:6379/0")
    text = banner(settings, 8123, embedded=None)
    assert "hunter2" not in text
    assert "redis://:***@db.internal:6379/0" in text
    assert "scripts/demo_client.py --server http://127.0.0.1:8123 watch carol" in text
    assert "demo viewers alice (5,000 coins) and bob (500 coins)" in text
    assert "http://127.0.0.1:8123/creator.html?user=carol" in text
    assert "http://127.0.0.1:8123/metrics" in text
    # No key, no overlay URL (the server reads it from Redis before printing).
    assert "overlay.html" not in text
    assert text.splitlines()[-1] == f"{LISTENING} http://127.0.0.1:8123"


def test_banner_gives_the_overlay_with_its_key() -> None:
    text = banner(Settings(demo=True, redis_url="redis://r:1/0"), 8123, None, overlay_key="K-1")
    assert "http://127.0.0.1:8123/overlay.html?room=carol&key=K-1" in text


def test_banner_on_the_demo_clients_own_default_leaves_out_server() -> None:
    text = banner(Settings(demo=True, redis_url="redis://r:1/0"), 8000, embedded=None)
    assert ".venv/bin/python scripts/demo_client.py watch carol" in text


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
        assert "REDIS_URL=$(head -1 " in server.output()
        # Its password is in the lock file, never on the screen.
        lock = (tmp_path / "valkey" / LOCK_NAME).read_text().split("\n")[0]
        password = urlsplit(lock).password
        assert password
        assert password not in server.output()
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
    assert "/ws/rooms/carol?token=[redacted]" in server.output()
