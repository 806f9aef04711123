"""Host and Origin are judged against the operator's list, never against each other.

A DNS-rebinding page controls both its ``Host`` (the name it rebound) and its
``Origin`` (its own page): the old rule, an origin equal to ``http://`` plus
``Host``, let it open room sockets. The first tests are pure; the rest talk
to a real server over raw HTTP and WebSocket handshakes.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from server.api.hosts import host_allowed, host_name, origin_allowed
from server.client import HandshakeRefused
from tests.client import Api, RoomClient
from tests.conftest import ServerProcess, StartServer

DEMO_HOSTS = ("localhost", "127.0.0.1", "::1")


async def handshake(
    server: ServerProcess, host: str, origin: str, token: str = ""
) -> tuple[int, dict[str, Any]]:
    """A room socket's upgrade request with this Host and Origin: the status and,
    for a refusal, its JSON body (a client library would not send our Host)."""
    address = urlsplit(server.http)
    reader, writer = await asyncio.open_connection(address.hostname, address.port)
    query = f"?token={token}" if token else ""
    writer.write(
        (
            f"GET /ws/rooms/carol{query} HTTP/1.1\r\nHost: {host}\r\nOrigin: {origin}\r\n"
            "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
        ).encode()
    )
    try:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        status = int(head.split()[1])
        if status == 101:
            return status, {}
        length = next(
            int(line.split(b":")[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        return status, json.loads(await reader.readexactly(length))
    finally:
        writer.close()


@pytest.mark.parametrize(
    ("header", "name"),
    [
        ("127.0.0.1:8000", "127.0.0.1"),
        ("LIVE.example.com", "live.example.com"),
        ("[::1]:8000", "::1"),
        ("[::1", None),
        ("", None),
        (None, None),
    ],
)
def test_the_name_in_a_host_header(header: str | None, name: str | None) -> None:
    assert host_name(header) == name


def test_hosts_match_exactly_by_subdomain_wildcard_or_any() -> None:
    listed = ("live.example.com", "*.cdn.example.com")
    assert host_allowed("live.example.com", listed)
    assert host_allowed("eu.cdn.example.com", listed)
    assert not host_allowed("cdn.example.com", listed)
    assert not host_allowed("evil.com", listed)
    assert not host_allowed("live.example.com.evil.com", listed)
    assert host_allowed("anything", ("*",))
    assert not host_allowed(None, ("*",))


def test_an_origin_is_judged_by_the_list_not_by_host() -> None:
    assert origin_allowed(None, DEMO_HOSTS, ())  # not a browser
    assert origin_allowed("http://127.0.0.1:8000", DEMO_HOSTS, ())
    assert origin_allowed("https://app.example", DEMO_HOSTS, ("https://app.example",))
    assert not origin_allowed("http://rebound.evil.com:8000", DEMO_HOSTS, ())
    assert not origin_allowed("null", DEMO_HOSTS, ())
    assert not origin_allowed("file://127.0.0.1", DEMO_HOSTS, ())


async def test_a_rebound_host_is_refused_over_http_and_websocket(server: ServerProcess) -> None:
    rebound = {"host": "rebound.evil.com:8000"}
    async with httpx.AsyncClient(base_url=server.http) as http:
        catalog = await http.get("/api/catalog", headers=rebound)
        assert catalog.status_code == 400
        assert catalog.json()["code"] == "bad_host"
        page = await http.get("/viewer.html", headers=rebound)
        assert page.status_code == 400
        # Probes name the machine by its address: they answer for any host.
        assert (await http.get("/livez", headers=rebound)).status_code == 200
        assert (await http.get("/api/catalog")).status_code == 200
    status, body = await handshake(server, "rebound.evil.com:8000", "http://rebound.evil.com:8000")
    assert (status, body["code"]) == (400, "bad_host")


async def test_a_page_of_a_listed_host_opens_sockets_and_others_do_not(
    start_server: StartServer,
) -> None:
    server = await start_server(allowed_hosts="127.0.0.1,live.example.com")
    api = Api(server.http)
    token = await api.token("alice")
    # Behind a proxy that keeps the public name in Host.
    status, _ = await handshake(server, "live.example.com", "https://live.example.com", token)
    assert status == 101
    with pytest.raises(HandshakeRefused) as refused:
        await RoomClient.open(server.ws, "carol", token, origin="http://localhost:8000")
    assert refused.value.code == "forbidden_origin"
    async with httpx.AsyncClient(base_url=server.http) as http:
        localhost = await http.get("/api/catalog", headers={"host": "localhost"})
        assert localhost.json()["code"] == "bad_host"
    await api.aclose()
