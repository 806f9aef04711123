"""Request bodies are capped as they arrive, and JSON nesting is bounded.

Each test talks to a real ``giftstream serve`` over a raw socket, so that it
controls exactly what the server has been sent when it answers.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any
from urllib.parse import urlsplit

from server.loadtest.serverproc import rss_bytes
from tests.client import Api, bearer
from tests.conftest import ServerProcess

CAP = 16 * 1024  # GIFTSTREAM_MAX_BODY_BYTES' default
WEBHOOK_CAP = 64 * 1024


async def exchange(
    server: ServerProcess, head: str, body_parts: list[bytes]
) -> tuple[int, dict[str, Any]]:
    """Send a request head, then body parts until the server answers; its status and body.

    The parts are sent one by one with a pause between them, and sending
    stops as soon as an answer has come: a server that reads a body whole
    before answering makes the whole body go out first.
    """
    address = urlsplit(server.http)
    reader, writer = await asyncio.open_connection(address.hostname, address.port)
    try:
        writer.write(head.encode())
        await writer.drain()
        answer = asyncio.ensure_future(read_response(reader))
        for part in body_parts:
            done, _ = await asyncio.wait({answer}, timeout=0.01)
            if done:
                break
            try:
                writer.write(part)
                await writer.drain()
            except ConnectionError:
                break
        return await asyncio.wait_for(answer, 10)
    finally:
        writer.close()


async def read_response(reader: asyncio.StreamReader) -> tuple[int, dict[str, Any]]:
    """One HTTP response with a Content-Length body of JSON: status and document."""
    head = await reader.readuntil(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in header_lines if line)
    body = await reader.readexactly(int(headers["content-length"]))
    return int(status_line.split()[1]), json.loads(body)


def post_head(path: str, token: str, extra: str) -> str:
    return (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Authorization: Bearer {token}\r\n{extra}\r\n"
    )


async def test_a_declared_length_over_the_cap_is_refused_before_the_body(
    server: ServerProcess, api: Api
) -> None:
    token = await api.token("alice")
    declared = 400 * 1024 * 1024
    head = post_head("/api/orders", token, f"Content-Length: {declared}\r\n")
    # Only 64 KiB of the 400 MiB is ever offered; the answer comes first.
    status, body = await exchange(server, head, [b" " * 4096] * 16)
    assert status == 413
    assert body["code"] == "body_too_large"
    assert "419,430,400" in body["detail"]


async def test_a_chunked_body_is_cut_off_where_it_crosses_the_cap(
    server: ServerProcess, api: Api
) -> None:
    token = await api.token("alice")
    head = post_head("/api/orders", token, "Transfer-Encoding: chunked\r\n")
    chunk = b"2000\r\n" + b" " * 0x2000 + b"\r\n"  # 8 KiB a chunk
    # 50 chunks would be 400 KiB; the server answers after the third.
    status, body = await exchange(server, head, [chunk] * 50)
    assert (status, body["code"]) == (413, "body_too_large")


async def test_a_body_at_the_cap_is_read_and_judged_on_its_content(
    server: ServerProcess, api: Api
) -> None:
    token = await api.token("alice")
    document = json.dumps({"package": "coins_65", "pad": ""})
    document = document.replace('""', '"' + " " * (CAP - len(document)) + '"')
    assert len(document) == CAP
    response = await api.http.post("/api/orders", content=document.encode(), headers=bearer(token))
    assert response.status_code == 201, response.text


async def test_deep_nesting_is_a_typed_400_not_a_500(server: ServerProcess, api: Api) -> None:
    token = await api.token("alice")
    for body in (
        b'{"package": ' + b"[" * 5000 + b"]" * 5000 + b"}",  # past the parser's recursion
        b'{"package": ' + b"[" * 40 + b"]" * 40 + b"}",  # parses, but deeper than 32
    ):
        response = await api.http.post("/api/orders", content=body, headers=bearer(token))
        assert response.status_code == 400, response.text
        assert response.json()["code"] == "bad_request"
        assert "nests deeper than 32" in response.json()["detail"]
    assert "Traceback" not in server.output()


async def test_a_payment_callback_has_a_larger_cap_of_its_own(
    server: ServerProcess, api: Api
) -> None:
    over = b"{" + b" " * WEBHOOK_CAP + b"}"
    response = await api.http.post("/api/payments/webhook", content=over)
    assert (response.status_code, response.json()["code"]) == (413, "body_too_large")
    # Under its cap, a body of 20 KiB is read and judged: here, unsigned.
    under = b"{" + b" " * (20 * 1024) + b"}"
    response = await api.http.post("/api/payments/webhook", content=under)
    assert response.status_code == 401


async def test_many_oversize_uploads_at_once_leave_memory_flat(
    server: ServerProcess, api: Api
) -> None:
    token = await api.token("alice")
    before = rss_bytes(server.process.pid)
    assert before is not None
    head = post_head("/api/orders", token, "Transfer-Encoding: chunked\r\n")
    chunk = b"100000\r\n" + b" " * 0x100000 + b"\r\n"  # 1 MiB a chunk
    results = await asyncio.gather(*(exchange(server, head, [chunk] * 20) for _ in range(8)))
    assert {(status, body["code"]) for status, body in results} == {(413, "body_too_large")}
    # Eight 20 MiB uploads at once: read whole, they would hold 160 MiB.
    after = rss_bytes(server.process.pid)
    assert after is not None
    assert after - before < 20 * 1024 * 1024
