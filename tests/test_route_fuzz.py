"""Random and hostile requests at every HTTP route: never a 500, never a traceback.

Hypothesis builds requests for each route of the HTTP API (and the probes
and pages): path parameters from the plausible to the absurd, query strings,
bodies (random bytes, random JSON, deep nesting, huge numbers, near-valid
documents), content types, and credentials (none, garbage, a real viewer's
or creator's token, a forged signature). A real server answers each; every
answer must be below 500, and an API error a problem document. At the end
the server has logged no traceback and the books balance. Room frames get
the same treatment in tests/test_fuzz.py.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from redis.asyncio import Redis
from starlette.routing import Route

from server.api import http_api
from server.core.payments import SIGNATURE_HEADER
from tests.client import Api
from tests.conftest import ServerProcess
from tests.test_gift_flow import assert_books_balance

EXAMPLES = 800
# Every route of the API, and the probes and a page: (method, path with {params}).
ROUTES = sorted(
    {
        (method, route.path)
        for route in http_api.routes
        if isinstance(route, Route)
        for method in route.methods or ()
        if method != "HEAD"
    }
    | {("GET", "/livez"), ("GET", "/readyz"), ("GET", "/metrics"), ("GET", "/viewer.html")}
)


@dataclass(frozen=True)
class Hostile:
    method: str
    path: str
    query: str
    body: bytes | None
    headers: dict[str, str]


def json_values() -> st.SearchStrategy[Any]:
    scalars = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(2**70), max_value=2**70),
        st.floats(allow_nan=False),
        st.text(max_size=40),
        st.sampled_from(["coins_65", "rose", "viewer", "creator", "overlay", "alice", "carol"]),
    )
    return st.recursive(
        scalars,
        lambda inner: st.one_of(
            st.lists(inner, max_size=4),
            st.dictionaries(
                st.sampled_from(["package", "user", "role", "gift", "type", "adult", "x"]),
                inner,
                max_size=4,
            ),
        ),
        max_leaves=12,
    )


def bodies() -> st.SearchStrategy[bytes | None]:
    return st.one_of(
        st.none(),
        st.binary(max_size=300),
        json_values().map(lambda value: json.dumps(value).encode()),
        st.integers(min_value=1, max_value=6000).map(lambda n: b"[" * n + b"]" * n),
        st.just(b'{"package": 1e999999}'),
        st.just(b'{"package": "coins_65"' + b" " * 20_000 + b"}"),
    )


def path_parts() -> st.SearchStrategy[str]:
    return st.one_of(
        st.sampled_from(["carol", "dave", "alice", "0" * 32, "a" * 65, "..", "%00", "é"]),
        st.text(max_size=70),
    ).map(lambda part: quote(part, safe=""))


def header_text() -> st.SearchStrategy[str]:
    """Printable ASCII with no white space at its ends (what a client may send)."""
    printable = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=60)
    return printable.map(str.strip).filter(bool)


@st.composite
def hostile_requests(draw: st.DrawFn, tokens: dict[str, str]) -> Hostile:
    method, template = draw(st.sampled_from(ROUTES))
    path = template
    while "{" in path:
        start, end = path.index("{"), path.index("}")
        path = path[:start] + draw(path_parts()) + path[end + 1 :]
    credential = draw(
        st.one_of(
            st.none(),
            st.sampled_from(sorted(tokens.values())).map(lambda token: f"Bearer {token}"),
            header_text(),
            header_text().map(lambda text: f"Bearer {text}"),
        )
    )
    headers = {
        "content-type": draw(
            st.sampled_from(["application/json", "text/plain", "application/msgpack", ""])
        )
    }
    if credential is not None:
        headers["authorization"] = credential
    if draw(st.booleans()):
        headers[SIGNATURE_HEADER] = draw(header_text())
    query = draw(st.one_of(st.just(""), header_text().map(lambda text: quote(text, safe="=&"))))
    return Hostile(method, path, query, draw(bodies()), headers)


async def test_no_request_to_any_route_gets_a_500(
    server: ServerProcess, api: Api, redis: Redis
) -> None:
    tokens = {
        "viewer": await api.token("alice"),
        "creator": await api.token("carol", "creator"),
        "overlay": await api.token("carol", "overlay"),
    }
    answered: dict[int, int] = {}

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(hostile=hostile_requests(tokens))
    def one_request(hostile: Hostile) -> None:
        url = hostile.path + (f"?{hostile.query}" if hostile.query else "")
        response = http.request(hostile.method, url, content=hostile.body, headers=hostile.headers)
        answered[response.status_code] = answered.get(response.status_code, 0) + 1
        assert response.status_code < 500, (hostile, response.text[:300])
        if hostile.path.startswith("/api/") and response.status_code >= 400:
            assert response.headers["content-type"] == "application/problem+json", hostile
            assert isinstance(response.json()["code"], str)

    with httpx.Client(base_url=server.http, timeout=10.0) as http:
        await asyncio.to_thread(one_request)
    # The requests reached the handlers, not only the outer checks.
    assert len(answered) >= 4, answered
    assert 200 in answered or 201 in answered, answered
    await asyncio.sleep(0.2)
    assert "Traceback" not in server.output()
    assert "unhandled error" not in server.output()
    await assert_books_balance(redis, server.key_prefix or "")
