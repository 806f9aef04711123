"""A small client of the documented protocol, for tests: real HTTP, real WebSockets.

``RoomClient`` is one socket, opened and read through ``server.client``
(the package's client), that remembers every message: tests look at what
the server sent, frame by frame, and send frames the client never would.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection

from server.client.connection import messages_of, open_room_socket
from server.client.frames import CodecName, Message, decode, encode, gift_frame


class RoomClient:
    """One room socket; remembers every message it has read, batches unpacked."""

    def __init__(self, socket: ClientConnection, codec: str) -> None:
        self.socket = socket
        self.codec = codec
        self.encoding: CodecName = "json" if codec.endswith("json") else "msgpack"
        self.seen: list[Message] = []
        self.frames = 0
        self._unread: list[Message] = []

    @classmethod
    async def open(
        cls,
        ws_base: str,
        room: str,
        token: str | None = None,
        codec: str = "giftstream.v1.msgpack",
        query: dict[str, str] | None = None,
        **options: Any,
    ) -> RoomClient:
        """Raises ``HandshakeRefused`` (with ``status`` and ``code``) when refused."""
        params = {**({"token": token} if token else {}), **(query or {})}
        socket = await open_room_socket(ws_base, room, params, codec, **options)
        return cls(socket, codec)

    async def send(self, message: Message) -> None:
        await self.socket.send(encode(message, self.encoding))

    async def send_raw(self, frame: bytes | str) -> None:
        await self.socket.send(frame)

    def _decode(self, frame: bytes | str) -> Message:
        if isinstance(frame, str):
            assert self.codec.endswith("json"), "text frame on a msgpack socket"
        else:
            assert self.codec.endswith("msgpack"), "binary frame on a JSON socket"
        decoded = decode(frame)
        assert decoded is not None, f"a frame that is not a map: {frame!r}"
        return decoded

    async def _read_frame(self, within: float) -> None:
        frame = await asyncio.wait_for(self.socket.recv(), within)
        self.frames += 1
        messages = messages_of(self._decode(frame))
        self.seen.extend(messages)
        self._unread.extend(messages)

    async def next(self, predicate: Callable[[Message], bool], within: float = 5.0) -> Message:
        """The first unread message matching ``predicate``; others stay unread."""
        deadline = time.monotonic() + within
        while True:
            for index, message in enumerate(self._unread):
                if predicate(message):
                    return self._unread.pop(index)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no matching message; unread: {self._unread[-5:]}")
            await self._read_frame(remaining)

    async def of_type(self, kind: str, within: float = 5.0) -> Message:
        return await self.next(lambda m: m.get("type") == kind, within)

    async def reply(self, request_id: str, within: float = 5.0) -> Message:
        """The ack or error answering ``request_id``."""
        return await self.next(
            lambda m: m.get("type") in ("ack", "error") and m.get("id") == request_id, within
        )

    async def gift(
        self, request_id: str, gift: str, count: int = 1, confirm: bool = False
    ) -> Message:
        """Send a gift and wait for its answer; ``confirm`` for a send worth more
        than the confirmation threshold (1,000 coins by default)."""
        await self.send(gift_frame(request_id, gift, count, confirm))
        return await self.reply(request_id)

    async def drain(self, quiet: float = 0.3) -> list[Message]:
        """Read until nothing arrives for ``quiet`` seconds; return all unread."""
        while True:
            try:
                await self._read_frame(quiet)
            except TimeoutError:
                break
        unread, self._unread = self._unread, []
        return unread

    async def close(self) -> None:
        await self.socket.close()


class Api:
    """The HTTP API of one running server."""

    def __init__(self, base: str) -> None:
        self.http = httpx.AsyncClient(base_url=base, timeout=10.0)

    async def token(self, user: str, role: str = "viewer", adult: bool = False) -> str:
        body: dict[str, Any] = {"user": user, "role": role}
        if adult:
            body["adult"] = True
        response = await self.http.post("/api/dev/token", json=body)
        response.raise_for_status()
        token: str = response.json()["token"]
        return token

    async def wallet(self, token: str) -> Message:
        response = await self.http.get("/api/wallet", headers=bearer(token))
        response.raise_for_status()
        wallet: Message = response.json()
        return wallet

    async def order(self, token: str, package: str) -> str:
        response = await self.http.post(
            "/api/orders", json={"package": package}, headers=bearer(token)
        )
        response.raise_for_status()
        order_id: str = response.json()["order_id"]
        return order_id

    async def buy(self, token: str, package: str) -> Message:
        """Order a package and pay it through the sandbox provider."""
        order_id = await self.order(token, package)
        response = await self.http.post(f"/api/sandbox/pay/{order_id}", headers=bearer(token))
        response.raise_for_status()
        paid: Message = response.json()
        return paid

    async def aclose(self) -> None:
        await self.http.aclose()


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


async def funded_sender(ws: str, api: Api, user: str, room: str = "carol") -> RoomClient:
    """A viewer with 330 coins bought through the sandbox, in ``room``, welcomed."""
    token = await api.token(user)
    await api.buy(token, "coins_330")
    client = await RoomClient.open(ws, room, token)
    await client.of_type("welcome")
    return client
