"""The platform's tokens on a running server: published keys, rotation, revocation.

A real server checks RS256 and ES256 tokens against a JSON Web Key Set that
a small HTTP server on loopback publishes (as the platform would), picks up
a rotated key without a restart, and refuses with a typed reason on both
the HTTP API and the room socket's handshake. Revocation goes through the
operator API and a Redis deny list.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from server.client import HandshakeRefused
from tests.client import Api, RoomClient, bearer

ISSUER = "https://platform.test"
AUDIENCE = "giftstream"
OPERATOR_TOKEN = "operator-token-for-the-jwt-tests-0123"


class Platform:
    """The platform's side: its signing keys and the JWKS it publishes."""

    def __init__(self) -> None:
        self.keys: dict[str, Any] = {}
        self.published: list[dict[str, Any]] = []
        self.fetches = 0

    def add_key(self, kid: str, kind: str = "RS256") -> None:
        if kind == "RS256":
            private: Any = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(private.public_key()))
        else:
            private = ec.generate_private_key(ec.SECP256R1())
            public = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(private.public_key()))
        self.keys[kid] = (private, kind)
        self.published.append(public | {"kid": kid, "use": "sig", "alg": kind})

    def retire(self, kid: str) -> None:
        self.published = [key for key in self.published if key["kid"] != kid]

    def token(self, kid: str, user: str = "pat", **claims: Any) -> str:
        private, kind = self.keys[kid]
        now = int(time.time())
        body = {"sub": user, "iss": ISSUER, "aud": AUDIENCE, "iat": now, "exp": now + 600}
        body.update(claims)
        body = {name: value for name, value in body.items() if value is not None}
        return jwt.encode(body, private, algorithm=kind, headers={"kid": kid})


@pytest.fixture
def platform() -> Iterator[tuple[Platform, str]]:
    made = Platform()
    made.add_key("rsa-1")
    made.add_key("ec-1", "ES256")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            made.fetches += 1
            body = json.dumps({"keys": made.published}).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield made, f"http://127.0.0.1:{httpd.server_address[1]}/.well-known/jwks.json"
    httpd.shutdown()
    httpd.server_close()


async def refusal(server: Any, token: str) -> tuple[int, str, str]:
    """What the HTTP API and the room socket both say to ``token``."""
    async with httpx.AsyncClient(base_url=server.http) as http:
        answer = await http.get("/api/wallet", headers=bearer(token))
    with pytest.raises(HandshakeRefused) as refused:
        await RoomClient.open(server.ws, "carol", token)
    socket, http = refused.value, answer.json()
    assert (socket.code, socket.fields["reason"]) == (http["code"], http["reason"])
    assert socket.status == answer.status_code
    return answer.status_code, answer.json()["code"], answer.json()["reason"]


async def test_tokens_signed_with_published_keys_are_taken_and_rotated_keys_too(
    start_server: Any, platform: tuple[Platform, str]
) -> None:
    keys, url = platform
    server = await start_server(
        jwks_url=url, jwt_issuer=ISSUER, jwt_audience=AUDIENCE, jwks_refetch_seconds=0.5
    )
    api = Api(server.http)
    for kid in ("rsa-1", "ec-1"):
        token = keys.token(kid, user=f"pat-{kid}")
        assert (await api.wallet(token))["user"] == f"pat-{kid}"
        socket = await RoomClient.open(server.ws, "carol", token)
        assert (await socket.of_type("welcome"))["you"]["user"] == f"pat-{kid}"
        await socket.close()
    assert keys.fetches == 1  # the set is kept
    # The platform rotates: a new key, the old one retired.
    keys.add_key("rsa-2")
    keys.retire("rsa-1")
    await asyncio.sleep(0.6)
    rotated = keys.token("rsa-2", user="pat-rotated")
    assert (await api.wallet(rotated))["user"] == "pat-rotated"
    assert keys.fetches == 2
    # A key id nobody published: refused, and the set is not fetched each time.
    made_up = keys.token("rsa-1", user="pat-old")  # signed with the retired key
    keys.keys["nobody"] = keys.keys["rsa-2"]
    for _ in range(5):
        assert await refusal(server, keys.token("nobody")) == (401, "unauthorized", "unknown_key")
    assert keys.fetches <= 4
    await asyncio.sleep(0.6)
    assert await refusal(server, made_up) == (401, "unauthorized", "unknown_key")
    await api.aclose()


async def test_each_bad_token_gets_its_own_reason(
    start_server: Any, platform: tuple[Platform, str]
) -> None:
    keys, url = platform
    server = await start_server(jwks_url=url, jwt_issuer=ISSUER, jwt_audience=AUDIENCE)
    now = int(time.time())
    cases = {
        "expired": keys.token("rsa-1", exp=now - 120, iat=now - 720),
        "wrong_audience": keys.token("rsa-1", aud="another-service"),
        "wrong_issuer": keys.token("rsa-1", iss="https://evil.test"),
        "not_yet_valid": keys.token("rsa-1", nbf=now + 600),
        "bad_claims": keys.token("rsa-1", role="admin"),
        "malformed": "not-a-token",
    }
    forged = keys.token("rsa-1").rsplit(".", 1)[0] + "." + keys.token("ec-1").rsplit(".", 1)[1]
    cases["bad_signature"] = forged
    for reason, token in cases.items():
        assert await refusal(server, token) == (401, "unauthorized", reason), reason
    # The demo's own tokens carry the issuer and audience, and still work.
    api = Api(server.http)
    demo = await api.token("dana")
    assert jwt.decode(demo, options={"verify_signature": False})["aud"] == AUDIENCE
    assert (await api.wallet(demo))["user"] == "dana"
    await api.aclose()


async def test_a_revoked_token_and_then_all_of_a_users_tokens_are_refused(
    start_server: Any,
) -> None:
    server = await start_server(operator_token=OPERATOR_TOKEN)
    api = Api(server.http)
    operator = bearer(OPERATOR_TOKEN)
    first, second = await api.token("rita"), await api.token("rita")
    claims = jwt.decode(first, options={"verify_signature": False})
    revoked = await api.http.post(
        "/api/admin/tokens/revoke",
        json={"jti": claims["jti"], "expires_at": claims["exp"]},
        headers=operator,
    )
    assert revoked.json() == {"jti": claims["jti"], "expires_at": claims["exp"], "revoked": True}
    assert await refusal(server, first) == (401, "unauthorized", "revoked")
    assert (await api.wallet(second))["user"] == "rita"
    socket = await RoomClient.open(server.ws, "carol", second)
    await socket.of_type("welcome")
    everything = await api.http.post("/api/admin/users/rita/revoke-tokens", headers=operator)
    assert everything.json()["user"] == "rita"
    assert await refusal(server, second) == (401, "unauthorized", "revoked")
    # Signing in again (a token issued after) works.
    await asyncio.sleep(1.1)
    assert (await api.wallet(await api.token("rita")))["user"] == "rita"
    audit = (await api.http.get("/api/admin/audit", headers=operator)).json()["actions"]
    assert [a["action"] for a in audit[:2]] == ["revoke_tokens", "revoke_token"]
    await socket.close()
    await api.aclose()


async def test_the_platforms_operators_use_the_operator_api_with_their_tokens(
    start_server: Any, platform: tuple[Platform, str]
) -> None:
    keys, url = platform
    server = await start_server(jwks_url=url, jwt_issuer=ISSUER, jwt_audience=AUDIENCE)
    async with httpx.AsyncClient(base_url=server.http) as http:
        staff = bearer(keys.token("ec-1", user="olga", role="operator"))
        suspended = await http.post("/api/admin/users/mallory/suspend", headers=staff)
        assert suspended.status_code == 200
        audit = (await http.get("/api/admin/audit", headers=staff)).json()["actions"]
        assert audit[0]["who"] == "operator:olga"
        viewer = bearer(keys.token("ec-1", user="vic"))
        refused = await http.get("/api/admin/audit", headers=viewer)
        assert (refused.status_code, refused.json()["code"]) == (403, "not_allowed")
        # An operator holds no wallet.
        wallet = await http.get("/api/wallet", headers=staff)
        assert (wallet.status_code, wallet.json()["code"]) == (403, "not_allowed")
