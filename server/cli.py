"""``giftstream`` on the command line (also ``python -m server``).

``giftstream serve`` reads the settings from the environment, lets flags
override them, starts an embedded Valkey when no Redis is configured, and
runs uvicorn in the same asyncio loop. This module owns the process's
signals: the embedded Valkey must stop after uvicorn has drained, whichever
way serving ends.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import json
import signal
import socket
import sys
from collections.abc import Iterator, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import uvicorn

from server import settings as settings_module
from server.logs import configure_logging, parse_level
from server.money import reconcile
from server.ops.embedded import EmbeddedValkey, EmbeddedValkeyError, running_url
from server.ops.embedded_cluster import EmbeddedCluster
from server.settings import Settings, SettingsError
from server.store.redis_client import WrongRedisMode, check_mode, connect

LISTENING = "giftstream: listening on"
# After SIGTERM, WebSockets get this long to close before uvicorn cancels them.
GRACEFUL_SHUTDOWN_SECONDS = 10
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
DEMO_PAGES = (
    "/viewer.html?room=carol&user=alice",
    "/viewer.html?room=carol&user=bob",
    # The overlay's URL carries a key: the creator page shows it.
    "/creator.html?user=carol",
)
API_PATHS = ("/api/catalog", "/livez", "/readyz", "/metrics")
CLIENT_DEMO_DIR = Path(__file__).resolve().parent.parent / "client_demo"


# uvicorn's websockets-sansio protocol, plus the non-blocking frame writer the
# room fan-out needs; given by import path, as uvicorn's --ws takes it.
WS_PROTOCOL = "server.rooms.ws_protocol:GiftstreamWebSocketProtocol"


class ServeError(Exception):
    """A problem the user can fix (the port is taken, say): one line, no traceback."""


# ---------------------------------------------------------------- arguments


def _version() -> str:
    try:
        return metadata.version("giftstream")
    except metadata.PackageNotFoundError:
        return "unknown"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="giftstream",
        description="Real-time gifting server for live streams.",
    )
    parser.add_argument("--version", action="version", version=f"giftstream {_version()}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    _add_serve(commands)
    _add_reconcile(commands)
    _add_loadtest(commands)
    return parser


def _add_loadtest(commands: Any) -> None:
    # The load generator is a client: imported only when the parser is built.
    from server.loadtest.command import add_parser

    add_parser(commands)


def _add_reconcile(commands: Any) -> None:
    reconcile = commands.add_parser(
        "reconcile",
        help="check the books: every money invariant, from Redis",
        description=(
            "Read every wallet, its ledger and the outboxes, and check the invariants "
            "(docs/money.md). Prints a report; exits 1 on any breach. With no Redis URL it "
            "checks the embedded Valkey that a running `giftstream serve` holds."
        ),
    )
    reconcile.add_argument("--redis-url", help="Redis or Valkey URL (default: REDIS_URL)")
    reconcile.add_argument("--data-dir", type=Path, help="the embedded Valkey's data dir")
    reconcile.add_argument(
        "--redis-cluster",
        action="store_true",
        default=None,
        help="the URL is a seed node of a Redis Cluster (default: GIFTSTREAM_REDIS_CLUSTER)",
    )
    reconcile.add_argument("--key-prefix", help="prefix of every Redis key (default gs)")
    reconcile.add_argument(
        "--settled",
        action="store_true",
        help="also count credits still waiting for settlement as breaches",
    )
    reconcile.add_argument("--json", action="store_true", help="print the report as JSON")


def _add_serve(commands: Any) -> None:
    serve = commands.add_parser(
        "serve",
        help="run a server",
        description=(
            "Run a giftstream server. Every flag overrides its environment variable "
            "(GIFTSTREAM_<NAME>, or REDIS_URL). With no Redis URL, an embedded Valkey "
            "is started with its data under --data-dir."
        ),
    )
    # Defaults are None so that an absent flag leaves the environment's value.
    serve.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to listen on; 0 picks a free one")
    serve.add_argument("--redis-url", help="Redis or Valkey URL; unset: embedded Valkey")
    serve.add_argument(
        "--redis-cluster",
        action="store_true",
        default=None,
        help="the Redis URL is a seed node of a Redis Cluster; with no URL, "
        "start an embedded 3-primary Valkey Cluster",
    )
    serve.add_argument(
        "--demo",
        action="store_true",
        default=None,
        help="demo mode: development tokens and sandbox payments, for a laptop demo",
    )
    serve.add_argument("--data-dir", type=Path, help="where the embedded Valkey keeps its data")
    serve.add_argument("--key-prefix", help="prefix of every Redis key (default gs)")
    serve.add_argument("--log-level", help="DEBUG, INFO, WARNING or ERROR")


def settings_from(args: argparse.Namespace) -> Settings:
    """The environment's settings with the flags laid over them."""
    overrides: dict[str, Any] = {
        "host": args.host,
        "port": args.port,
        "redis_url": args.redis_url,
        "redis_cluster": args.redis_cluster,
        "data_dir": args.data_dir,
        "key_prefix": args.key_prefix,
        "log_level": args.log_level,
    }
    if args.demo:
        overrides.update(demo=True, dev_tokens=True, sandbox_payments=True)
    settings = settings_module.from_environment().with_overrides(**overrides)
    settings.validate()
    return settings


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "reconcile":
        return reconcile_command(args)
    if args.command == "loadtest":
        from server.loadtest.command import main as loadtest_main

        return loadtest_main(args)
    if args.command != "serve":
        parser.print_help()
        return 2
    try:
        settings = settings_from(args)
        parse_level(settings.log_level)
    except (SettingsError, ValueError) as exc:
        parser.error(str(exc))
    try:
        return asyncio.run(serve(settings))
    except (EmbeddedValkeyError, ServeError) as exc:
        print(f"giftstream: error: {exc}", file=sys.stderr, flush=True)
        return 1


# ---------------------------------------------------------------- reconcile


def reconcile_command(args: argparse.Namespace) -> int:
    settings = settings_module.from_environment().with_overrides(
        redis_url=args.redis_url,
        redis_cluster=args.redis_cluster,
        data_dir=args.data_dir,
        key_prefix=args.key_prefix,
    )
    embedded = "cluster/node-0" if settings.redis_cluster else "valkey"
    url = settings.redis_url or running_url(settings.data_dir / embedded)
    if url is None:
        print(
            "giftstream: error: no Redis to check: set REDIS_URL (or --redis-url), "
            "or start `giftstream serve` with its embedded Valkey first",
            file=sys.stderr,
        )
        return 2
    try:
        report = asyncio.run(_reconcile(url, settings, args.settled))
    except WrongRedisMode as exc:
        print(f"giftstream: error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(report.to_dict(), indent=2) if args.json else report.describe())
    return 0 if report.clean else 1


async def _reconcile(url: str, settings: Settings, settled: bool) -> reconcile.Report:
    client = connect(url, cluster=settings.redis_cluster, pool_size=2)
    try:
        # A single-node client on a cluster would check one node and call it clean.
        await check_mode(client, cluster=settings.redis_cluster)
        return await reconcile.check(client, settings.key_prefix, expect_settled=settled)
    finally:
        await client.aclose()


# ---------------------------------------------------------------- serving


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
    """uvicorn's server, minus its signal handling, plus our banner."""

    def __init__(self, config: uvicorn.Config, banner: str) -> None:
        super().__init__(config)
        self.banner = banner

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # uvicorn re-raises a caught SIGTERM once serve() returns, which would
        # kill this process before the embedded Valkey is stopped.
        yield

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            print(self.banner, flush=True)


async def serve(settings: Settings) -> int:
    """Serve until a stop signal; the embedded Valkey, if any, stops last."""
    configure_logging(settings.log_level)
    stopper = _Stopper()
    with _signals_to(stopper):
        if settings.redis_url is not None:
            await _serve_http(settings, stopper, embedded=None)
            return 0
        if settings.redis_cluster:
            await _serve_on_embedded_cluster(settings, stopper)
            return 0
        valkey_dir = settings.data_dir / "valkey"
        async with EmbeddedValkey(valkey_dir, appendfsync=settings.embedded_appendfsync) as valkey:
            if not stopper.requested:
                with_redis = settings.with_overrides(redis_url=valkey.url)
                await _serve_http(with_redis, stopper, embedded=valkey)
    return 0


async def _serve_on_embedded_cluster(settings: Settings, stopper: _Stopper) -> None:
    cluster_dir = settings.data_dir / "cluster"
    async with EmbeddedCluster(cluster_dir, appendfsync=settings.embedded_appendfsync) as cluster:
        print(f"giftstream: embedded Valkey Cluster at {' '.join(cluster.urls)}", flush=True)
        if not stopper.requested:
            with_redis = settings.with_overrides(redis_url=cluster.url)
            await _serve_http(with_redis, stopper, embedded=None)


async def _serve_http(
    settings: Settings, stopper: _Stopper, embedded: EmbeddedValkey | None
) -> None:
    # Imported here so that this module loads without the app (and its
    # import cost) for --help and for tests of the command line itself.
    from server.api.http_protocol import with_head_timeout
    from server.app import create_app

    sock = _bind(settings.host, settings.port)
    config = uvicorn.Config(
        create_app(settings),
        # h11 with a deadline on request heads: uvicorn alone holds a socket that
        # never finishes its request forever (server/api/http_protocol.py).
        http=with_head_timeout(settings.handshake_timeout_seconds),
        ws=WS_PROTOCOL,
        ws_max_size=settings.max_frame_bytes,
        ws_per_message_deflate=False,
        ws_ping_interval=settings.ws_ping_interval_seconds or None,
        ws_ping_timeout=settings.ws_ping_timeout_seconds,
        lifespan="on",
        # Tokens travel in WebSocket query strings: no access log, and our
        # root logger (server.logs) scrubs query strings from uvicorn's lines.
        access_log=False,
        log_config=None,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
    )
    server = _Server(config, banner(settings, sock.getsockname()[1], embedded))
    stopper.attach(server)
    await server.serve(sockets=[sock])


def _bind(host: str, port: int) -> socket.socket:
    """A listening-ready socket, so that port 0 is known before the banner."""
    family = socket.AF_INET6 if _is_ipv6(host) else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ServeError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    sock.set_inheritable(True)
    return sock


def _is_ipv6(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).version == 6
    except ValueError:
        return False


# ---------------------------------------------------------------- banner


def public_base_url(host: str, port: int) -> str:
    """An URL a browser on this machine can open for a server bound to ``host``."""
    browse = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)
    if _is_ipv6(browse):
        browse = f"[{browse}]"
    return f"http://{browse}:{port}"


def hide_password(url: str) -> str:
    """``url`` with any password replaced, fit for a banner or a log."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


def banner(settings: Settings, port: int, embedded: EmbeddedValkey | None) -> str:
    base = public_base_url(settings.host, port)
    lines = [f"giftstream {_version()}{' (demo mode)' if settings.demo else ''}"]
    lines.append(f"  server:  {base}")
    lines.extend(_redis_lines(settings, embedded))
    if settings.demo:
        lines.extend(_demo_lines(base))
    lines.append("  api:")
    lines.extend(f"    {base}{path}" for path in API_PATHS)
    lines.append(f"{LISTENING} {base}")
    return "\n".join(lines)


def _demo_lines(base: str) -> list[str]:
    """The demo pages that ship in client_demo/, and the terminal demo client."""
    pages = [page for page in DEMO_PAGES if (CLIENT_DEMO_DIR / page.split("?")[0][1:]).is_file()]
    lines = ["  open in a browser:", *(f"    {base}{page}" for page in pages)] if pages else []
    client = f".venv/bin/python scripts/demo_client.py --server {base}"
    return [
        *lines,
        "  or try it from a terminal (demo viewers alice and bob, creator carol):",
        f"    {client} watch carol",
        f"    {client} send alice carol rose 5 --times 3",
        f"    {client} wallet carol --role creator",
    ]


def _redis_lines(settings: Settings, embedded: EmbeddedValkey | None) -> list[str]:
    url = hide_password(settings.redis_url or "")
    if embedded is None:
        return [f"  redis:   {url}"]
    return [
        f"  redis:   {url} (embedded Valkey, data in {embedded.data_dir})",
        "           a second server can share it (give both the same GIFTSTREAM_TOKEN_SECRET):",
        f"           REDIS_URL={url} giftstream serve --port <another port>",
    ]
