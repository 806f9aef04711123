"""The real parts the tests run against: a Valkey, and giftstream servers.

- ``redis_url`` (session): ``REDIS_URL`` if set, else an embedded Valkey in a
  temporary directory, started once for the session.
- ``redis``: a ``redis.asyncio.Redis`` on it, bytes in and out.
- ``key_prefix``: a prefix of its own per test, so no two tests share a key.
- ``start_server``: ``await start_server(**settings)`` runs a real
  ``python -m server serve --port 0`` process on that Redis and prefix and
  returns a ``ServerProcess`` once ``/readyz`` answers 200. Call it twice for
  two processes serving the same rooms. Each keyword is a ``Settings`` field,
  passed in its environment variable; demo mode is on unless ``demo=False``.
- ``server``, ``second_server``, ``api``: a default server, a second process
  sharing its Redis and prefix, and a ``tests.client.Api`` on the first.

A server gets ``TOKEN_SECRET`` and ``WEBHOOK_SECRET`` below, so tests can sign
tokens and payment callbacks that it accepts.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
import uuid
from asyncio import FIRST_COMPLETED
from collections.abc import AsyncIterator, Awaitable, Callable, Generator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import httpx
import pytest
from redis.asyncio import Redis

from server.commands.banner import LISTENING
from server.ops.embedded import EmbeddedValkey
from server.settings import ENV_PREFIX, Settings, env_name
from tests.client import Api

TOKEN_SECRET = "giftstream-tests-token-secret-0123456789"
WEBHOOK_SECRET = "giftstream-tests-webhook-secret-0123456789"
REPO_ROOT = Path(__file__).resolve().parent.parent
SERVER_START_TIMEOUT = 30.0
SERVER_STOP_TIMEOUT = 5.0
# Longer than any log line with a traceback folded into it.
OUTPUT_LINE_LIMIT = 1 << 20

StartServer = Callable[..., Awaitable["ServerProcess"]]


# ---------------------------------------------------------------- test outcome

_REPORTS = pytest.StashKey[dict[str, pytest.TestReport]]()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    # Kept so that fixtures can tell, at teardown, whether their test failed.
    report = yield
    item.stash.setdefault(_REPORTS, {})[report.when] = report
    return report


def has_failed(request: pytest.FixtureRequest) -> bool:
    """Whether the test that ``request`` serves has failed so far."""
    reports = request.node.stash.get(_REPORTS, {})
    return any(report.failed for report in reports.values())


# ---------------------------------------------------------------- Redis


@pytest.fixture(scope="session")
async def redis_url(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    from_environment = os.environ.get("REDIS_URL")
    if from_environment:
        yield from_environment
        return
    async with EmbeddedValkey(tmp_path_factory.mktemp("valkey")) as valkey:
        yield valkey.url


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url, decode_responses=False)
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
async def key_prefix(redis_url: str, request: pytest.FixtureRequest) -> AsyncIterator[str]:
    prefix = "t" + uuid.uuid4().hex[:10]
    yield prefix
    # A shared REDIS_URL would fill up with test keys; a failed test's keys
    # are kept for a look.
    if not has_failed(request):
        await _delete_keys(redis_url, prefix)


async def _delete_keys(redis_url: str, prefix: str) -> None:
    client = Redis.from_url(redis_url)
    try:
        batch: list[bytes] = []
        async for key in client.scan_iter(match=f"{prefix}:*", count=500):
            batch.append(key)
            if len(batch) >= 500:
                await client.unlink(*batch)
                batch.clear()
        if batch:
            await client.unlink(*batch)
    finally:
        await client.aclose()


# ---------------------------------------------------------------- servers


@dataclass
class ServerProcess:
    """A ``giftstream serve`` child process and everything it printed."""

    process: asyncio.subprocess.Process
    env: Mapping[str, str] = field(repr=False)
    key_prefix: str | None = None
    http: str = ""
    ws: str = ""
    lines: list[str] = field(default_factory=list, repr=False)
    _listening: asyncio.Future[str] = field(default_factory=asyncio.Future, repr=False)
    _readers: list[asyncio.Task[None]] = field(default_factory=list, repr=False)

    @property
    def jwt_secret(self) -> str:
        return self.env[env_name("jwt_secret")]

    @property
    def webhook_secret(self) -> str:
        return self.env[env_name("webhook_secret")]

    @property
    def returncode(self) -> int | None:
        return self.process.returncode

    def output(self) -> str:
        """Everything it printed so far, a line each, marked ``out|`` or ``err|``."""
        return "\n".join(self.lines)

    def read_output(self) -> None:
        assert self.process.stdout is not None
        assert self.process.stderr is not None
        self._readers = [
            asyncio.create_task(self._read(self.process.stdout, "out")),
            asyncio.create_task(self._read(self.process.stderr, "err")),
        ]

    async def _read(self, stream: asyncio.StreamReader, name: str) -> None:
        # Drained all the time: a full pipe would block the server's writes.
        async for raw in stream:
            line = raw.decode(errors="replace").rstrip("\n")
            self.lines.append(f"{name}| {line}")
            if line.startswith(LISTENING) and not self._listening.done():
                self._listening.set_result(line.removeprefix(LISTENING).strip())

    async def wait_listening(self, within: float = SERVER_START_TIMEOUT) -> None:
        """Until the banner's "listening on" line; sets ``http`` and ``ws``."""
        exited: asyncio.Future[Any] = asyncio.ensure_future(self.process.wait())
        either: set[asyncio.Future[Any]] = {self._listening, exited}
        try:
            done, _ = await asyncio.wait(either, timeout=within, return_when=FIRST_COMPLETED)
        finally:
            exited.cancel()
        if self._listening not in done:
            await self._fail("never printed its 'listening on' line")
        self.http = self._listening.result()
        self.ws = "ws" + self.http.removeprefix("http")

    async def wait_ready(self, within: float = SERVER_START_TIMEOUT) -> None:
        """Until ``GET /readyz`` answers 200."""
        deadline = time.monotonic() + within
        async with httpx.AsyncClient(base_url=self.http, timeout=2.0) as client:
            while not await _ready(client):
                if self.process.returncode is not None:
                    await self._fail("exited before it was ready")
                if time.monotonic() > deadline:
                    await self._fail(f"was not ready within {within:g} s")
                await asyncio.sleep(0.05)

    async def stop(
        self, sig: signal.Signals = signal.SIGTERM, grace: float = SERVER_STOP_TIMEOUT
    ) -> int:
        """Send ``sig``; SIGKILL if still running after ``grace`` seconds. The exit code."""
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(sig)
            try:
                await asyncio.wait_for(self.process.wait(), grace)
            except TimeoutError:
                self.lines.append(f"test| still running {grace:g} s after {sig.name}: killed")
                self.process.kill()
                await self.process.wait()
        # The pipes reach EOF once the process is gone: read them to the end,
        # unless a grandchild kept them open.
        if self._readers:
            _, stuck = await asyncio.wait(self._readers, timeout=grace)
            for reader in stuck:
                reader.cancel()
        return await self.process.wait()

    async def _fail(self, why: str) -> NoReturn:
        await self.stop()
        raise RuntimeError(f"giftstream server {why}; its output:\n{self.output()}")


async def _ready(client: httpx.AsyncClient) -> bool:
    try:
        response = await client.get("/readyz")
    except httpx.TransportError:
        return False
    return response.status_code == 200


def env_text(value: object) -> str:
    """A settings value as the environment variable text that reads back as it."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, tuple | list):
        return ",".join(str(item) for item in value)
    return "" if value is None else str(value)


def server_environment(data_dir: Path, overrides: Mapping[str, object]) -> dict[str, str]:
    """This process's environment minus any giftstream settings, plus the tests' own."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(ENV_PREFIX) and name != "REDIS_URL"
    }
    env.update(
        PYTHONUNBUFFERED="1",
        GIFTSTREAM_JWT_SECRET=TOKEN_SECRET,
        GIFTSTREAM_WEBHOOK_SECRET=WEBHOOK_SECRET,
        GIFTSTREAM_DEMO="1",
        GIFTSTREAM_DATA_DIR=str(data_dir),
    )
    known = set(Settings.__dataclass_fields__)
    for name, value in overrides.items():
        if name not in known:
            raise TypeError(f"start_server: no setting named {name!r}")
        env[env_name(name)] = env_text(value)
    return env


async def spawn_server(arguments: list[str], env: Mapping[str, str]) -> ServerProcess:
    """Start ``python -m server <arguments>``, reading its output as it comes."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "server", *arguments,
        cwd=REPO_ROOT,
        env=dict(env),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        limit=OUTPUT_LINE_LIMIT,
    )  # fmt: skip
    server = ServerProcess(process=process, env=env)
    server.read_output()
    return server


async def launch_server(
    started: list[ServerProcess],
    redis_url: str,
    key_prefix: str,
    data_dir: Path,
    settings: Mapping[str, object],
) -> ServerProcess:
    """``giftstream serve`` on a free port, ready; added to ``started`` first."""
    env = server_environment(data_dir, settings)
    arguments = ["serve", "--port", "0", "--redis-url", redis_url, "--key-prefix", key_prefix]
    server = await spawn_server(arguments, env)
    server.key_prefix = key_prefix
    # Tracked before waiting, so that a server that fails to start is
    # still stopped, and its output still shown.
    started.append(server)
    await server.wait_listening()
    await server.wait_ready()
    return server


async def stop_servers(started: list[ServerProcess], show_output: bool) -> None:
    for server in reversed(started):
        await server.stop()
    if show_output:
        for server in started:
            print(f"----- giftstream server {server.http or '(not listening)'} -----")
            print(server.output())


@pytest.fixture
async def start_server(
    redis_url: str,
    key_prefix: str,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> AsyncIterator[StartServer]:
    started: list[ServerProcess] = []

    async def start(
        *, key_prefix: str = key_prefix, redis_url: str = redis_url, **settings: object
    ) -> ServerProcess:
        if "port" in settings or "host" in settings:
            raise TypeError("start_server: servers always listen on 127.0.0.1, port 0")
        data_dir = tmp_path / f"data-{len(started)}"
        return await launch_server(started, redis_url, key_prefix, data_dir, settings)

    yield start
    await stop_servers(started, has_failed(request))


# ---------------------------------------------------------------- common servers


@pytest.fixture
async def server(start_server: StartServer) -> ServerProcess:
    """A demo server with default settings."""
    return await start_server()


@pytest.fixture
async def second_server(server: ServerProcess, start_server: StartServer) -> ServerProcess:
    """Another process on the same Redis and key prefix as ``server``."""
    return await start_server()


@pytest.fixture
async def api(server: ServerProcess) -> AsyncIterator[Api]:
    """The HTTP API of ``server``."""
    client = Api(server.http)
    try:
        yield client
    finally:
        await client.aclose()


# ------------------------------------------------ servers with special settings


@pytest.fixture
async def unlimited(start_server: StartServer) -> ServerProcess:
    """No practical rate limit: for races that send hundreds of frames at once."""
    return await start_server(
        gift_rate_per_second=100_000,
        gift_rate_burst=100_000,
        user_gift_rate_per_second=100_000,
        user_gift_rate_burst=100_000,
        max_sockets_per_user=1000,
    )


@pytest.fixture
async def unlimited_api(unlimited: ServerProcess) -> AsyncIterator[Api]:
    client = Api(unlimited.http)
    yield client
    await client.aclose()


@pytest.fixture
async def strict(start_server: StartServer) -> ServerProcess:
    """A burst of 5 frames per socket, refilled slowly."""
    return await start_server(gift_rate_per_second=0.2, gift_rate_burst=5)


@pytest.fixture
async def fast_streaks(start_server: StartServer) -> ServerProcess:
    return await start_server(combo_window_ms=400)


@pytest.fixture
async def small_buffers(start_server: StartServer) -> ServerProcess:
    """A 512 KB outgoing bound per socket and a 100 ms coalescing tick."""
    return await start_server(outgoing_buffer_bytes=512 * 1024, coalesce_tick_ms=100)


@pytest.fixture
async def sweeping(start_server: StartServer) -> ServerProcess:
    """A sweeper that looks every 0.2 s at entries of any age."""
    return await start_server(sweep_interval_seconds=0.2, sweep_min_age_seconds=0)
