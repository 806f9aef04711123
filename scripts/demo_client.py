"""Try a giftstream demo server from a terminal: watch a room, buy coins, send gifts.

    python scripts/demo_client.py watch carol              # the room's live feed
    python scripts/demo_client.py buy alice coins_330      # sandbox checkout
    python scripts/demo_client.py send alice carol rose 5 --times 3
    python scripts/demo_client.py wallet carol --role creator

Tokens come from the demo server's dev token endpoint, so this works only
against `giftstream serve --demo`. It speaks the JSON subprotocol of
docs/protocol.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import sys
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect

SUBPROTOCOL = "giftstream.v1.json"


async def token(http: httpx.AsyncClient, user: str, role: str) -> str:
    response = await http.post("/api/dev/token", json={"user": user, "role": role})
    response.raise_for_status()
    return str(response.json()["token"])


def show(message: dict[str, Any]) -> None:
    print(json.dumps(message, separators=(", ", ": ")), flush=True)


def ws_url(server: str, room: str, access: str | None) -> str:
    base = "ws" + server.removeprefix("http") + f"/ws/rooms/{room}"
    return base + (f"?token={access}" if access else "")


async def watch(args: argparse.Namespace, http: httpx.AsyncClient) -> None:
    access = await token(http, args.user, args.role) if args.user else None
    async with connect(ws_url(args.server, args.room, access), subprotocols=[SUBPROTOCOL]) as ws:  # type: ignore[list-item]
        async for frame in ws:
            message = json.loads(frame)
            for event in message["events"] if message["type"] == "events" else [message]:
                show(event)


async def reply_to(ws: ClientConnection, request_id: str) -> dict[str, Any]:
    while True:
        message: dict[str, Any] = json.loads(await ws.recv())
        if message.get("id") == request_id and message["type"] in ("ack", "error"):
            return message


async def send(args: argparse.Namespace, http: httpx.AsyncClient) -> None:
    access = await token(http, args.user, "viewer")
    async with connect(ws_url(args.server, args.room, access), subprotocols=[SUBPROTOCOL]) as ws:  # type: ignore[list-item]
        show(json.loads(await ws.recv()))  # welcome
        for _ in range(args.times):
            request_id = secrets.token_hex(8)
            gift = {"type": "gift", "id": request_id, "gift": args.gift, "count": args.count}
            await ws.send(json.dumps(gift))
            show(await reply_to(ws, request_id))


async def buy(args: argparse.Namespace, http: httpx.AsyncClient) -> None:
    headers = {"authorization": f"Bearer {await token(http, args.user, 'viewer')}"}
    order = await http.post("/api/orders", json={"package": args.package}, headers=headers)
    order.raise_for_status()
    paid = await http.post(f"/api/sandbox/pay/{order.json()['order_id']}", headers=headers)
    show(paid.json())
    show((await http.get("/api/wallet", headers=headers)).json())


async def wallet(args: argparse.Namespace, http: httpx.AsyncClient) -> None:
    headers = {"authorization": f"Bearer {await token(http, args.user, args.role)}"}
    show((await http.get("/api/wallet", headers=headers)).json())


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--server", default="http://127.0.0.1:8000", help="the server's base URL")
    commands = p.add_subparsers(dest="command", required=True)
    w = commands.add_parser("watch", help="print a room's events as they come")
    w.add_argument("room")
    w.add_argument("--user", help="watch as this user (default: anonymous)")
    w.add_argument("--role", default="viewer", choices=["viewer", "creator", "overlay"])
    s = commands.add_parser("send", help="send gifts to a room")
    s.add_argument("user")
    s.add_argument("room")
    s.add_argument("gift")
    s.add_argument("count", type=int, nargs="?", default=1)
    s.add_argument("--times", type=int, default=1)
    b = commands.add_parser("buy", help="buy a coin package through the sandbox")
    b.add_argument("user")
    b.add_argument("package")
    v = commands.add_parser("wallet", help="show a wallet")
    v.add_argument("user")
    v.add_argument("--role", default="viewer", choices=["viewer", "creator"])
    return p


async def run(args: argparse.Namespace) -> None:
    handlers = {"watch": watch, "send": send, "buy": buy, "wallet": wallet}
    async with httpx.AsyncClient(base_url=args.server, timeout=10) as http:
        await handlers[args.command](args, http)


def main() -> int:
    args = parser().parse_args()
    try:
        asyncio.run(run(args))
    except KeyboardInterrupt:
        return 0
    except (httpx.HTTPError, OSError) as exc:
        print(f"demo_client: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
