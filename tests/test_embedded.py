"""The embedded Valkey: the real valkey-server binary, started and stopped for real."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from redis.asyncio import Redis
from redis.exceptions import AuthenticationError

from server.ops.embedded import (
    LOCK_NAME,
    LOG_NAME,
    DataDirInUse,
    EmbeddedValkey,
    ValkeyStartError,
    free_port,
)
from tests.conftest import REPO_ROOT


def client_of(valkey: EmbeddedValkey) -> Redis:
    return Redis(host="127.0.0.1", port=valkey.port, password=valkey.password)


def process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture
async def valkey(tmp_path: Path) -> AsyncIterator[EmbeddedValkey]:
    async with EmbeddedValkey(tmp_path / "valkey") as running:
        yield running


async def test_answers_ping_on_loopback(valkey: EmbeddedValkey) -> None:
    client = client_of(valkey)
    try:
        assert await client.ping() is True
        assert await client.config_get("bind") == {"bind": "127.0.0.1"}
        assert await client.config_get("protected-mode") == {"protected-mode": "yes"}
    finally:
        await client.aclose()
    assert valkey.url == f"redis://:{valkey.password}@127.0.0.1:{valkey.port}/0"


async def test_it_asks_for_a_password_that_no_command_line_shows(
    valkey: EmbeddedValkey,
) -> None:
    stranger = Redis(host="127.0.0.1", port=valkey.port)
    try:
        with pytest.raises(AuthenticationError):
            await stranger.ping()
    finally:
        await stranger.aclose()
    command_line = await asyncio.to_thread(Path(f"/proc/{valkey.pid}/cmdline").read_bytes)
    assert valkey.password.encode() not in command_line
    # The lock file holds the URL, password and all: its owner's alone.
    mode = (await asyncio.to_thread((valkey.data_dir / LOCK_NAME).stat)).st_mode
    assert mode & 0o077 == 0


async def test_url_works_with_redis_from_url(valkey: EmbeddedValkey) -> None:
    client = Redis.from_url(valkey.url)
    try:
        assert await client.ping() is True
    finally:
        await client.aclose()


async def test_appends_every_write_to_the_aof_by_default(valkey: EmbeddedValkey) -> None:
    client = client_of(valkey)
    try:
        config = await client.config_get("append*")
        assert config["appendonly"] == "yes"
        assert config["appendfsync"] == "always"
        assert await client.config_get("save") == {"save": ""}
    finally:
        await client.aclose()


async def test_appendfsync_can_be_chosen(tmp_path: Path) -> None:
    async with EmbeddedValkey(tmp_path, appendfsync="everysec") as valkey:
        client = client_of(valkey)
        try:
            assert await client.config_get("appendfsync") == {"appendfsync": "everysec"}
        finally:
            await client.aclose()


def test_unknown_appendfsync_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="appendfsync"):
        EmbeddedValkey(tmp_path, appendfsync="sometimes")


async def test_keeps_its_files_in_the_data_dir_it_creates(tmp_path: Path) -> None:
    data_dir = tmp_path / "not" / "yet" / "there"
    async with EmbeddedValkey(data_dir) as valkey:
        client = client_of(valkey)
        try:
            await client.set("k", "v")
            assert await client.config_get("dir") == {"dir": str(data_dir)}
        finally:
            await client.aclose()
    names = {path.name for path in data_dir.iterdir()}
    assert {LOG_NAME, LOCK_NAME, "appendonlydir"} <= names
    assert any((data_dir / "appendonlydir").glob("*.aof"))
    assert "Ready to accept connections" in (data_dir / LOG_NAME).read_text()


async def test_data_survives_a_restart_on_the_same_dir(tmp_path: Path) -> None:
    async with EmbeddedValkey(tmp_path) as first:
        client = client_of(first)
        await client.set("balance", 1234)
        await client.rpush("ledger", "a", "b")
        await client.aclose()
    # A new port, the same AOF: everything is replayed.
    async with EmbeddedValkey(tmp_path) as second:
        client = client_of(second)
        try:
            assert await client.get("balance") == b"1234"
            assert await client.lrange("ledger", 0, -1) == [b"a", b"b"]
        finally:
            await client.aclose()


async def test_a_second_valkey_on_the_same_dir_is_refused(valkey: EmbeddedValkey) -> None:
    second = EmbeddedValkey(valkey.data_dir)
    with pytest.raises(DataDirInUse) as refused:
        await second.start()
    message = str(refused.value)
    assert f"REDIS_URL={valkey.url}" in message
    assert str(valkey.pid) in message
    assert not second.running
    # The first one is untouched.
    client = client_of(valkey)
    try:
        assert await client.ping() is True
    finally:
        await client.aclose()


async def test_the_lock_is_free_again_after_stop(tmp_path: Path) -> None:
    async with EmbeddedValkey(tmp_path):
        pass
    async with EmbeddedValkey(tmp_path) as again:
        assert again.running


async def test_stop_ends_the_process(tmp_path: Path) -> None:
    valkey = EmbeddedValkey(tmp_path)
    await valkey.start()
    pid = valkey.pid
    assert process_exists(pid)
    await valkey.stop()
    assert not valkey.running
    assert not process_exists(pid)
    assert "ready to exit" in (tmp_path / LOG_NAME).read_text()


async def test_a_given_port_is_used(tmp_path: Path) -> None:
    port = free_port()
    async with EmbeddedValkey(tmp_path, port=port) as valkey:
        assert valkey.port == port
        assert valkey.url == f"redis://:{valkey.password}@127.0.0.1:{port}/0"


async def test_a_taken_port_fails_with_the_log_tail(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        valkey = EmbeddedValkey(tmp_path, port=taken.getsockname()[1])
        with pytest.raises(ValkeyStartError, match="Address already in use"):
            await valkey.start()
    assert not valkey.running
    # The failed start let go of the lock.
    async with EmbeddedValkey(tmp_path) as retry:
        assert retry.running


def test_free_port_can_be_bound() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", free_port()))


def test_serve_help_documents_demo() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "server", "serve", "--help"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "--demo" in result.stdout
    assert "--redis-url" in result.stdout


def resp(*parts: str) -> bytes:
    return f"*{len(parts)}\r\n".encode() + b"".join(
        f"${len(part)}\r\n{part}\r\n".encode() for part in parts
    )


async def test_a_transaction_torn_by_a_crash_never_comes_back(tmp_path: Path) -> None:
    # What Valkey killed while writing a script's effects leaves at the end
    # of its AOF: MULTI, whole commands, then a command cut short.
    data = tmp_path / "valkey"
    script = "redis.call('SET', KEYS[1], ARGV[1]); return 1"
    async with EmbeddedValkey(data) as valkey:
        client = client_of(valkey)
        await client.eval(script, 1, "before", "1")
        await client.aclose()
    incr = next((data / "appendonlydir").glob("*.incr.aof"))
    with incr.open("ab") as aof:
        aof.write(resp("MULTI") + resp("SET", "torn", "1") + resp("SET", "half")[:-6])
    for step in ("after-1", "after-2"):
        # A script after the restart appends its own MULTI ... EXEC; loaded
        # again, that EXEC must not complete the torn transaction.
        async with EmbeddedValkey(data) as valkey:
            client = client_of(valkey)
            assert await client.get("before") == b"1"
            assert await client.exists("torn", "half") == 0, step
            await client.eval(script, 1, step, "1")
            await client.aclose()
    async with EmbeddedValkey(data) as valkey:
        client = client_of(valkey)
        assert await client.exists("torn", "half") == 0
        assert await client.mget("after-1", "after-2") == [b"1", b"1"]
        await client.aclose()
