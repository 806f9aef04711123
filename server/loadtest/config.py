"""The settings of one load-test run, and the command-line flags that set them."""

from __future__ import annotations

import argparse
import secrets
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from server.client.frames import SUBPROTOCOL, CodecName


class ConfigError(ValueError):
    """A flag value the run cannot work with; the message says which."""


@dataclass(frozen=True)
class LoadConfig:
    # The server that sets up (users, coins, overlay keys) and takes the first share of sockets.
    base_url: str
    viewers: int = 100
    rooms: tuple[str, ...] = ("carol",)
    senders: int = 10
    rate: float = 50.0
    overlays: int = 1
    duration: float = 10.0
    processes: int = 1
    deflate: bool = False
    codec: CodecName = "msgpack"
    signed_viewers: bool = False
    retry_fraction: float = 0.02
    big_fraction: float = 0.02
    drain_seconds: float = 10.0
    connect_concurrency: int = 100
    server_pid: int | None = None
    json_path: Path | None = None
    plot_path: Path | None = None
    seed: int | None = None
    user_prefix: str = ""
    progress: bool = True
    # Other processes of the same deployment (same Redis, same token secret):
    # sockets are spread over base_url and these, round robin.
    more_urls: tuple[str, ...] = ()

    @property
    def urls(self) -> tuple[str, ...]:
        return (self.base_url, *self.more_urls)

    @property
    def ws_url(self) -> str:
        return self.ws_url_for(0)

    def ws_url_for(self, index: int) -> str:
        """The WebSocket base of the server that socket number ``index`` goes to."""
        parts = urlsplit(self.urls[index % len(self.urls)])
        scheme = "wss" if parts.scheme == "https" else "ws"
        return f"{scheme}://{parts.netloc}{parts.path.rstrip('/')}"

    @property
    def subprotocol(self) -> str:
        return SUBPROTOCOL[self.codec]

    def validate(self) -> None:
        problems = []
        if any(urlsplit(url).scheme not in ("http", "https") for url in self.urls):
            problems.append("the server URL must start with http:// or https://")
        if not self.rooms:
            problems.append("--rooms: at least one room")
        if self.viewers < len(self.rooms):
            problems.append("--viewers: at least one per room")
        if not 0 <= self.senders <= self.viewers:
            problems.append("--senders: 0 to --viewers (senders are viewers who send)")
        if self.senders and self.rate <= 0:
            problems.append("--rate: more than 0 gifts/s")
        if self.duration <= 0:
            problems.append("--duration: more than 0 s")
        if self.processes < 1:
            problems.append("--processes: at least 1")
        if self.overlays < 0:
            problems.append("--overlays: 0 or more")
        for name, value in (("retries", self.retry_fraction), ("big", self.big_fraction)):
            if not 0 <= value < 1:
                problems.append(f"--{name}: a fraction from 0 to less than 1")
        if problems:
            raise ConfigError("; ".join(problems))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "url",
        nargs="?",
        default="http://127.0.0.1:8000",
        help="the server's base URL (default http://127.0.0.1:8000); for several processes "
        "of one deployment, their URLs comma-separated: sockets are spread over them round "
        "robin, and the first one sets up",
    )
    parser.add_argument(
        "--viewers", type=int, default=100, help="room sockets in all, senders included"
    )
    parser.add_argument(
        "--rooms",
        default="carol",
        help="comma-separated room ids (creators who take gifts); viewers and senders are "
        "spread over them evenly (default carol, the demo's live creator)",
    )
    parser.add_argument("--senders", type=int, default=10, help="viewers who send gifts")
    parser.add_argument(
        "--rate", type=float, default=50.0, help="gifts per second from all senders together"
    )
    parser.add_argument("--overlays", type=int, default=1, help="overlay sockets per room")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of sending")
    parser.add_argument(
        "--processes", type=int, default=1, help="worker processes to spread sockets over"
    )
    parser.add_argument(
        "--deflate", action="store_true", help="offer permessage-deflate, as browsers do"
    )
    parser.add_argument("--codec", choices=sorted(SUBPROTOCOL), default="msgpack")
    parser.add_argument(
        "--signed-viewers",
        action="store_true",
        help="give every viewer a token of its own (default: watchers are anonymous)",
    )
    parser.add_argument(
        "--retries",
        type=float,
        default=0.02,
        help="fraction of sends that retry an acknowledged request id (default 0.02)",
    )
    parser.add_argument(
        "--big", type=float, default=0.02, help="fraction of gifts that are big (default 0.02)"
    )
    parser.add_argument(
        "--drain", type=float, default=10.0, help="most seconds to wait for answers at the end"
    )
    parser.add_argument("--server-pid", type=int, help="the server process, for its memory")
    parser.add_argument("--json", type=Path, dest="json_path", help="write the report here")
    parser.add_argument("--plot", type=Path, dest="plot_path", help="write a PNG plot here")
    parser.add_argument("--seed", type=int, help="random seed, for a repeatable gift pattern")
    parser.add_argument("--quiet", action="store_true", help="no progress lines")


def from_arguments(args: argparse.Namespace) -> LoadConfig:
    urls = [url.strip().rstrip("/") for url in args.url.split(",") if url.strip()] or [""]
    config = LoadConfig(
        base_url=urls[0],
        more_urls=tuple(urls[1:]),
        viewers=args.viewers,
        rooms=tuple(room.strip() for room in args.rooms.split(",") if room.strip()),
        senders=args.senders,
        rate=args.rate,
        overlays=args.overlays,
        duration=args.duration,
        processes=args.processes,
        deflate=args.deflate,
        codec="json" if args.codec == "json" else "msgpack",
        signed_viewers=args.signed_viewers,
        retry_fraction=args.retries,
        big_fraction=args.big,
        drain_seconds=args.drain,
        server_pid=args.server_pid,
        json_path=args.json_path,
        plot_path=args.plot_path,
        seed=args.seed,
        user_prefix=new_user_prefix(),
        progress=not args.quiet,
    )
    config.validate()
    return config


def new_user_prefix() -> str:
    """A prefix for this run's user ids, so two runs never share a wallet."""
    return "lt" + secrets.token_hex(4)
