"""Try a giftstream demo server from a terminal: watch a room, buy coins, send gifts.

    .venv/bin/python scripts/demo_client.py watch carol            # the room's live feed
    .venv/bin/python scripts/demo_client.py buy alice coins_330    # sandbox checkout
    .venv/bin/python scripts/demo_client.py send alice carol rose 5 --times 3
    .venv/bin/python scripts/demo_client.py wallet carol --role creator

Each event is one line for people ("#42 alice -> carol  rose x15  (combo +5,
5 coins)"); --json prints what the server sent instead, one JSON object a
line. Tokens come from the demo server's dev token endpoint, so this works
only against `giftstream serve --demo` (scripts/serve). It speaks the JSON
subprotocol of docs/protocol.md through `server.client`, so a watch survives
a server restart: it reconnects and resumes where it was.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import urllib.error
import urllib.request
from typing import Any

from server.client import (
    ANY_MESSAGE,
    ConnectionFailed,
    ConnectionState,
    GiftstreamError,
    GiftstreamRoom,
    HandshakeRefused,
    StateDetail,
    connect,
)
from server.client.frames import new_request_id
from server.commands.help_format import CommandParser, DefaultsHelpFormatter
from server.core.wording import plural

SUBPROTOCOL = "giftstream.v1.json"
DEFAULT_SERVER = "http://127.0.0.1:8000"
BIG_TIERS = ("large", "fullscreen")
START_HINT = "is the server running? scripts/serve starts one"
HTTP_TIMEOUT = 10.0
# A gift's answer waits through reconnects; a server gone for good ends the wait.
SEND_TIMEOUT = 60.0

Message = dict[str, Any]


class ClientError(Exception):
    """Something the user can act on: printed as one line, exit status 1."""


# ---------------------------------------------------------------- lines for people


def coins(amount: int) -> str:
    return plural(amount, "coin")


def describe(message: Message) -> str:
    """One line for people about one message from the server (an ``events`` frame's
    elements each get their own); JSON for a type this client does not know."""
    kind = message.get("type")
    if kind in ("gift", "test_alert"):
        return _gift_line(message)
    if kind == "combo_end":
        return (
            f"#{message['seq']} {message['sender']} -> {message['room']}  "
            f"{message['gift']} x{message['count']}  (combo ended)"
        )
    if kind == "stream_started":
        return f"#{message['seq']} {message['room']} is live (stream {message['stream_id']})"
    if kind == "stream_ended":
        why = "unseen for too long" if message.get("reason") == "idle" else "ended by the creator"
        return (
            f"#{message['seq']} {message['room']} is offline: stream {message['stream_id']} {why}"
        )
    if kind == "viewers":
        return f"{plural(message['count'], 'viewer')} in the room"
    if kind == "welcome":
        return _welcome_line(message)
    if kind == "ack":
        again = "; a retry: nothing debited again" if message.get("duplicate") else ""
        return (
            f"ack {message['id']}: {coins(message['coins'])}, event #{message['seq']}, "
            f"balance {coins(message['balance'])}{again}"
        )
    if kind == "error":
        return _error_line(message)
    if kind == "pong":
        return f"pong {message.get('id')}"
    return json.dumps(message, ensure_ascii=False)


def _gift_line(event: Message) -> str:
    combo = event.get("combo")
    if combo:
        # A streak shows its running total, as the pages do.
        shown, detail = combo["count"], f"combo +{event['count']}, {coins(event['coins'])}"
    else:
        shown, detail = event["count"], coins(event["coins"])
    who = "test alert" if event["type"] == "test_alert" else f"#{event['seq']} {event['sender']}"
    line = f"{who} -> {event['room']}  {event['gift']} x{shown}  ({detail})"
    if event.get("tier") in BIG_TIERS:
        line += f"  ** big gift: {event['tier']} **"
    return line


def _welcome_line(welcome: Message) -> str:
    you = welcome.get("you") or {}
    who = you.get("user") or "anonymous"
    if welcome.get("balance") is not None:
        who += f" ({you.get('role')}, {coins(welcome['balance'])})"
    offline = "" if welcome.get("live", True) else " (offline: gifts wait for the next stream)"
    return (
        f"joined room {welcome['room']} as {who}: {plural(welcome['viewers'], 'viewer')}, "
        f"last event #{welcome['last_seq']}{offline}"
    )


def _error_line(error: Message) -> str:
    retry = "; temporary, try again later" if error.get("temporary") else ""
    if error.get("code") == "confirm_required":
        retry = "; send again with --confirm"
    return f"error {error['code']}: {error['message']}{retry}"


def wallet_line(wallet: Message) -> str:
    line = f"{wallet['user']}: {coins(wallet.get('coins', 0))}"
    if wallet.get("diamonds") or wallet.get("received"):
        line += f", {plural(wallet.get('diamonds', 0), 'diamond')}"
    if wallet.get("received"):
        # The platform's share is kept in hundredths of a coin, the creator's
        # carry in hundredths of a diamond (docs/money.md); `platform`, in
        # whole coins, is what wallets credited before that still hold.
        platform = 100 * wallet.get("platform", 0) + wallet.get("platform_hundredths", 0)
        carry = wallet.get("carry_hundredths", 0)
        carried = f", {in_hundredths(carry)} of a diamond carried" if carry else ""
        line += (
            f"; gifts received: {coins(wallet['received'])} "
            f"({plural(wallet.get('diamonds_earned', 0), 'diamond')} earned{carried}, "
            f"{in_hundredths(platform)} coins to the platform)"
        )
    return line


def in_hundredths(amount: int) -> str:
    """An amount held in hundredths, as a decimal: 850 -> "8.5", 300 -> "3"."""
    whole, cents = divmod(amount, 100)
    return f"{whole:,}" + (f".{cents:02d}".rstrip("0") if cents else "")


def show(message: Message, raw: bool) -> None:
    print(json.dumps(message, ensure_ascii=False) if raw else describe(message), flush=True)


# ---------------------------------------------------------------- the HTTP API


def _problem(status: int, reason: str, body: bytes | bytearray) -> str:
    """The server's error document as ``status code: detail``."""
    try:
        document = json.loads(body or b"{}")
    except ValueError:
        document = {}
    if not isinstance(document, dict):
        document = {}
    code = document.get("code", reason)
    detail = document.get("detail") or document.get("message") or ""
    return f"{status} {code}" + (f": {detail}" if detail else "")


class Api:
    """The demo server's HTTP API, through the standard library: `scripts/serve`
    installs only what serving needs, and this client must run with just that."""

    def __init__(self, server: str) -> None:
        self.server = server

    def call(
        self, method: str, path: str, body: Message | None = None, access: str | None = None
    ) -> Message:
        """The JSON answer to one call; a ClientError for an error answer or no answer."""
        headers = {"content-type": "application/json"} if body is not None else {}
        if access is not None:
            headers["authorization"] = f"Bearer {access}"
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.server + path, data, headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT) as response:
                answer: Message = json.loads(response.read())
                return answer
        except urllib.error.HTTPError as exc:
            hint = ""
            if exc.code == 404 and path.startswith(("/api/dev/", "/api/sandbox/")):
                hint = " (is the server in demo mode? scripts/serve starts one)"
            problem = _problem(exc.code, str(exc.reason), exc.read())
            raise ClientError(f"{method} {path}: {problem}{hint}") from None
        except urllib.error.URLError as exc:
            raise ClientError(f"cannot reach {self.server}: {exc.reason} ({START_HINT})") from None
        except (OSError, ValueError) as exc:
            raise ClientError(f"{method} {path}: no usable answer: {exc}") from None

    def token(self, user: str, role: str) -> str:
        return str(self.call("POST", "/api/dev/token", {"user": user, "role": role})["token"])


# ---------------------------------------------------------------- the room socket


async def open_room(server: str, room: str, access: str | None) -> GiftstreamRoom:
    """The room, welcomed, or a ClientError."""
    joined = connect(server, room, token=access, codec="json", open_timeout=HTTP_TIMEOUT)
    return await start_room(joined, server)


async def start_room(joined: GiftstreamRoom, server: str) -> GiftstreamRoom:
    try:
        await joined.start()
    except HandshakeRefused as exc:
        problem = _problem(exc.status, exc.reason, exc.body)
        raise ClientError(f"the server refused the room socket: {problem}") from None
    except ConnectionFailed as exc:
        raise ClientError(f"cannot reach {server}: {exc} ({START_HINT})") from None
    return joined


def report_state(state: ConnectionState, detail: StateDetail) -> None:
    # A restart or a dropped network is survived: worth a line, not the output.
    if state == "reconnecting" and detail.retry_in is not None:
        print(
            f"demo_client: {detail.reason}; reconnecting in {detail.retry_in:.1f} s",
            file=sys.stderr,
            flush=True,
        )


async def watch_room(server: str, room: str, access: str | None, raw: bool) -> None:
    watched = connect(server, room, token=access, codec="json", open_timeout=HTTP_TIMEOUT)
    if raw:
        watched.on_frame(lambda frame: show(frame, raw=True))
    else:
        # Elements of `events` frames each get their own line, as they come.
        watched.on_welcome(lambda welcome, _: show(welcome, raw=False))
        watched.on(ANY_MESSAGE, lambda message: show(message, raw=False))
    watched.on_state(report_state)
    await start_room(watched, server)
    try:
        # Until Ctrl-C: the room reconnects and resumes by itself.
        await asyncio.Event().wait()
    finally:
        await watched.close()


async def send_gifts(args: argparse.Namespace, access: str) -> int:
    refused = 0
    joined = await open_room(args.server, args.room, access)
    try:
        if joined.welcome is not None:
            show(joined.welcome, args.json)
        for _ in range(args.times):
            request_id = new_request_id()
            try:
                answer = await asyncio.wait_for(
                    joined.send_gift(
                        args.gift, args.count, confirm=args.confirm, request_id=request_id
                    ),
                    SEND_TIMEOUT,
                )
            except GiftstreamError as refusal:
                refused += 1
                show(refusal.frame, args.json)
                continue
            except TimeoutError:
                raise ClientError(
                    f"no answer to gift {request_id} within {SEND_TIMEOUT:g} s: it may have "
                    "been paid for; the wallet's history tells"
                ) from None
            if args.json:
                show(answer, args.json)
            else:
                print(
                    f"sent {args.gift} x{args.count} to {args.room}: {coins(answer['coins'])}, "
                    f"event #{answer['seq']}, balance {coins(answer['balance'])}",
                    flush=True,
                )
    finally:
        await joined.close()
    return 1 if refused else 0


# ---------------------------------------------------------------- commands


def watch(args: argparse.Namespace, api: Api) -> int:
    access = api.token(args.user, args.role) if args.user else None
    asyncio.run(watch_room(args.server, args.room, access, args.json))
    return 0


def send(args: argparse.Namespace, api: Api) -> int:
    return asyncio.run(send_gifts(args, api.token(args.user, "viewer")))


def buy(args: argparse.Namespace, api: Api) -> int:
    access = api.token(args.user, "viewer")
    order = api.call("POST", "/api/orders", {"package": args.package}, access)
    paid = api.call("POST", f"/api/sandbox/pay/{order['order_id']}", access=access)
    wallet = api.call("GET", "/api/wallet", access=access)
    if args.json:
        show(paid, raw=True)
        show(wallet, raw=True)
    else:
        print(f"{args.user} paid for {args.package} (sandbox): {paid['status']}", flush=True)
        print(wallet_line(wallet), flush=True)
    return 0


def wallet(args: argparse.Namespace, api: Api) -> int:
    answer = api.call("GET", "/api/wallet", access=api.token(args.user, args.role))
    print(json.dumps(answer, ensure_ascii=False) if args.json else wallet_line(answer), flush=True)
    return 0


# ---------------------------------------------------------------- command line


def server_url(text: str) -> str:
    if not text.startswith(("http://", "https://")):
        raise argparse.ArgumentTypeError(f"not an http:// or https:// URL: {text!r}")
    return text.rstrip("/")


def positive(text: str) -> int:
    try:
        number = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more: {number}")
    return number


class _Help(argparse.RawDescriptionHelpFormatter, DefaultsHelpFormatter):
    """The module's examples as written, and every option's default."""


def parser() -> argparse.ArgumentParser:
    p = CommandParser(description=__doc__, formatter_class=_Help)
    p.add_argument(
        "--server", type=server_url, default=DEFAULT_SERVER, help="the demo server's base URL"
    )
    p.add_argument(
        "--json", action="store_true", help="print what the server sent, one JSON object a line"
    )
    commands = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    w = commands.add_parser("watch", help="print a room's events as they come, until Ctrl-C")
    w.add_argument("room", help="the room: its creator's user id (the demo's is carol)")
    w.add_argument("--user", help="watch as this user (default: anonymous)")
    w.add_argument(
        "--role", default="viewer", choices=["viewer", "creator", "overlay"], help="--user's role"
    )
    s = commands.add_parser("send", help="send gifts to a room")
    s.add_argument("user", help="the sender, e.g. alice")
    s.add_argument("room", help="the room, e.g. carol")
    s.add_argument("gift", help="a gift id from GET /api/catalog, e.g. rose")
    s.add_argument("count", type=positive, nargs="?", default=1, help="gifts in one request")
    s.add_argument("--times", type=positive, default=1, help="requests, one after another")
    s.add_argument(
        "--confirm",
        action="store_true",
        help="confirm a send worth more than the server's confirmation threshold",
    )
    b = commands.add_parser("buy", help="buy a coin package through the sandbox")
    b.add_argument("user", help="the buyer, e.g. bob")
    b.add_argument("package", help="a package id from GET /api/catalog, e.g. coins_330")
    v = commands.add_parser("wallet", help="show a wallet")
    v.add_argument("user", help="whose wallet")
    v.add_argument(
        "--role", default="viewer", choices=["viewer", "creator"], help="the role that asks"
    )
    return p


COMMANDS = {"watch": watch, "send": send, "buy": buy, "wallet": wallet}


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args, Api(args.server))
    except KeyboardInterrupt:
        return 0
    except ClientError as exc:
        print(f"demo_client: {exc}", file=sys.stderr)
    except (GiftstreamError, OSError) as exc:
        print(f"demo_client: {exc or type(exc).__name__}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
