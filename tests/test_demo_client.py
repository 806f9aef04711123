"""The terminal demo client, run as a newcomer runs it, against a real demo server."""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

from tests.conftest import REPO_ROOT


async def demo_client(*arguments: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, str(REPO_ROOT / "scripts" / "demo_client.py"), *arguments,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip


def lines_of(output: bytes) -> list[dict[str, Any]]:
    return [json.loads(line) for line in output.decode().splitlines() if line.strip()]


async def test_watch_send_and_wallet(server: Any) -> None:
    watcher = await demo_client("--server", server.http, "watch", "carol")
    await asyncio.sleep(1.0)  # let it join before the gifts go out
    sender = await demo_client("--server", server.http, "send", "alice", "carol", "rose", "4",
                               "--times", "2")  # fmt: skip
    sent, errors = await asyncio.wait_for(sender.communicate(), 30)
    assert sender.returncode == 0, errors
    acks = [m for m in lines_of(sent) if m["type"] == "ack"]
    assert [a["balance"] for a in acks] == [4996, 4992]

    await asyncio.sleep(0.5)
    watcher.terminate()
    watched, _ = await watcher.communicate()
    gifts = [m for m in lines_of(watched) if m["type"] == "gift"]
    assert [(g["sender"], g["count"]) for g in gifts] == [("alice", 4), ("alice", 4)]

    wallet = await demo_client("--server", server.http, "wallet", "carol", "--role", "creator")
    shown, _ = await asyncio.wait_for(wallet.communicate(), 30)
    assert lines_of(shown)[-1]["received"] == 8
