"""The embedded Valkey is supervised: killed, it is started again on the same
URL and data, and a gift storm resumes with nothing lost.

Before, a killed embedded Valkey stayed dead: /readyz said 503 for ever
while /livez said 200. SIGKILL here tests crash consistency (the OS keeps
what Valkey wrote), with the AOF fsynced on every write.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import time
from pathlib import Path

import httpx
from redis.asyncio import Redis

from server.ops.embedded import LOCK_NAME, EmbeddedValkey
from tests.client import Api, RoomClient
from tests.conftest import SERVER_START_TIMEOUT, server_environment, spawn_server
from tests.test_gift_flow import assert_books_balance


async def answers(url: str, within: float = 15.0) -> Redis:
    """A client of ``url`` once it answers PING."""
    deadline = time.monotonic() + within
    while True:
        client = Redis.from_url(url)
        try:
            await client.ping()
            return client
        except Exception:
            await client.aclose()
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.05)


async def test_a_killed_valkey_comes_back_on_the_same_url_with_its_data(tmp_path: Path) -> None:
    valkey = EmbeddedValkey(tmp_path / "valkey")
    await valkey.start(supervise=True)
    try:
        url, first_pid = valkey.url, valkey.pid
        client = Redis.from_url(url)
        await client.set("kept", "yes")
        await client.aclose()
        os.kill(first_pid, signal.SIGKILL)
        again = await answers(url)
        assert await again.get("kept") == b"yes"
        await again.aclose()
        assert valkey.pid != first_pid
        # The lock file names the new process, for a second server or reconcile.
        lock = tmp_path / "valkey" / LOCK_NAME
        for _ in range(100):
            if lock.read_text().split("\n")[1] == str(valkey.pid):
                break
            await asyncio.sleep(0.05)
        assert lock.read_text().split("\n")[1] == str(valkey.pid)
    finally:
        await valkey.stop()
    assert not valkey.running
    await asyncio.sleep(0.5)  # a stopped Valkey is not started again
    assert not valkey.running


async def gifts_until(
    client: RoomClient, stop: asyncio.Event, acked: dict[str, int], refusals: list[str]
) -> None:
    """Send roses one request id at a time; retry an id until it is acked."""
    n = 0
    while not stop.is_set():
        request_id = f"storm-{n}"
        for _ in range(200):
            reply = await client.gift(request_id, "rose", 1)
            if reply["type"] == "ack":
                acked[request_id] = int(reply["balance"])
                break
            refusals.append(str(reply["code"]))
            assert reply["code"] in {"unavailable", "rate_limited"}, reply
            await asyncio.sleep(0.05)
        n += 1
        await asyncio.sleep(0.06)  # under the socket's 20 frames a second


async def test_a_gift_storm_resumes_after_the_embedded_valkey_is_killed(tmp_path: Path) -> None:
    arguments = ["serve", "--port", "0", "--data-dir", str(tmp_path)]
    # A credit whose settlement failed while Valkey was down is swept soon.
    quick_sweeps = {"sweep_interval_seconds": 0.5, "sweep_min_age_seconds": 1}
    server = await spawn_server(arguments, server_environment(tmp_path, quick_sweeps))
    api: Api | None = None
    client: RoomClient | None = None
    try:
        await server.wait_listening()
        await server.wait_ready()
        url, pid, *_ = (tmp_path / "valkey" / LOCK_NAME).read_text().split("\n")
        api = Api(server.http)
        alice = await api.token("alice")
        start_balance = int((await api.wallet(alice))["coins"])
        client = await RoomClient.open(server.ws, "carol", alice)
        await client.of_type("welcome")
        stop = asyncio.Event()
        acked: dict[str, int] = {}
        refusals: list[str] = []
        storm = asyncio.create_task(gifts_until(client, stop, acked, refusals))
        await asyncio.sleep(1.0)
        before_kill = len(acked)
        os.kill(int(pid), signal.SIGKILL)
        await asyncio.sleep(3.0)
        stop.set()
        await asyncio.wait_for(storm, SERVER_START_TIMEOUT)
        assert before_kill > 0
        assert len(acked) > before_kill, "no gift went through after the kill"
        # Every acked gift paid once: the balance moved by exactly the roses acked.
        wallet = await api.wallet(alice)
        assert wallet["coins"] == start_balance - len(acked)
        async with httpx.AsyncClient(base_url=server.http) as http:
            assert (await http.get("/readyz")).status_code == 200
            metrics = (await http.get("/metrics")).text
        restarts = re.search(r"^giftstream_embedded_valkey_restarts_total (\S+)", metrics, re.M)
        assert restarts is not None, metrics[:2000]
        assert float(restarts[1]) >= 1.0
        new_url = (tmp_path / "valkey" / LOCK_NAME).read_text().split("\n")[0]
        assert new_url == url
        redis = Redis.from_url(url)
        try:
            await assert_books_balance(redis, "gs")
        finally:
            await redis.aclose()
    finally:
        if client is not None:
            await client.close()
        if api is not None:
            await api.aclose()
        await server.stop()
    assert "Traceback" not in server.output()
