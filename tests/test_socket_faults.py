"""Socket faults are counted and said once a second; a slow body meets the
request's deadline; the open-file limit is raised at start.

The first tests drive the loop's exception handler as asyncio does when
accept() fails; the last run a real server.
"""

from __future__ import annotations

import asyncio
import logging
import re
import resource
from urllib.parse import urlsplit

import pytest

from server.ops.socket_faults import (
    ACCEPT_ERROR,
    SocketFaults,
    handle_loop_exception,
    raise_file_limit,
)
from tests.client import Api
from tests.conftest import ServerProcess, StartServer


async def test_a_flood_of_accept_errors_is_counted_and_said_once_a_second(
    caplog: pytest.LogCaptureFixture,
) -> None:
    loop = asyncio.get_running_loop()
    before = SocketFaults.accept_errors
    error = OSError(24, "Too many open files")
    with caplog.at_level(logging.WARNING, logger="server.ops.socket_faults"):
        for _ in range(5000):
            handle_loop_exception(loop, {"message": ACCEPT_ERROR, "exception": error})
    assert SocketFaults.accept_errors - before == 5000
    lines = [r for r in caplog.records if r.name == "server.ops.socket_faults"]
    assert len(lines) <= 2  # one, or two if the test straddled a second
    assert all(r.exc_info is None for r in lines)  # no traceback


async def test_other_loop_errors_still_reach_the_default_handler(
    caplog: pytest.LogCaptureFixture,
) -> None:
    loop = asyncio.get_running_loop()
    with caplog.at_level(logging.ERROR, logger="asyncio"):
        handle_loop_exception(loop, {"message": "something else broke"})
    assert "something else broke" in caplog.text


def test_the_soft_file_limit_is_raised_to_the_hard_one() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(soft, 256), hard))
        got = raise_file_limit()
        assert got == (hard if hard != resource.RLIM_INFINITY else got)
        assert got > 256 or hard <= 256
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


async def test_the_server_says_its_file_limit_at_start(server: ServerProcess) -> None:
    assert re.search(r"open file limit.*files", server.output())


async def test_a_body_trickled_past_the_deadline_is_cut_off_without_a_traceback(
    start_server: StartServer,
) -> None:
    server = await start_server(handshake_timeout_seconds=1)
    api = Api(server.http)
    token = await api.token("alice")
    before = await fault_counts(api)
    address = urlsplit(server.http)
    reader, writer = await asyncio.open_connection(address.hostname, address.port)
    writer.write(
        (
            "POST /api/orders HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Authorization: Bearer {token}\r\nContent-Length: 100\r\n\r\n{{"
        ).encode()
    )
    await writer.drain()
    started = asyncio.get_running_loop().time()
    # One byte every 0.2 s would take 20 s: the deadline closes it after 1.
    closed = False
    for _ in range(30):
        try:
            writer.write(b" ")
            await writer.drain()
            closed = await asyncio.wait_for(reader.read(1), 0.2) == b""
        except TimeoutError:
            continue  # still open: trickle on
        except ConnectionError:
            closed = True
        break
    writer.close()
    assert closed
    assert asyncio.get_running_loop().time() - started < 3
    await asyncio.sleep(0.3)
    assert "Traceback" not in server.output()
    assert "unhandled error" not in server.output()
    # Counted, and said in one line each.
    after = await fault_counts(api)
    assert (
        after["giftstream_requests_past_deadline"]
        == before["giftstream_requests_past_deadline"] + 1
    )
    assert (
        after["giftstream_clients_gone_mid_body"] == before["giftstream_clients_gone_mid_body"] + 1
    )
    assert "requests not complete in time" in server.output()
    assert "clients gone before their body was complete" in server.output()
    # And the server still takes orders.
    assert (await api.http.get("/api/catalog")).status_code == 200
    await api.aclose()


async def fault_counts(api: Api) -> dict[str, float]:
    text = (await api.http.get("/metrics")).text
    names = ("giftstream_requests_past_deadline", "giftstream_clients_gone_mid_body")
    counts = {}
    for name in names:
        match = re.search(rf"^{name}(?:_total)? (\S+)$", text, re.MULTILINE)
        assert match is not None, f"{name} not in /metrics"
        counts[name] = float(match.group(1))
    return counts
