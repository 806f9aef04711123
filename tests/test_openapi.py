"""/openapi.json describes every route the server runs, in valid OpenAPI 3.1,
and what a real server answers matches it; /docs shows it in a browser.

The spec is checked three ways: against the app's own route table (every
route and method is in it, and a route without a description fails);
in shape (every operation answers something, every ``$ref`` resolves, every
error code is one of ``server/errors.py``'s, at its class's status); and
against a real run: a tour of the API through an HTTP client whose response
hook checks each answer (its status is declared for the operation, and its
body validates against the declared schema, with no undescribed field).
The client library, /giftstream.js, is served to pages of other origins.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from playwright.async_api import expect
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route, WebSocketRoute

from server.api.http_api import typed_errors
from server.api.openapi import describe, description_of
from server.api.openapi_spec import INTERNAL_CODE, openapi_document, openapi_path
from server.app import create_app, internal_error
from server.core import payments
from server.errors import NotFound, all_error_classes
from server.settings import Settings
from tests import test_stripe as stripe_tests
from tests.browser import Pages
from tests.client import RoomClient, bearer
from tests.conftest import WEBHOOK_SECRET, ServerProcess, StartServer
from tests.json_schema import Validator, unknown_keywords
from tests.test_pages import browser, pages

__all__ = ["browser", "pages"]  # fixtures, used by name

OPERATOR_TOKEN = "openapi-test-operator-token"
PAYOUT_SECRET = "openapi-test-payout-secret"
Spec = dict[str, Any]


def app_routes() -> list[BaseRoute]:
    """The route table ``giftstream serve`` runs, built the same way."""
    return list(create_app(Settings()).app.routes)


@pytest.fixture(scope="module")
def spec() -> Spec:
    return openapi_document(app_routes())


def operations(document: Spec) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            yield path, method, operation


def missing_from(document: Spec, routes: list[BaseRoute]) -> list[str]:
    """Each route method, and each WebSocket route, the document does not describe."""
    missing = [f"undescribed: {name}" for name in document.get("x-undescribed", [])]
    for route in routes:
        if isinstance(route, WebSocketRoute):
            if openapi_path(route.path) not in document["x-websockets"]:
                missing.append(f"WEBSOCKET {route.path}")
        elif isinstance(route, Route):
            item = document["paths"].get(openapi_path(route.path), {})
            missing += [
                f"{method} {route.path}"
                for method in route.methods or ()
                if method != "HEAD" and method.lower() not in item
            ]
    return missing


# ---------------------------------------------------------------- every route


def test_every_route_of_the_app_is_in_the_spec_with_each_method(spec: Spec) -> None:
    routes = app_routes()
    assert missing_from(spec, routes) == []
    described = {(path, method) for path, method, _ in operations(spec)}
    assert ("/api/orders", "post") in described
    assert ("/openapi.json", "get") in described
    assert ("/healthz", "get") in described
    assert ("/giftstream.js", "get") in described
    assert "/ws/rooms/{room_id}" in spec["x-websockets"]
    # Nothing else: the spec lists only routes the app runs.
    running = {
        (openapi_path(route.path), method.lower())
        for route in routes
        if isinstance(route, Route)
        for method in route.methods or ()
        if method != "HEAD"
    }
    assert described == running


def test_a_route_without_a_description_fails_the_check() -> None:
    async def forgotten(request: Request) -> Response:
        return Response()

    routes: list[BaseRoute] = [Route("/api/forgotten/{id}", forgotten, methods=["POST"])]
    document = openapi_document(routes)
    assert "/api/forgotten/{id}" not in document["paths"]
    assert missing_from(document, routes) == [
        "undescribed: POST /api/forgotten/{id}",
        "POST /api/forgotten/{id}",
    ]


async def test_the_description_survives_typed_errors_which_still_answers_problems() -> None:
    @describe(summary="Always missing", answers={200: {"type": "object"}}, errors=[NotFound])
    @typed_errors
    async def missing(request: Request) -> Response:
        """Nothing here."""
        raise NotFound("nothing here")

    description = description_of(missing)
    assert description is not None
    assert (description.summary, description.notes) == ("Always missing", "Nothing here.")
    answer = await missing(Request({"type": "http", "method": "GET", "path": "/", "headers": []}))
    assert (answer.status_code, json.loads(bytes(answer.body))["code"]) == (404, "not_found")
    # Every route in the table carries its description on the endpoint it holds.
    for route in app_routes():
        if isinstance(route, Route | WebSocketRoute):
            assert description_of(route.endpoint) is not None, route.path


# ---------------------------------------------------------------- shape


def refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        if isinstance(node.get("$ref"), str):
            yield node["$ref"]
        for value in node.values():
            yield from refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from refs(value)


def resolve(document: Spec, node: dict[str, Any]) -> dict[str, Any]:
    if "$ref" not in node:
        return node
    found: Any = document
    for part in node["$ref"].removeprefix("#/").split("/"):
        found = found[part]
    assert isinstance(found, dict)
    return found


def schemas_in(document: Spec) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every schema of the document, each with where it is."""
    for name, schema in document["components"]["schemas"].items():
        yield f"components/{name}", schema
    for name, answer in document["components"]["responses"].items():
        for media, content in answer["content"].items():
            yield f"components/responses/{name} {media}", content["schema"]
    for path, method, operation in operations(document):
        where = f"{method.upper()} {path}"
        for parameter in operation.get("parameters", []):
            yield f"{where} parameter {parameter['name']}", parameter["schema"]
        for media, content in operation.get("requestBody", {}).get("content", {}).items():
            yield f"{where} body {media}", content["schema"]
        for status, answer in operation["responses"].items():
            for media, content in resolve(document, answer).get("content", {}).items():
                yield f"{where} {status} {media}", content["schema"]


def test_the_spec_is_openapi_3_1_in_shape(spec: Spec) -> None:
    assert spec["openapi"].startswith("3.1.")
    assert spec["info"]["title"] == "giftstream"
    assert spec["info"]["version"]
    assert "/ws/rooms/{room_id}" in spec["info"]["description"]
    schemes = spec["components"]["securitySchemes"]
    tags = {tag["name"] for tag in spec["tags"]}
    ids = [operation["operationId"] for _, _, operation in operations(spec)]
    assert len(ids) == len(set(ids))
    for path, method, operation in operations(spec):
        where = f"{method.upper()} {path}"
        assert path.startswith("/"), where
        assert method in ("get", "put", "post", "delete"), where
        assert operation["summary"], where
        assert set(operation["tags"]) <= tags, where
        declared = [p["name"] for p in operation.get("parameters", []) if p["in"] == "path"]
        assert declared == re.findall(r"{([^}]+)}", path), where
        assert operation["responses"], where
        for status, answer in operation["responses"].items():
            assert re.fullmatch(r"[1-5][0-9][0-9]", status), where
            answer = resolve(spec, answer)
            assert answer["description"], (where, status)
            assert answer["content"], (where, status)
            assert all("schema" in content for content in answer["content"].values())
        for requirement in operation["security"]:
            assert set(requirement) <= set(schemes), where
        assert any(status.startswith("2") for status in operation["responses"]), where
    for reference in refs(spec):
        assert reference.startswith("#/"), reference
        resolve(spec, {"$ref": reference})  # a KeyError names the broken one
    for where, schema in schemas_in(spec):
        assert unknown_keywords(schema) == set(), where


def test_every_error_code_is_a_gift_errors_at_its_status(spec: Spec) -> None:
    status_of = {cls.code: cls.http_status for cls in all_error_classes()}
    listed: set[str] = set()
    for path, method, operation in operations(spec):
        for status, answer in operation["responses"].items():
            codes = resolve(spec, answer).get("x-codes")
            if codes is None:
                assert not status.startswith(("4", "5")) or path == "/readyz", (path, status)
                continue
            enum = schema_enum(spec, resolve(spec, answer))
            assert sorted(codes) == sorted(enum), (method, path, status)
            for code in codes:
                listed.add(code)
                expected = 500 if code == INTERNAL_CODE else status_of.get(code)
                assert expected == int(status), (method, path, status, code)
    assert {"unauthorized", "bad_field", "not_found", "not_eligible", "internal"} <= listed
    # The fields an error adds to its problem document are described too.
    problem = spec["components"]["schemas"]["Problem"]["properties"]
    for cls in all_error_classes():
        assert set(cls("a message").details) <= set(problem), cls.__name__


def schema_enum(document: Spec, answer: dict[str, Any]) -> list[str]:
    """The ``code`` enum of an error answer's problem schema."""
    schema = answer["content"]["application/problem+json"]["schema"]
    for part in schema["allOf"]:
        code = resolve(document, part).get("properties", {}).get("code", {})
        if "enum" in code:
            return list(code["enum"])
    raise AssertionError(f"no code enum in {schema}")


async def test_an_unexpected_fault_answers_the_specs_internal_problem(spec: Spec) -> None:
    request = Request({"type": "http", "method": "GET", "path": "/api/x", "headers": []})
    answer = await internal_error(request, RuntimeError("a bug"))
    body = json.loads(bytes(answer.body))
    schema = spec["components"]["responses"]["Internal"]["content"]["application/problem+json"]
    assert Validator(spec, strict=True).errors(body, schema["schema"]) == []
    assert answer.headers["content-type"] == "application/problem+json"


def test_the_validator_itself_finds_what_is_wrong() -> None:
    root = {"components": {"schemas": {"N": {"type": "integer", "minimum": 1}}}}
    schema = {
        "type": "object",
        "properties": {"n": {"$ref": "#/components/schemas/N"}, "s": {"enum": ["a"]}},
        "required": ["n"],
    }
    check = Validator(root, strict=True)
    assert check.errors({"n": 1, "s": "a"}, schema) == []
    assert check.errors({"n": 0}, schema) == ["/n: 0 is below 1"]
    assert check.errors({"n": True}, schema) == ["/n: True is not integer"]
    assert check.errors({"s": "b", "x": 1}, schema) == [
        "/: 'n' is missing",
        "/s: 'b' is not one of ['a']",
        "/: 'x' is not described",
    ]
    assert Validator(root).errors({"n": 2, "x": 1}, schema) == []
    assert unknown_keywords({"properties": {"a": {"uniqueItems": True}}}) == {"uniqueItems"}


# ---------------------------------------------------------------- a real run


@dataclass
class SpecChecker:
    """An httpx response hook: each answer must be one its operation declares."""

    spec: Spec
    seen: set[tuple[str, str, int]] = field(default_factory=set)
    templates: list[tuple[re.Pattern[str], str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        for path in self.spec["paths"]:
            pattern = re.sub(r"\\{[^}]+\\}", "[^/]+", re.escape(path))
            self.templates.append((re.compile(pattern), path))
        # A literal path wins over a template that also matches it.
        self.templates.sort(key=lambda entry: entry[1].count("{"))

    def template(self, path: str) -> str:
        for pattern, template in self.templates:
            if pattern.fullmatch(path):
                return template
        raise AssertionError(f"no operation of the spec has the path {path}")

    async def __call__(self, response: httpx.Response) -> None:
        await response.aread()
        method, path = response.request.method.lower(), response.request.url.path
        template = self.template(path)
        operation = self.spec["paths"][template].get(method)
        assert operation is not None, f"{method.upper()} {template} is not in the spec"
        status = response.status_code
        declared = operation["responses"]
        where = f"{method.upper()} {path} answered {status}"
        assert str(status) in declared, f"{where}, not one of {sorted(declared)}"
        answer = resolve(self.spec, declared[str(status)])
        media = response.headers.get("content-type", "").split(";")[0].strip()
        assert media in answer["content"], f"{where} as {media}, not {list(answer['content'])}"
        if media.endswith("json"):
            schema = answer["content"][media]["schema"]
            problems = Validator(self.spec, strict=True).errors(response.json(), schema)
            assert problems == [], f"{where}: {problems}\n{response.text[:2000]}"
        self.seen.add((method, template, status))


@dataclass
class Tour:
    http: httpx.AsyncClient
    server: ServerProcess
    tokens: dict[str, str] = field(default_factory=dict)

    def auth(self, name: str) -> dict[str, str]:
        return bearer(self.tokens[name])

    async def expect(self, status: int, method: str, url: str, **options: Any) -> Any:
        """The request's answer, which must have ``status``; its JSON (None if not JSON)."""
        answer = await self.http.request(method, url, **options)
        assert answer.status_code == status, (method, url, answer.status_code, answer.text[:500])
        kind = answer.headers.get("content-type", "")
        return answer.json() if "json" in kind else None


@pytest.fixture
async def ops(start_server: StartServer) -> ServerProcess:
    return await start_server(
        operator_token=OPERATOR_TOKEN,
        payout_webhook_secret=PAYOUT_SECRET,
        sandbox_payout_delay_seconds=3600,
        # Stripe's routes on: the webhook needs no call to Stripe for a paid
        # session, and nothing here gets as far as calling it.
        stripe_secret_key=stripe_tests.SECRET_KEY,
        stripe_webhook_secret=stripe_tests.WEBHOOK_SECRET,
        stripe_api_base="http://127.0.0.1:9",
        stripe_success_url=stripe_tests.SUCCESS_URL,
        stripe_cancel_url=stripe_tests.CANCEL_URL,
    )


@pytest.fixture
async def tour(ops: ServerProcess) -> AsyncIterator[tuple[Tour, SpecChecker]]:
    async with httpx.AsyncClient(base_url=ops.http, timeout=10.0) as plain:
        spec = (await plain.get("/openapi.json")).json()
    checker = SpecChecker(spec)
    hooks: dict[str, list[Callable[..., Any]]] = {"response": [checker]}
    async with httpx.AsyncClient(base_url=ops.http, timeout=10.0, event_hooks=hooks) as http:
        yield Tour(http, ops), checker


async def service_routes(t: Tour) -> None:
    for path in ("/livez", "/healthz", "/readyz", "/metrics", "/openapi.json", "/docs"):
        await t.expect(200, "GET", path)
    library = await t.http.get("/giftstream.js")
    assert library.headers["access-control-allow-origin"] == "*"
    await t.expect(400, "GET", "/api/catalog", headers={"host": "evil.example"})


async def catalog_and_tokens(t: Tour) -> None:
    await t.expect(200, "GET", "/api/catalog")
    await t.expect(200, "GET", "/api/catalog", params={"lang": "zh-CN"})
    await t.expect(400, "GET", "/api/catalog", params={"lang": "xx"})
    people = {"alice": "viewer", "bob": "viewer", "carol": "creator", "dave": "creator",
              "zed": "viewer", "carol_overlay": "overlay"}  # fmt: skip
    for name, role in people.items():
        body = {"user": name.removesuffix("_overlay"), "role": role, "adult": role == "creator"}
        t.tokens[name] = (await t.expect(200, "POST", "/api/dev/token", json=body))["token"]
    await t.expect(400, "POST", "/api/dev/token", json={"user": "x", "role": "admin"})
    await t.expect(400, "POST", "/api/dev/token", json={"user": "not valid"})


async def wallet_and_orders(t: Tour) -> None:
    await t.expect(200, "GET", "/api/wallet", headers=t.auth("alice"))
    await t.expect(401, "GET", "/api/wallet")
    await t.expect(401, "GET", "/api/wallet", headers=bearer("forged"))
    await t.expect(403, "GET", "/api/wallet", headers=t.auth("carol_overlay"))
    order = await t.expect(201, "POST", "/api/orders", json={"package": "coins_65"},
                           headers=t.auth("alice"))  # fmt: skip
    await t.expect(400, "POST", "/api/orders", json={"package": "free"}, headers=t.auth("alice"))
    await t.expect(400, "POST", "/api/orders", content=b"[", headers=t.auth("alice"))
    await t.expect(413, "POST", "/api/orders", content=b" " * 20_000, headers=t.auth("alice"))
    pay = f"/api/sandbox/pay/{order['order_id']}"
    assert (await t.expect(200, "POST", pay, headers=t.auth("alice")))["status"] == "ok"
    assert (await t.expect(200, "POST", pay, headers=t.auth("alice")))["status"] == "order_paid"
    await t.expect(404, "POST", "/api/sandbox/pay/" + "0" * 32, headers=t.auth("alice"))
    # bob's order, paid by the provider's signed callback, then refunded by it.
    bob = await t.expect(201, "POST", "/api/orders", json={"package": "coins_330"},
                         headers=t.auth("bob"))  # fmt: skip
    for kind, status in ((payments.SUCCEEDED, "ok"), (payments.REFUNDED, "ok")):
        callback = payments.PaymentConfirmation(
            f"pi_{kind}", bob["order_id"], bob["price"], bob["currency"], kind
        )
        body = payments.confirmation_body(callback)
        signed = {payments.SIGNATURE_HEADER: payments.sign(WEBHOOK_SECRET, body, time.time())}
        answer = await t.expect(200, "POST", "/api/payments/webhook", content=body, headers=signed)
        assert answer["status"] == status
    await t.expect(401, "POST", "/api/payments/webhook", content=body,
                   headers={payments.SIGNATURE_HEADER: "t=1,v1=00"})  # fmt: skip
    await stripe_payments(t)


async def stripe_payments(t: Tour) -> None:
    """A Stripe-paid order, through Stripe's webhook; the checkout's refusals."""
    minted = await t.expect(200, "POST", "/api/dev/token", json={"user": "stripe_payer"})
    t.tokens["stripe_payer"] = minted["token"]
    order = await t.expect(201, "POST", "/api/orders", json={"package": "coins_330"},
                           headers=t.auth("stripe_payer"))  # fmt: skip
    cents = int(order["price"].replace(".", ""))
    paid = stripe_tests.event_body(stripe_tests.session_completed(order["order_id"], cents))
    webhook = stripe_tests.WEBHOOK
    answer = await t.expect(200, "POST", webhook, content=paid,
                            headers=stripe_tests.signed_headers(paid))  # fmt: skip
    assert answer["status"] == "ok"
    ignored = stripe_tests.event_body(stripe_tests.event("customer.created", {"id": "cus_1"}))
    answer = await t.expect(200, "POST", webhook, content=ignored,
                            headers=stripe_tests.signed_headers(ignored))  # fmt: skip
    assert answer["status"] == "ignored"
    await t.expect(401, "POST", webhook, content=paid)
    await t.expect(404, "POST", stripe_tests.CHECKOUT, json={"order_id": "0" * 32},
                   headers=t.auth("stripe_payer"))  # fmt: skip
    await t.expect(409, "POST", stripe_tests.CHECKOUT, json={"order_id": order["order_id"]},
                   headers=t.auth("stripe_payer"))  # fmt: skip


async def creators(t: Tour) -> None:
    carol, dave = t.auth("carol"), t.auth("dave")
    await t.expect(200, "GET", "/api/creator/profile", headers=carol)
    await t.expect(200, "POST", "/api/creator/gifting", json={"enabled": True}, headers=carol)
    refused = await t.expect(409, "POST", "/api/creator/gifting", json={"enabled": True},
                             headers=dave)  # fmt: skip
    assert refused["code"] == "not_eligible"
    assert refused["reasons"]
    await t.expect(400, "POST", "/api/creator/gifting", json={"enabled": "yes"}, headers=carol)
    await t.expect(403, "GET", "/api/creator/profile", headers=t.auth("alice"))
    await t.expect(200, "GET", "/api/creator/overlay-key", headers=carol)
    await t.expect(200, "POST", "/api/creator/overlay-key", headers=carol)
    await t.expect(202, "POST", "/api/creator/test-alert", headers=carol)
    await t.expect(202, "POST", "/api/creator/test-alert", json={"gift": "rose"}, headers=carol)
    await t.expect(400, "POST", "/api/creator/test-alert", json={"gift": "no"}, headers=carol)
    await t.expect(200, "POST", "/api/follows/dave", headers=t.auth("alice"))
    await t.expect(200, "DELETE", "/api/follows/dave", headers=t.auth("alice"))
    await t.expect(400, "POST", "/api/follows/alice", headers=t.auth("alice"))
    await t.expect(400, "POST", "/api/follows/no%20one", headers=t.auth("alice"))
    await t.expect(200, "GET", "/api/rooms/carol")
    await t.expect(200, "GET", "/api/rooms/dave")
    await t.expect(400, "GET", "/api/rooms/no%20one")


async def streams(t: Tour) -> None:
    carol, dave = t.auth("carol"), t.auth("dave")
    await t.expect(200, "POST", "/api/creator/streams", headers=carol)  # live already
    started = await t.expect(201, "POST", "/api/creator/streams", headers=dave)
    stream = f"/api/creator/streams/{started['stream_id']}"
    await t.expect(200, "POST", f"{stream}/heartbeat", headers=dave)
    await t.expect(200, "POST", f"{stream}/end", headers=dave)
    await t.expect(200, "POST", f"{stream}/end", headers=dave)
    await t.expect(409, "POST", f"{stream}/heartbeat", headers=dave)
    await t.expect(404, "POST", "/api/creator/streams/st-none/heartbeat", headers=dave)
    await t.expect(200, "GET", "/api/creator/streams", headers=dave)


async def gifts_and_the_room(t: Tour) -> None:
    """alice sends carol a rocket (over the room socket, not HTTP)."""
    sender = await RoomClient.open(t.server.ws, "carol", t.tokens["alice"])
    try:
        ack = await sender.gift("openapi-rocket", "rocket", confirm=True)
        assert ack["type"] == "ack", ack
    finally:
        await sender.close()
    deadline = time.monotonic() + 10
    while (await t.expect(200, "GET", "/api/wallet", headers=t.auth("carol")))["diamonds"] < 900:
        assert time.monotonic() < deadline, "carol's diamonds never came"
        await asyncio.sleep(0.1)
    for period in ("stream", "day", "all"):
        await t.expect(200, "GET", "/api/rooms/carol/leaderboard", params={"period": period})
    await t.expect(400, "GET", "/api/rooms/carol/leaderboard", params={"period": "year"})
    await t.expect(404, "GET", "/api/rooms/no%20one/leaderboard")
    await t.expect(200, "GET", "/api/me/privacy", headers=t.auth("alice"))
    await t.expect(200, "PUT", "/api/me/privacy", json={"anonymous": True}, headers=t.auth("bob"))
    await t.expect(400, "PUT", "/api/me/privacy", json={"anonymous": 1}, headers=t.auth("bob"))
    await t.expect(200, "GET", "/api/rooms/carol/goal")
    carol = t.auth("carol")
    goal = {"title": "New mic", "target_coins": 250}
    await t.expect(201, "POST", "/api/creator/goals", json=goal, headers=carol)
    await t.expect(200, "GET", "/api/rooms/carol/goal")
    roses = {"title": "Roses", "gift_id": "rose", "target_count": 10}
    await t.expect(201, "POST", "/api/creator/goals", json=roses, headers=carol)
    await t.expect(400, "POST", "/api/creator/goals", json={"title": "x"}, headers=carol)
    await t.expect(200, "DELETE", "/api/creator/goals", headers=carol)
    await t.expect(200, "GET", "/api/rooms/carol/fanclub")
    await t.expect(200, "GET", "/api/rooms/carol/fanclub", headers=t.auth("alice"))
    join = "/api/rooms/carol/fanclub/join"
    await t.expect(200, "POST", join, json={"request_id": "j-1"}, headers=t.auth("alice"))
    await t.expect(200, "POST", join, json={"request_id": "j-1"}, headers=t.auth("alice"))
    await t.expect(409, "POST", join, json={"request_id": "j-2"}, headers=t.auth("alice"))
    await t.expect(402, "POST", join, json={"request_id": "j-3"}, headers=t.auth("zed"))
    await t.expect(409, "POST", "/api/rooms/dave/fanclub/join", json={"request_id": "j-4"},
                   headers=t.auth("alice"))  # fmt: skip


async def payer(t: Tour) -> None:
    alice = t.auth("alice")
    page = await t.expect(200, "GET", "/api/wallet/history", headers=alice)
    assert {row["kind"] for row in page["entries"]} >= {"gift", "recharge", "promo"}
    await t.expect(200, "GET", "/api/wallet/history", params={"kind": "gift"}, headers=alice)
    await t.expect(200, "GET", "/api/wallet/history", headers=t.auth("carol"))
    await t.expect(200, "GET", "/api/wallet/history", headers=t.auth("bob"))
    await t.expect(400, "GET", "/api/wallet/history", params={"limit": "0"}, headers=alice)
    await t.expect(200, "GET", "/api/wallet/budget", headers=alice)
    await t.expect(200, "PUT", "/api/wallet/budget", json={"daily": 500}, headers=alice)
    await t.expect(200, "PUT", "/api/wallet/budget", json={"daily": 900}, headers=alice)
    await t.expect(400, "PUT", "/api/wallet/budget", json={}, headers=alice)


async def earnings_and_withdrawals(t: Tour) -> None:
    carol = t.auth("carol")
    report = await t.expect(200, "GET", "/api/creator/earnings", headers=carol)
    stream_id = report["stream"]["stream_id"]
    today, now = time.strftime("%Y-%m-%d", time.gmtime()), str(int(time.time() * 1000))
    for query in ({"period": "day"}, {"period": "all"}, {"stream_id": stream_id},
                  {"from": today, "to": now}):  # fmt: skip
        await t.expect(200, "GET", "/api/creator/earnings", params=query, headers=carol)
    csv = {"accept": "text/csv"} | carol
    await t.expect(200, "GET", "/api/creator/earnings", headers=csv)
    await t.expect(400, "GET", "/api/creator/earnings", params={"period": "year"}, headers=carol)
    await t.expect(404, "GET", "/api/creator/earnings", params={"stream_id": "st-x"},
                   headers=carol)  # fmt: skip
    profile_path, withdrawals = "/api/creator/payout-profile", "/api/creator/withdrawals"
    await t.expect(200, "GET", profile_path, headers=carol)
    first = {"diamonds": 300, "request_id": "w-1"}
    await t.expect(409, "POST", withdrawals, json=first, headers=carol)  # no profile yet
    profile = {"method": "paypal", "legal_name": "Carol Example", "tax_id": "123-45-6789",
               "account": "carol@example.com"}  # fmt: skip
    await t.expect(200, "PUT", profile_path, json=profile, headers=carol)
    await t.expect(400, "PUT", profile_path, json=profile | {"method": "cash"}, headers=carol)
    await t.expect(200, "GET", profile_path, headers=carol)
    paid = await t.expect(201, "POST", withdrawals, json=first, headers=carol)
    assert (await t.expect(200, "POST", withdrawals, json=first, headers=carol))["duplicate"]
    failed = await t.expect(201, "POST", withdrawals, json={"diamonds": 250, "request_id": "w-2"},
                            headers=carol)  # fmt: skip
    await t.expect(400, "POST", withdrawals, json={"diamonds": 10, "request_id": "w-3"},
                   headers=carol)  # fmt: skip
    await t.expect(402, "POST", withdrawals, json={"diamonds": 10**6, "request_id": "w-4"},
                   headers=carol)  # fmt: skip
    await t.expect(200, "GET", withdrawals, headers=carol)
    settle = f"/api/sandbox/payouts/{paid['withdrawal_id']}"
    await t.expect(200, "POST", settle, json={"outcome": "paid"}, headers=carol)
    await t.expect(400, "POST", settle, json={"outcome": "maybe"}, headers=carol)
    await t.expect(404, "POST", "/api/sandbox/payouts/" + "0" * 32, json={"outcome": "paid"},
                   headers=carol)  # fmt: skip
    callback = json.dumps({"type": "payout.failed", "withdrawal_id": failed["withdrawal_id"],
                           "creator": "carol", "payout_id": "po_1"}).encode()  # fmt: skip
    signed = {payments.SIGNATURE_HEADER: payments.sign(PAYOUT_SECRET, callback, time.time())}
    await t.expect(200, "POST", "/api/payouts/webhook", content=callback, headers=signed)
    await t.expect(401, "POST", "/api/payouts/webhook", content=callback)


async def operator(t: Tour) -> None:
    op = bearer(OPERATOR_TOKEN)
    await t.expect(401, "GET", "/api/admin/audit")
    await t.expect(403, "GET", "/api/admin/audit", headers=t.auth("alice"))
    await t.expect(200, "PUT", "/api/admin/creators/dave/eligibility", json={"force": True},
                   headers=op)  # fmt: skip
    await t.expect(400, "PUT", "/api/admin/creators/dave/eligibility", json={"force": "yes"},
                   headers=op)  # fmt: skip
    await t.expect(200, "POST", "/api/admin/users/bob/suspend", headers=op)
    await t.expect(200, "POST", "/api/admin/users/bob/unsuspend", headers=op)
    await t.expect(200, "PUT", "/api/admin/users/bob/age", json={"status": "adult"}, headers=op)
    await t.expect(200, "GET", "/api/admin/users/alice/ledger", headers=op)
    grant = {"user": "zed", "coins": 50, "reason": "welcome", "request_id": "g-1"}
    await t.expect(201, "POST", "/api/admin/grants", json=grant, headers=op)
    await t.expect(200, "POST", "/api/admin/grants", json=grant, headers=op)
    order = await t.expect(201, "POST", "/api/orders", json={"package": "coins_65"},
                           headers=t.auth("zed"))  # fmt: skip
    refund = {"order_id": order["order_id"], "reason": "other"}
    await t.expect(409, "POST", "/api/admin/refunds", json=refund, headers=op)  # not paid
    await t.expect(200, "POST", f"/api/sandbox/pay/{order['order_id']}", headers=t.auth("zed"))
    await t.expect(201, "POST", "/api/admin/refunds", json=refund, headers=op)
    await t.expect(200, "POST", "/api/admin/refunds", json=refund, headers=op)
    await t.expect(404, "POST", "/api/admin/refunds", json=refund | {"order_id": "0" * 32},
                   headers=op)  # fmt: skip
    await t.expect(200, "POST", "/api/admin/users/bob/unflag", headers=op)
    await t.expect(200, "POST", "/api/admin/tokens/revoke", json={"jti": "j-123"}, headers=op)
    await t.expect(200, "POST", "/api/admin/users/zed/revoke-tokens", headers=op)
    await t.expect(401, "GET", "/api/wallet", headers=t.auth("zed"))  # revoked
    await t.expect(200, "GET", "/api/admin/audit", headers=op)


async def test_answers_of_a_real_run_validate_against_the_spec(
    tour: tuple[Tour, SpecChecker],
) -> None:
    t, checker = tour
    for stage in (service_routes, catalog_and_tokens, wallet_and_orders, creators, streams,
                  gifts_and_the_room, payer, earnings_and_withdrawals, operator):  # fmt: skip
        await stage(t)
    statuses = {status for _, _, status in checker.seen}
    assert {200, 201, 202, 400, 401, 402, 403, 404, 409, 413} <= statuses
    visited = {(method, path) for method, path, _ in checker.seen}
    unvisited = {(method, path) for path, method, _ in operations(checker.spec)} - visited
    assert unvisited == set(), "operations the tour does not cover"
    assert "Traceback" not in t.server.output()


# ---------------------------------------------------------------- the page


async def test_the_docs_page_renders_the_spec_in_a_browser(
    server: ServerProcess, pages: Pages
) -> None:
    page = await pages.open("docs", f"{server.http}/docs")
    await expect(page.locator("body[data-ready=true]")).to_be_attached()
    orders = page.locator('section[data-path="/api/orders"][data-method="post"]')
    await expect(orders).to_contain_text("Order a recharge package")
    await expect(orders.locator("table.errors")).to_contain_text("unauthorized")
    await expect(orders.locator("table.errors")).to_contain_text("unknown_package")
    await expect(orders).to_contain_text("Credentials: a viewer's or a creator's token")
    await expect(page.locator("#schema-Order")).to_contain_text("order_id")
    await expect(page.locator("#websockets")).to_contain_text("/ws/rooms/{room_id}")
    assert not pages.errors


async def test_a_page_of_another_origin_imports_the_client_library(
    server: ServerProcess, pages: Pages
) -> None:
    page = await pages.open("docs", f"{server.http}/docs")
    # localhost is another origin than 127.0.0.1: the import needs CORS.
    library = server.http.replace("127.0.0.1", "localhost") + "/giftstream.js"
    exported = await page.evaluate("async (url) => Object.keys(await import(url)).sort()", library)
    assert "connect" in exported
