"""Room sockets opened with a token revoked since are closed, on every process,
within a second or two: by the token's id, or all of a user's tokens."""

from __future__ import annotations

import asyncio
from typing import Any

import jwt

from server.access.revocation_watch import revokes
from server.access.revocations import revoked_token_note, revoked_user_note
from server.core.auth import Identity, Role
from server.core.protocol import CloseCode
from tests.client import Api, RoomClient, bearer

OPERATOR_TOKEN = "operator-token-for-the-revocation-tests-01"


def viewer(user: str, token_id: str | None = "t1", issued_at: int | None = 1000) -> Identity:
    return Identity(user=user, role=Role.VIEWER, token_id=token_id, issued_at=issued_at)


def test_which_tokens_a_revocation_takes_back() -> None:
    assert revokes(revoked_token_note("t1"), viewer("rita"))
    assert not revokes(revoked_token_note("t2"), viewer("rita"))
    assert not revokes(revoked_token_note("t1"), viewer("rita", token_id=None))
    # All of a user's tokens issued up to a time: theirs only, and only older ones.
    assert revokes(revoked_user_note("rita", 1000), viewer("rita"))
    assert not revokes(revoked_user_note("rita", 999), viewer("rita"))
    assert not revokes(revoked_user_note("bob", 1000), viewer("rita"))
    assert revokes(revoked_user_note("rita", 1), viewer("rita", issued_at=None))
    # A token id may hold colons; the user revocation's fields do not.
    assert revokes(revoked_token_note("a:b:c"), viewer("rita", token_id="a:b:c"))
    # Overlays came with the room's key, watchers with nothing.
    overlay = Identity(user="carol", role=Role.OVERLAY)
    assert not revokes(revoked_user_note("carol", 10**10), overlay)
    assert not revokes(revoked_user_note("rita", 10**10), Identity(None, Role.ANONYMOUS))
    assert not revokes("nonsense", viewer("rita"))
    assert not revokes("user:x:rita", viewer("rita"))


async def closed_with(client: RoomClient, within: float = 6.0) -> int | None:
    """The close code the server ended ``client``'s socket with."""
    await asyncio.wait_for(client.socket.wait_closed(), within)
    return client.socket.close_code


async def still_open(client: RoomClient) -> bool:
    await client.send({"type": "ping", "id": "still-there"})
    pong = await client.of_type("pong")
    return bool(pong["id"] == "still-there")


async def test_sockets_of_revoked_tokens_are_closed_on_every_process(start_server: Any) -> None:
    first = await start_server(operator_token=OPERATOR_TOKEN)
    second = await start_server(operator_token=OPERATOR_TOKEN)
    api = Api(first.http)
    operator = bearer(OPERATOR_TOKEN)
    token_a, token_b = await api.token("rita"), await api.token("rita")
    on_first = await RoomClient.open(first.ws, "carol", token_a)
    on_second = await RoomClient.open(second.ws, "carol", token_b)
    neighbour = await RoomClient.open(first.ws, "carol", await api.token("bob"))
    for client in (on_first, on_second, neighbour):
        await client.of_type("welcome")

    claims = jwt.decode(token_a, options={"verify_signature": False})
    revoked = await api.http.post(
        "/api/admin/tokens/revoke",
        json={"jti": claims["jti"], "expires_at": claims["exp"]},
        headers=operator,
    )
    assert revoked.status_code == 200
    assert await closed_with(on_first) == CloseCode.TOKEN_REVOKED
    assert await still_open(on_second)  # rita's other token is still good

    everything = await api.http.post("/api/admin/users/rita/revoke-tokens", headers=operator)
    assert everything.status_code == 200
    assert await closed_with(on_second) == CloseCode.TOKEN_REVOKED
    assert await still_open(neighbour)
    for client in (on_first, on_second, neighbour):
        await client.close()
    await api.aclose()
