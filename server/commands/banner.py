"""The start-up banner: where the server is, its Redis, and what to open."""

from __future__ import annotations

import ipaddress
import logging
from importlib import metadata
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from server.core.wording import plural
from server.ops.embedded import LOCK_NAME, EmbeddedValkey
from server.settings import Settings

log = logging.getLogger(__name__)

LISTENING = "giftstream: listening on"
# The demo's live room, whose creator's overlay key the banner shows.
DEMO_ROOM = "carol"
# The demo pages that ship in client_demo/, by what each is for. The
# overlay's URL carries its key, read from Redis once the server is ready.
DEMO_PAGES = (
    ("viewer alice", "/viewer.html?room=carol&user=alice"),
    ("viewer bob", "/viewer.html?room=carol&user=bob"),
    ("overlay (OBS)", "/overlay.html?room=carol&key={key}"),
    ("creator carol", "/creator.html?user=carol"),
)
CLIENT_DEMO_DIR = Path(__file__).resolve().parents[2] / "client_demo"
API_PATHS = ("/api/catalog", "/livez", "/readyz", "/metrics")
# What scripts/demo_client.py talks to when given no --server.
DEMO_CLIENT_SERVER = "http://127.0.0.1:8000"


def public_base_url(host: str, port: int) -> str:
    """An URL a browser on this machine can open for a server bound to ``host``."""
    browse = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)
    if is_ipv6(browse):
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


def banner(
    settings: Settings,
    port: int,
    embedded: EmbeddedValkey | None,
    *,
    overlay_key: str | None = None,
) -> str:
    base = public_base_url(settings.host, port)
    lines = [f"giftstream {version()}{' (demo mode)' if settings.demo else ''}"]
    lines.append(f"  server:  {base}")
    lines.extend(_redis_lines(settings, embedded))
    if settings.demo:
        lines.extend(_demo_lines(base, overlay_key))
        if settings.operator_token:
            # Made up for this run (demo mode only): a real one is never printed.
            lines.append(f"  operator API token (Authorization: Bearer): {settings.operator_token}")
    lines.append("  api:")
    lines.extend(f"    {base}{path}" for path in API_PATHS)
    lines.append(f"{LISTENING} {base}")
    return "\n".join(lines)


def _demo_lines(base: str, overlay_key: str | None) -> list[str]:
    """The demo pages that ship in client_demo/, and the terminal demo client."""
    from server.demo import DEMO_VIEWERS

    pages = [
        (label, path.format(key=overlay_key))
        for label, path in DEMO_PAGES
        if (CLIENT_DEMO_DIR / path.split("?")[0][1:]).is_file()
        and (overlay_key is not None or "{key}" not in path)
    ]
    width = max((len(label) for label, _ in pages), default=0)
    links = [f"    {label:<{width}}  {base}{path}" for label, path in pages]
    viewers = " and ".join(
        f"{user} ({plural(coins, 'coin')})" for user, coins in DEMO_VIEWERS.items()
    )
    client = ".venv/bin/python scripts/demo_client.py"
    if base != DEMO_CLIENT_SERVER:
        client += f" --server {base}"
    return [
        *(["  open in a browser:", *links] if links else []),
        f"  or try it from a terminal (demo viewers {viewers}, creator {DEMO_ROOM}):",
        f"    {client} watch {DEMO_ROOM}",
        f"    {client} send alice {DEMO_ROOM} rose 5 --times 3",
        f"    {client} wallet {DEMO_ROOM} --role creator",
        "  to start again from fresh demo data, restart with --reset",
    ]


def _redis_lines(settings: Settings, embedded: EmbeddedValkey | None) -> list[str]:
    url = hide_password(settings.redis_url or "")
    if embedded is None:
        return [f"  redis:   {url}"]
    # Its URL carries a password: the second server reads it from the lock
    # file (its owner's alone) rather than from the screen.
    lock = embedded.data_dir / LOCK_NAME
    return [
        f"  redis:   {url} (embedded Valkey, data in {embedded.data_dir})",
        "           a second server can share it (give both the same GIFTSTREAM_TOKEN_SECRET):",
        f"           REDIS_URL=$(head -1 {lock}) giftstream serve --port <another port>",
    ]


def is_ipv6(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).version == 6
    except ValueError:
        return False


def version() -> str:
    try:
        return metadata.version("giftstream")
    except metadata.PackageNotFoundError:
        return "unknown"
