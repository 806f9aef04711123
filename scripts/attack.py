"""Attacks on a running giftstream server, with bounded sizes, and what it did.

    .venv/bin/python scripts/attack.py http://127.0.0.1:8000 [--redis-url URL]

Loopback only: the target must be on this machine (127.0.0.0/8 or ::1),
which is also what lets the script read the server's memory from /proc.
The server must run in demo mode (dev tokens). Each attack is bounded in
size and time and stops by itself; after each, a real gift must still be
acknowledged. For each it prints what it tried, the answers it got, the
server's RSS growth, the growth in Redis keys and in keys without a time
to live (with --redis-url), the time it took, and whether the server held.
docs/security.md records a run.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import secrets
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx
from redis.asyncio import Redis
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus, WebSocketException
from websockets.typing import Subprotocol

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from server.loadtest.serverproc import find_server_pid, rss_bytes

MB = 1024 * 1024


@dataclass
class Outcome:
    answers: Counter[str] = field(default_factory=Counter)

    def saw(self, answer: object) -> None:
        self.answers[str(answer)] += 1


@dataclass
class Target:
    base: str
    pid: int | None
    redis: Redis | None

    @property
    def host(self) -> str:
        return urlsplit(self.base).hostname or "127.0.0.1"

    @property
    def port(self) -> int:
        return urlsplit(self.base).port or 80

    @property
    def ws(self) -> str:
        return "ws" + self.base.removeprefix("http")

    def rss(self) -> int:
        return (rss_bytes(self.pid) if self.pid else None) or 0

    async def keys(self) -> tuple[int, int]:
        """Keys in Redis, and how many of them have no time to live.

        A room's open combos (``...:combos``) are not counted: the hash goes
        when its last combo ends, a window after the checking rose, which
        may fall in the middle of the next attack.
        """
        if self.redis is None:
            return 0, 0
        total = immortal = 0
        async for key in self.redis.scan_iter(count=1000):
            if key.endswith(b":combos"):
                continue
            total += 1
            immortal += await self.redis.ttl(key) == -1
        return total, immortal


async def token(http: httpx.AsyncClient, user: str, role: str = "viewer") -> str:
    answer = await http.post("/api/dev/token", json={"user": user, "role": role})
    answer.raise_for_status()
    return str(answer.json()["token"])


async def raw(target: Target, data: list[bytes], read: bool = True) -> str:
    """Write ``data`` piece by piece on one connection; the status line answered."""
    reader, writer = await asyncio.open_connection(target.host, target.port)
    try:
        first = asyncio.ensure_future(reader.readline())
        for piece in data:
            if first.done():
                break
            writer.write(piece)
            try:
                await writer.drain()
            except ConnectionError:
                break
            await asyncio.sleep(0)
        if not read:
            return "sent"
        line = await asyncio.wait_for(first, 15)
        return line.decode(errors="replace").split(" ")[1] if line else "closed"
    except (ConnectionError, TimeoutError):
        return "closed"
    finally:
        writer.close()


def post_head(path: str, bearer: str, extra: str) -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Authorization: Bearer {bearer}\r\n{extra}\r\n"
    ).encode()


# ---------------------------------------------------------------- the attacks


async def big_bodies(target: Target, http: httpx.AsyncClient, out: Outcome) -> str:
    bearer = await token(http, "attacker")
    declared = post_head("/api/orders", bearer, f"Content-Length: {400 * MB}\r\n")
    out.saw(await raw(target, [declared, b" " * MB]))
    chunk = b"100000\r\n" + b" " * 0x100000 + b"\r\n"
    chunked = post_head("/api/orders", bearer, "Transfer-Encoding: chunked\r\n")
    for answer in await asyncio.gather(*(raw(target, [chunked] + [chunk] * 20) for _ in range(8))):
        out.saw(answer)
    return "a 400 MiB declared body, then 8 chunked 20 MiB bodies at once"


async def deep_json(target: Target, http: httpx.AsyncClient, out: Outcome) -> str:
    headers = {"authorization": f"Bearer {await token(http, 'attacker')}"}
    for depth in (40, 5000):
        body = b'{"package": ' + b"[" * depth + b"]" * depth + b"}"
        out.saw((await http.post("/api/orders", content=body, headers=headers)).status_code)
    return "JSON bodies nested 40 and 5,000 deep"


async def big_heads(target: Target, http: httpx.AsyncClient, out: Outcome) -> str:
    head = b"GET /livez HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Pad: " + b"a" * 20_000 + b"\r\n\r\n"
    out.saw(await raw(target, [head]))
    out.saw(await raw(target, [head[i : i + 1000] for i in range(0, len(head), 1000)]))
    return "a 20 KB request head, in one write and trickled"


async def slow_bodies(target: Target, http: httpx.AsyncClient, out: Outcome) -> str:
    bearer = await token(http, "attacker")
    head = post_head("/api/orders", bearer, "Content-Length: 1000\r\n")

    async def trickle() -> str:
        reader, writer = await asyncio.open_connection(target.host, target.port)
        try:
            writer.write(head)
            for _ in range(150):  # a byte every 0.1 s would take 100 s
                writer.write(b" ")
                await writer.drain()
                try:
                    if await asyncio.wait_for(reader.read(1), 0.1) == b"":
                        return "closed"
                except TimeoutError:
                    continue
            return "still open"
        except ConnectionError:
            return "closed"
        finally:
            writer.close()

    for answer in await asyncio.gather(*(trickle() for _ in range(50))):
        out.saw(answer)
    return "50 bodies trickled a byte every 0.1 s (15 s at most)"


async def random_rooms(target: Target, http: httpx.AsyncClient, out: Outcome) -> str:
    async def look() -> str:
        room = "r" + secrets.token_hex(8)
        try:
            async with connect(f"{target.ws}/ws/rooms/{room}", open_timeout=10) as socket:
                await asyncio.wait_for(socket.recv(), 10)
                return "welcomed"
        except (InvalidStatus, WebSocketException, OSError, TimeoutError) as exc:
            return type(exc).__name__

    for batch in range(5):
        for answer in await asyncio.gather(*(look() for _ in range(100))):
            out.saw(answer)
        del batch
    return "500 anonymous sockets to random room ids"


async def socket_race(target: Target, http: httpx.AsyncClient, out: Outcome) -> str:
    query = urlencode({"token": await token(http, "hoarder" + secrets.token_hex(3))})
    opened: list[Any] = []

    async def try_open() -> str:
        try:
            socket = await connect(f"{target.ws}/ws/rooms/carol?{query}", open_timeout=10)
        except InvalidStatus as exc:
            return str(exc.response.status_code)
        opened.append(socket)
        return "open"

    for answer in await asyncio.gather(*(try_open() for _ in range(200))):
        out.saw(answer)
    await asyncio.gather(*(socket.close() for socket in opened), return_exceptions=True)
    return "200 handshakes of one user at once"


async def connection_flood(target: Target, http: httpx.AsyncClient, out: Outcome) -> str:
    # From 127.0.0.2: 127.0.0.1 is exempt from the cap (a local proxy stands there).
    async def hold() -> tuple[str, asyncio.StreamWriter | None]:
        try:
            reader, writer = await asyncio.open_connection(
                target.host, target.port, local_addr=("127.0.0.2", 0)
            )
        except OSError:
            return "not connected", None
        try:
            line = await asyncio.wait_for(reader.readline(), 1.0)
        except TimeoutError:
            return "held", writer
        except ConnectionError:
            return "closed", writer
        return (line.decode(errors="replace").split(" ")[1] if line else "closed"), writer

    held = await asyncio.gather(*(hold() for _ in range(600)))
    for answer, writer in held:
        out.saw(answer)
        if writer is not None:
            writer.close()
    return "600 idle connections from one address at once"


async def order_flood(target: Target, http: httpx.AsyncClient, out: Outcome) -> str:
    headers = {"authorization": f"Bearer {await token(http, 'buyer' + secrets.token_hex(3))}"}
    for _ in range(300):
        answer = await http.post("/api/orders", json={"package": "coins_65"}, headers=headers)
        out.saw(answer.status_code)
    return "300 orders from one user, back to back"


async def rebinding(target: Target, http: httpx.AsyncClient, out: Outcome) -> str:
    evil = {"host": "rebound.evil.example:8000", "origin": "http://rebound.evil.example:8000"}
    out.saw((await http.get("/api/catalog", headers=evil)).status_code)
    out.saw((await http.get("/viewer.html", headers=evil)).status_code)
    return "requests whose Host and Origin are a rebound name"


ATTACKS: dict[str, Callable[[Target, httpx.AsyncClient, Outcome], Awaitable[str]]] = {
    "big_bodies": big_bodies,
    "deep_json": deep_json,
    "big_heads": big_heads,
    "slow_bodies": slow_bodies,
    "random_rooms": random_rooms,
    "socket_race": socket_race,
    "connection_flood": connection_flood,
    "order_flood": order_flood,
    "rebinding": rebinding,
}


# ---------------------------------------------------------------- running


async def paying_viewer(http: httpx.AsyncClient) -> str:
    """A viewer with coins, made once: checks after each attack write no new wallet."""
    bearer = await token(http, "check" + secrets.token_hex(3))
    headers = {"authorization": f"Bearer {bearer}"}
    order = await http.post("/api/orders", json={"package": "coins_330"}, headers=headers)
    order.raise_for_status()
    await http.post(f"/api/sandbox/pay/{order.json()['order_id']}", headers=headers)
    return bearer


async def gift_goes_through(target: Target, bearer: str) -> bool:
    """The paying viewer sends a rose and gets its ack."""
    request_id = "g" + secrets.token_hex(4)
    try:
        async with connect(
            f"{target.ws}/ws/rooms/carol?{urlencode({'token': bearer})}",
            subprotocols=[Subprotocol("giftstream.v1.json")],
        ) as socket:
            gift = {"type": "gift", "id": request_id, "gift": "rose", "count": 1}
            await socket.send(json.dumps(gift))
            for _ in range(20):
                message = json.loads(await asyncio.wait_for(socket.recv(), 10))
                if message.get("id") == request_id:
                    return bool(message.get("type") == "ack")
    except (WebSocketException, OSError, TimeoutError):
        return False
    return False


async def run(base: str, redis_url: str | None, only: list[str]) -> list[dict[str, Any]]:
    host = urlsplit(base).hostname or ""
    if not ipaddress.ip_address(host.replace("localhost", "127.0.0.1")).is_loopback:
        raise SystemExit("attack.py attacks only a server on this machine (loopback)")
    redis = Redis.from_url(redis_url) if redis_url else None
    target = Target(base, find_server_pid(base), redis)
    rows = []
    async with httpx.AsyncClient(base_url=base, timeout=30.0) as http:
        checker = await paying_viewer(http)
        # A first gift, credited and counted in the creator's reports before
        # any count: the report keys exist from here on, and no row counts
        # them as its own. Reading the earnings counts the reports at once.
        if not await gift_goes_through(target, checker):
            raise SystemExit("the server does not acknowledge a gift before any attack")
        creator = {"authorization": f"Bearer {await token(http, 'carol', role='creator')}"}
        (await http.get("/api/creator/earnings", headers=creator)).raise_for_status()
        await asyncio.sleep(1.0)
        for name in only or list(ATTACKS):
            out = Outcome()
            rss_before, (keys_before, immortal_before) = target.rss(), await target.keys()
            started = time.perf_counter()
            tried = await ATTACKS[name](target, http, out)
            seconds = time.perf_counter() - started
            await asyncio.sleep(1.0)  # let closes, clean-ups and settlement land
            keys_after, immortal_after = await target.keys()
            rows.append(
                {
                    "attack": name,
                    "tried": tried,
                    "answers": dict(out.answers),
                    "rss_growth_mb": (target.rss() - rss_before) / MB if target.pid else None,
                    "keys_growth": keys_after - keys_before if redis else None,
                    "keys_without_ttl_growth": immortal_after - immortal_before if redis else None,
                    "seconds": round(seconds, 1),
                    "gift_after": await gift_goes_through(target, checker),
                }
            )
            await asyncio.sleep(1.0)  # its settlement lands before the next count
            print(line(rows[-1]), flush=True)
    if redis is not None:
        await redis.aclose()
    return rows


def line(row: dict[str, Any]) -> str:
    answers = ", ".join(f"{answer} x{n}" for answer, n in sorted(row["answers"].items()))
    rss = "?" if row["rss_growth_mb"] is None else f"{row['rss_growth_mb']:+.1f} MB"
    keys = "?" if row["keys_growth"] is None else f"{row['keys_growth']:+d}"
    immortal = (
        "?" if row["keys_without_ttl_growth"] is None else f"{row['keys_without_ttl_growth']:+d}"
    )
    held = "gift acked after" if row["gift_after"] else "NO GIFT AFTER"
    return (
        f"{row['attack']:<17} {row['tried']}\n"
        f"{'':<17} answers: {answers}; RSS {rss}; keys {keys} ({immortal} without TTL); "
        f"{row['seconds']:.1f} s; {held}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("base", help="the server, e.g. http://127.0.0.1:8000 (loopback only)")
    parser.add_argument("--redis-url", help="its Redis, to count keys (default: not counted)")
    parser.add_argument("--only", nargs="*", default=[], choices=sorted(ATTACKS), help="attacks")
    parser.add_argument("--json", type=Path, help="also write the rows to this file")
    args = parser.parse_args()
    rows = asyncio.run(run(args.base, args.redis_url, args.only))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    if not all(row["gift_after"] for row in rows):
        sys.exit(1)


if __name__ == "__main__":
    main()
