"""The nginx configuration of docs/deployment.md, run for real.

The test takes the ```nginx block from the deployment page as it is, puts
loopback addresses in for its two upstream servers, its ``listen`` port and
its log file, starts nginx with it in front of two ``giftstream serve``
processes, and sends a gift through it over WebSockets: one viewer lands on
each process (least connections), and the other one sees the gift.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from server.ops.embedded import free_port
from tests.client import Api, RoomClient
from tests.conftest import REPO_ROOT, ServerProcess, StartServer

NGINX = shutil.which("nginx") or next(
    (path for path in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if os.access(path, os.X_OK)),
    None,
)
DOC = REPO_ROOT / "docs" / "deployment.md"
UPSTREAM = re.compile(r"server 10\.0\.0\.\d+:8000")

pytestmark = pytest.mark.skipif(
    NGINX is None,
    reason="nginx is not installed: scripts/install-nginx installs Debian's package (CI does)",
)


def documented_config() -> str:
    text = DOC.read_text(encoding="utf-8")
    blocks = re.findall(r"```nginx\n(.*?)```", text, flags=re.DOTALL)
    assert len(blocks) == 1, "docs/deployment.md should hold exactly one nginx block"
    return str(blocks[0])


def render(config: str, upstreams: list[str], port: int, run_dir: Path) -> str:
    """The documented block with loopback addresses, inside a minimal nginx.conf."""
    assert len(UPSTREAM.findall(config)) == len(upstreams)
    for upstream in upstreams:
        config = UPSTREAM.sub(f"server {upstream}", config, count=1)
    assert "    listen 80;" in config
    config = config.replace("    listen 80;", f"    listen 127.0.0.1:{port};")
    config = re.sub(r"access_log \S+", f"access_log {run_dir}/access.log", config)
    temp = "\n".join(
        f"    {kind}_temp_path {run_dir}/{kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    user = "user root;\n" if os.geteuid() == 0 else ""
    return (
        f"{user}daemon off;\nworker_processes 1;\npid {run_dir}/nginx.pid;\n"
        f"error_log {run_dir}/error.log warn;\n"
        "events { worker_connections 256; }\n"
        f"http {{\n{temp}\n{config}\n}}\n"
    )


async def until_proxying(base: str, within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    async with httpx.AsyncClient(base_url=base, timeout=2.0) as client:
        while True:
            try:
                if (await client.get("/readyz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError("nginx did not proxy /readyz")
            await asyncio.sleep(0.05)


@dataclass
class Proxied:
    base: str
    servers: tuple[ServerProcess, ServerProcess]


@pytest.fixture
async def nginx(start_server: StartServer, tmp_path: Path) -> AsyncIterator[Proxied]:
    assert NGINX is not None
    first, second = await asyncio.gather(start_server(), start_server())
    upstreams = [server.http.removeprefix("http://") for server in (first, second)]
    port = free_port()
    conf = tmp_path / "nginx.conf"
    conf.write_text(render(documented_config(), upstreams, port, tmp_path), encoding="utf-8")
    check = await asyncio.create_subprocess_exec(
        NGINX, "-t", "-p", str(tmp_path), "-c", str(conf),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    output, _ = await check.communicate()
    assert await check.wait() == 0, output.decode()
    process = await asyncio.create_subprocess_exec(
        NGINX, "-p", str(tmp_path), "-c", str(conf),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        await until_proxying(base)
        yield Proxied(base, (first, second))
    finally:
        process.terminate()  # SIGTERM: nginx's fast shutdown
        try:
            await asyncio.wait_for(process.wait(), 10)
        except TimeoutError:
            process.kill()
            await process.wait()


async def accepted_by_each(servers: tuple[ServerProcess, ...]) -> list[int]:
    """Room sockets each server has logged as accepted (its log lines come a bit later)."""
    deadline = time.monotonic() + 5
    while True:
        counts = [
            sum("WebSocket /ws/rooms/" in line and "[accepted]" in line for line in server.lines)
            for server in servers
        ]
        if all(counts) or time.monotonic() > deadline:
            return counts
        await asyncio.sleep(0.05)


async def test_a_gift_through_nginx_reaches_a_viewer_on_the_other_process(
    nginx: Proxied, tmp_path: Path
) -> None:
    api = Api(nginx.base)
    try:
        viewer = await api.token("nadia")
        assert (await api.buy(viewer, "coins_330"))["status"] == "ok"
        ws = "ws" + nginx.base.removeprefix("http")
        sender = await RoomClient.open(ws, "carol", viewer)
        await sender.of_type("welcome")
        watcher = await RoomClient.open(ws, "carol")
        await watcher.of_type("welcome")
        # Least connections: the second socket went to the other process.
        assert await accepted_by_each(nginx.servers) == [1, 1]

        ack = await sender.gift("through-nginx", "hand_hearts", 1)
        assert (ack["type"], ack["balance"]) == ("ack", 230)
        seen = await watcher.of_type("gift")
        assert (seen["seq"], seen["sender"]) == (ack["seq"], "nadia")
        await sender.close()
        await watcher.close()
    finally:
        await api.aclose()
    # Token-bearing room URLs never reach nginx's access log.
    log = (tmp_path / "access.log").read_text(encoding="utf-8")
    assert "/ws/rooms/carol" in log
    assert viewer not in log
    assert "token=" not in log
