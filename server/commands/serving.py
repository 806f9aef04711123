"""``giftstream serve``: Redis (embedded or given), uvicorn, signals, then the banner.

This module owns the process's signals: the embedded Valkey must stop after
uvicorn has drained, whichever way serving ends. The banner is printed once
the server listens and its Redis answers, as the last line of start-up."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

import uvicorn
from redis.exceptions import RedisClusterException, RedisError

from server.commands.banner import DEMO_ROOM, banner, hide_password, is_ipv6
from server.commands.demo_data import prepare_demo_redis, wipe_embedded_data
from server.commands.errors import ServeError
from server.errors import Unavailable
from server.logs import configure_logging
from server.ops.embedded import EmbeddedValkey
from server.ops.embedded_cluster import EmbeddedCluster
from server.ops.socket_faults import handle_loop_exception, raise_file_limit
from server.rooms.overlay_keys import OverlayKeys
from server.settings import Settings
from server.store.redis_client import connect

log = logging.getLogger(__name__)

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
DEFAULT_ALLOWED_HOSTS = Settings.__dataclass_fields__["allowed_hosts"].default

# After SIGTERM, WebSockets get this long to close before uvicorn cancels them.
GRACEFUL_SHUTDOWN_SECONDS = 10
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
# How often the banner's wait for an unreachable Redis asks again.
READY_RETRY_SECONDS = 0.5

# uvicorn's websockets-sansio protocol, plus the non-blocking frame writer the
# room fan-out needs; given by import path, as uvicorn's --ws takes it.
WS_PROTOCOL = "server.rooms.ws_protocol:GiftstreamWebSocketProtocol"


class _Stopper:
    """Turns SIGINT, SIGTERM and SIGHUP into a graceful uvicorn shutdown."""

    def __init__(self) -> None:
        self.requested = False
        self.server: uvicorn.Server | None = None

    def __call__(self, sig: signal.Signals) -> None:
        self.requested = True
        if self.server is not None:
            # A second Ctrl-C forces uvicorn to stop waiting for connections.
            self.server.handle_exit(sig, None)

    def attach(self, server: uvicorn.Server) -> None:
        self.server = server
        server.should_exit = self.requested


@contextlib.contextmanager
def _signals_to(stopper: _Stopper) -> Iterator[None]:
    loop = asyncio.get_running_loop()
    for sig in STOP_SIGNALS:
        loop.add_signal_handler(sig, stopper, sig)
    try:
        yield
    finally:
        for sig in STOP_SIGNALS:
            loop.remove_signal_handler(sig)


class _Server(uvicorn.Server):
    """uvicorn's server, minus its signal handling, plus our banner once ready."""

    def __init__(
        self, config: uvicorn.Config, announce: Callable[[], Coroutine[Any, Any, None]]
    ) -> None:
        super().__init__(config)
        self._announce = announce
        self._announcing: asyncio.Task[None] | None = None

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # uvicorn re-raises a caught SIGTERM once serve() returns, which would
        # kill this process before the embedded Valkey is stopped.
        yield

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        # A task: requests are served meanwhile, and a Redis that is down
        # only delays the banner.
        if self.started and not self.should_exit:
            self._announcing = asyncio.create_task(self._announce())

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        if self._announcing is not None:
            self._announcing.cancel()
            await asyncio.gather(self._announcing, return_exceptions=True)
        await super().shutdown(sockets)


async def serve(settings: Settings, *, reset: bool = False) -> int:
    """Serve until a stop signal; the embedded Valkey, if any, stops last."""
    configure_logging(
        settings.log_level, log_format=settings.log_format, access_log=settings.access_log
    )
    if reset and not settings.demo:
        raise ServeError("--reset deletes data, so it is refused outside demo mode")
    warn_if_unreachable_by_name(settings)
    # Each socket is a file: as many as the system allows, and said.
    log.info("open file limit", extra={"files": raise_file_limit()})
    asyncio.get_running_loop().set_exception_handler(handle_loop_exception)
    stopper = _Stopper()
    # Bound first: a taken port stops the start before any data is touched.
    sock = _bind(settings.host, settings.port)
    with contextlib.closing(sock), _signals_to(stopper):
        if settings.redis_url is not None:
            if settings.demo:
                await prepare_demo_redis(settings, reset=reset)
            await _serve_http(settings, stopper, sock, embedded=None)
            return 0
        if settings.redis_cluster:
            await _serve_on_embedded_cluster(settings, stopper, sock, reset)
            return 0
        valkey_dir = settings.data_dir / "valkey"
        if reset and wipe_embedded_data(valkey_dir):
            log.info("--reset: deleted the demo's data", extra={"data_dir": str(valkey_dir)})
        valkey = EmbeddedValkey(valkey_dir, appendfsync=settings.embedded_appendfsync)
        # Supervised: a Valkey that dies is started again on the same URL.
        await valkey.start(supervise=True)
        try:
            if not stopper.requested:
                with_redis = settings.with_overrides(redis_url=valkey.url)
                await _serve_http(with_redis, stopper, sock, embedded=valkey)
        finally:
            await valkey.stop()
    return 0


async def _serve_on_embedded_cluster(
    settings: Settings, stopper: _Stopper, sock: socket.socket, reset: bool
) -> None:
    cluster_dir = settings.data_dir / "cluster"
    async with EmbeddedCluster(cluster_dir, appendfsync=settings.embedded_appendfsync) as cluster:
        print(f"giftstream: embedded Valkey Cluster at {' '.join(cluster.urls)}", flush=True)
        if not stopper.requested:
            with_redis = settings.with_overrides(redis_url=cluster.url)
            if reset:
                # Its nodes each hold a lock and a slice of the slots: their
                # keys are deleted through the cluster rather than their files.
                await prepare_demo_redis(with_redis, reset=True)
            await _serve_http(with_redis, stopper, sock, embedded=None)


async def _serve_http(
    settings: Settings, stopper: _Stopper, sock: socket.socket, embedded: EmbeddedValkey | None
) -> None:
    # Imported here so that this module loads without the app (and its
    # import cost) for --help and for tests of the command line itself.
    from server.api.http_protocol import configured
    from server.app import create_app
    from server.ops.connection_caps import ConnectionCaps

    connection_caps = ConnectionCaps(
        settings.max_connections_per_ip, settings.connection_cap_exempt
    )

    config = uvicorn.Config(
        create_app(settings),
        # h11 with a deadline on request heads (uvicorn alone holds a socket
        # that never finishes its request forever) and a cap on connections
        # per client address (server/api/http_protocol.py).
        http=configured(settings.handshake_timeout_seconds, connection_caps),
        ws=WS_PROTOCOL,
        ws_max_size=settings.max_frame_bytes,
        ws_per_message_deflate=False,
        ws_ping_interval=settings.ws_ping_interval_seconds or None,
        ws_ping_timeout=settings.ws_ping_timeout_seconds,
        lifespan="on",
        # Tokens travel in WebSocket query strings: our root logger
        # (server.logs) scrubs query strings from every line uvicorn writes,
        # access lines included when they are asked for.
        access_log=settings.access_log,
        log_config=None,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
    )
    port = sock.getsockname()[1]

    async def announce() -> None:
        overlay_key = await _when_redis_answers(settings)
        print(banner(settings, port, embedded, overlay_key=overlay_key), flush=True)

    server = _Server(config, announce)
    stopper.attach(server)
    await server.serve(sockets=[sock])


async def _when_redis_answers(settings: Settings) -> str | None:
    """Wait until Redis answers; then the demo room's overlay key (None outside the demo)."""
    url = settings.redis_url or ""
    client = connect(url, cluster=settings.redis_cluster, pool_size=2)
    warned = False
    try:
        while True:
            try:
                await client.ping()
                if not settings.demo:
                    return None
                # Made on first use, as the creator page would.
                return await OverlayKeys(client, settings.key_prefix).current(DEMO_ROOM)
            except (RedisError, RedisClusterException, OSError, Unavailable) as exc:
                if not warned:
                    log.warning(
                        "Redis does not answer yet: /readyz says 503, and the banner "
                        "follows once it answers",
                        extra={"redis": hide_password(url), "error": str(exc)},
                    )
                    warned = True
            await asyncio.sleep(READY_RETRY_SECONDS)
    finally:
        await client.aclose()


def _bind(host: str, port: int) -> socket.socket:
    """A listening-ready socket, so that port 0 is known before the banner."""
    family = socket.AF_INET6 if is_ipv6(host) else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ServeError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    sock.set_inheritable(True)
    return sock


def warn_if_unreachable_by_name(settings: Settings) -> None:
    """Listening beyond this machine while answering only for its own names
    turns every outside request into 400 bad_host: say so at start."""
    if settings.host in LOOPBACK_HOSTS or settings.allowed_hosts != DEFAULT_ALLOWED_HOSTS:
        return
    log.warning(
        "listening on %s but answering only for Host %s: list the public names "
        "in GIFTSTREAM_ALLOWED_HOSTS",
        settings.host,
        ", ".join(settings.allowed_hosts),
    )
