"""The terminal demo client, run as a newcomer runs it, against a real demo server;
and the lines it prints for people, one per event."""

from __future__ import annotations

import asyncio
import json
import re
import sys
from typing import Any

import pytest

from server.ops.embedded import free_port
from tests.client import Api, bearer
from tests.conftest import REPO_ROOT, ServerProcess, StartServer
from tests.test_cli import defaults_missing_from_help

sys.path.insert(0, str(REPO_ROOT / "scripts"))
import demo_client

RUN_TIMEOUT = 30.0


async def demo_client_process(*arguments: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, str(REPO_ROOT / "scripts" / "demo_client.py"), *arguments,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip


async def run(*arguments: str) -> tuple[int, list[str], list[str]]:
    """Exit status, stdout lines and stderr lines of one run to its end."""
    process = await demo_client_process(*arguments)
    out, err = await asyncio.wait_for(process.communicate(), RUN_TIMEOUT)
    assert process.returncode is not None
    return process.returncode, out.decode().splitlines(), err.decode().splitlines()


async def first_line(process: asyncio.subprocess.Process) -> str:
    assert process.stdout is not None
    return (await asyncio.wait_for(process.stdout.readline(), RUN_TIMEOUT)).decode().rstrip("\n")


async def stop(process: asyncio.subprocess.Process) -> list[str]:
    process.terminate()
    out, _ = await asyncio.wait_for(process.communicate(), RUN_TIMEOUT)
    return out.decode().splitlines()


# ---------------------------------------------------------------- lines for people


def gift(**fields: Any) -> dict[str, Any]:
    base = {
        "type": "gift", "seq": 42, "room": "carol", "sender": "alice", "gift": "rose",
        "count": 5, "coins": 5, "tier": "small", "ts": 1, "combo": None,
    }  # fmt: skip
    return base | fields


@pytest.mark.parametrize(
    ("message", "line"),
    [
        (
            gift(combo={"id": "c1", "count": 15}),
            "#42 alice -> carol  rose x15  (combo +5, 5 coins)",
        ),
        (
            gift(count=1, coins=1, combo={"id": "c1", "count": 1}),
            "#42 alice -> carol  rose x1  (combo +1, 1 coin)",
        ),
        (
            gift(gift="rocket", count=1, coins=1999, tier="large"),
            "#42 alice -> carol  rocket x1  (1,999 coins)  ** big gift: large **",
        ),
        (
            {"type": "combo_end", "seq": 47, "room": "carol", "sender": "alice", "gift": "rose",
             "combo": "c1", "count": 37, "ts": 2},
            "#47 alice -> carol  rose x37  (combo ended)",
        ),
        (
            gift(type="test_alert", seq=0, sender="Test alert", gift="money_gun", count=1,
                 coins=500, tier="large"),
            "test alert -> carol  money_gun x1  (500 coins)  ** big gift: large **",
        ),
        ({"type": "viewers", "count": 1}, "1 viewer in the room"),
        ({"type": "viewers", "count": 118}, "118 viewers in the room"),
        (
            {"type": "welcome", "room": "carol", "balance": None, "viewers": 3, "last_seq": 41,
             "you": {"user": None, "role": "anonymous", "can_send": False}},
            "joined room carol as anonymous: 3 viewers, last event #41",
        ),
        (
            {"type": "welcome", "room": "carol", "balance": 5000, "viewers": 1, "last_seq": 0,
             "you": {"user": "alice", "role": "viewer", "can_send": True}},
            "joined room carol as alice (viewer, 5,000 coins): 1 viewer, last event #0",
        ),
        (
            {"type": "ack", "id": "a1", "balance": 4995, "coins": 5, "seq": 42, "duplicate": True},
            "ack a1: 5 coins, event #42, balance 4,995 coins; a retry: nothing debited again",
        ),
        (
            {"type": "error", "id": "a2", "code": "insufficient_coins",
             "message": "44999 coins needed, 4995 held", "temporary": False},
            "error insufficient_coins: 44999 coins needed, 4995 held",
        ),
        (
            {"type": "error", "id": None, "code": "rate_limited", "message": "slow down",
             "temporary": True},
            "error rate_limited: slow down; temporary, try again later",
        ),
        ({"type": "pong", "id": "p-1"}, "pong p-1"),
        ({"type": "news", "n": 1}, '{"type": "news", "n": 1}'),
    ],
    ids=[
        "combo", "one-rose", "big", "combo-end", "test-alert", "one-viewer", "viewers",
        "welcome-anonymous", "welcome-user", "duplicate-ack", "error", "temporary-error", "pong",
        "unknown",
    ],
)  # fmt: skip
def test_describe(message: dict[str, Any], line: str) -> None:
    assert demo_client.describe(message) == line


@pytest.mark.parametrize(
    ("wallet", "line"),
    [
        ({"user": "bob", "coins": 1, "diamonds": 0}, "bob: 1 coin"),
        (
            {"user": "carol", "coins": 0, "diamonds": 1, "received": 3, "diamonds_earned": 1,
             "platform": 2},
            "carol: 0 coins, 1 diamond; gifts received: 3 coins (1 diamond earned, "
            "2 coins to the platform)",
        ),
        (
            {"user": "carol", "coins": 0, "diamonds": 8, "received": 17, "diamonds_earned": 8,
             "carry_hundredths": 50, "platform_hundredths": 850},
            "carol: 0 coins, 8 diamonds; gifts received: 17 coins (8 diamonds earned, "
            "0.5 of a diamond carried, 8.5 coins to the platform)",
        ),
        (
            {"user": "carol", "coins": 0, "diamonds": 1, "received": 3, "diamonds_earned": 1,
             "carry_hundredths": 5, "platform_hundredths": 195},
            "carol: 0 coins, 1 diamond; gifts received: 3 coins (1 diamond earned, "
            "0.05 of a diamond carried, 1.95 coins to the platform)",
        ),
    ],
)  # fmt: skip
def test_wallet_line(wallet: dict[str, Any], line: str) -> None:
    assert demo_client.wallet_line(wallet) == line


def test_every_default_is_in_the_help(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "1000")
    assert defaults_missing_from_help(demo_client.parser()) == []


# ---------------------------------------------------------------- against a real server


@pytest.fixture
async def lively(start_server: StartServer) -> ServerProcess:
    """Combos end 0.4 s after their last gift; viewer counts go out every 0.1 s."""
    return await start_server(combo_window_ms=400, viewer_count_interval_seconds=0.1)


async def wait_until_settled(server: ServerProcess, creator: str, received: int) -> None:
    api = Api(server.http)
    try:
        headers = bearer(await api.token(creator, "creator"))
        for _ in range(100):
            wallet = (await api.http.get("/api/wallet", headers=headers)).json()
            if wallet.get("received") == received:
                return
            await asyncio.sleep(0.1)
        raise AssertionError(f"{creator} never received {received}: {wallet}")
    finally:
        await api.aclose()


async def test_watch_prints_a_line_per_event(lively: ServerProcess) -> None:
    server = ("--server", lively.http)
    watcher = await demo_client_process(*server, "watch", "carol")
    raw = await demo_client_process(*server, "--json", "watch", "carol")
    assert (await first_line(watcher)).startswith("joined room carol as anonymous: ")
    assert json.loads(await first_line(raw))["type"] == "welcome"

    status, sent, _ = await run(*server, "send", "alice", "carol", "rose", "4", "--times", "2")
    assert status == 0
    assert sent[0].startswith("joined room carol as alice (viewer, 5,000 coins): ")
    # Event #1 is carol's stream_started: the demo puts her live as it starts.
    assert sent[1:] == [
        "sent rose x4 to carol: 4 coins, event #2, balance 4,996 coins",
        "sent rose x4 to carol: 4 coins, event #3, balance 4,992 coins",
    ]
    await asyncio.sleep(0.8)  # the streak ends
    status, sent, _ = await run(*server, "send", "alice", "carol", "rocket", "--confirm")
    assert (status, sent[-1]) == (
        0,
        "sent rocket x1 to carol: 1,999 coins, event #5, balance 2,993 coins",
    )
    status, sent, errors = await run(*server, "send", "bob", "carol", "universe")
    assert status == 1, errors
    assert sent[-1].startswith("error confirm_required: "), sent
    assert sent[-1].endswith("; send again with --confirm"), sent
    status, sent, errors = await run(*server, "send", "bob", "carol", "universe", "--confirm")
    assert status == 1, errors
    assert sent[-1].startswith("error insufficient_coins: "), sent
    await asyncio.sleep(0.5)

    watched = await stop(watcher)
    events = [line for line in watched if line.startswith("#")]
    assert events == [
        "#2 alice -> carol  rose x4  (combo +4, 4 coins)",
        "#3 alice -> carol  rose x8  (combo +4, 4 coins)",
        "#4 alice -> carol  rose x8  (combo ended)",
        "#5 alice -> carol  rocket x1  (1,999 coins)  ** big gift: large **",
    ]
    # The count moved as the other watcher and the senders came and went.
    assert any(re.fullmatch(r"[23] viewers in the room", line) for line in watched), watched

    frames = [json.loads(line) for line in await stop(raw)]
    shown = [
        event
        for frame in frames
        for event in (frame["events"] if frame["type"] == "events" else [frame])
        if event["type"] in ("gift", "combo_end")
    ]
    assert [(e["type"], e["seq"]) for e in shown] == [
        ("gift", 2), ("gift", 3), ("combo_end", 4), ("gift", 5),
    ]  # fmt: skip


async def test_wallet_and_buy_are_lines_too(server: ServerProcess) -> None:
    at = ("--server", server.http)
    assert (await run(*at, "send", "alice", "carol", "rose", "3"))[0] == 0
    await wait_until_settled(server, "carol", 3)
    status, shown, _ = await run(*at, "wallet", "carol", "--role", "creator")
    assert (status, shown) == (
        0,
        ["carol: 0 coins, 1 diamond; gifts received: 3 coins (1 diamond earned, "
         "0.5 of a diamond carried, 1.5 coins to the platform)"],
    )  # fmt: skip
    status, shown, _ = await run(*at, "buy", "bob", "coins_65")
    assert (status, shown) == (0, ["bob paid for coins_65 (sandbox): ok", "bob: 565 coins"])
    status, shown, _ = await run(*at, "--json", "wallet", "bob")
    assert status == 0
    assert json.loads(shown[0])["coins"] == 565


async def test_mistakes_are_one_line_each(server: ServerProcess) -> None:
    at = ("--server", server.http)
    status, _, errors = await run(*at, "watch", "no such room!")
    assert status == 1
    [line] = errors
    assert line.startswith("demo_client: the server refused the room socket: 404 unknown_room: ")
    status, _, errors = await run(*at, "wallet", "no such user!")
    assert status == 1
    [line] = errors
    assert line.startswith("demo_client: POST /api/dev/token: 400 bad_field: ")
    status, _, errors = await run(*at, "send", "alice", "carol", "rose", "0")
    assert status == 2
    assert errors[-1].endswith("argument count: must be 1 or more: 0")
    status, _, errors = await run("--server", "127.0.0.1:8000", "wallet", "bob")
    assert status == 2
    assert errors[-1].endswith("not an http:// or https:// URL: '127.0.0.1:8000'")
    nobody = f"http://127.0.0.1:{free_port()}"
    for command in (["watch", "carol"], ["wallet", "bob"]):
        status, _, errors = await run("--server", nobody, *command)
        assert status == 1
        [line] = errors
        assert line.startswith(f"demo_client: cannot reach {nobody}: "), line
        assert line.endswith("(is the server running? scripts/serve starts one)")
