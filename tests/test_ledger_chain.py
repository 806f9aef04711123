"""The ledger's hash chain: written by the scripts, exported, verified offline.

A real server takes real gifts; the export comes from the real Valkey
through ``giftstream ledger export``, and ``giftstream ledger verify``
checks it in a process that is given no Redis at all. Then the file is
tampered with as an insider would (an entry edited, removed, moved; one
taken off the end) and each is caught, at the line where the chain breaks.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import sys
from pathlib import Path
from typing import Any

from redis.asyncio import Redis

from server.core.keys import WalletKeys
from server.core.ledger_chain import chain_breach, entry_hash, exact_text
from server.money import reconcile
from tests.client import Api, RoomClient, funded_sender


async def run(*arguments: str) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "server", *arguments,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    output, _ = await process.communicate()
    assert process.returncode is not None
    return process.returncode, output.decode()


async def export(path: Path, server: Any, redis_url: str) -> None:
    status, output = await run(
        "ledger", "export", str(path), "--redis-url", redis_url,
        "--key-prefix", server.key_prefix,
    )  # fmt: skip
    assert status == 0, output


async def verify(path: Path) -> tuple[int, str]:
    # No Redis is named, and none is needed.
    return await run("ledger", "verify", str(path))


async def send_some_gifts(server: Any, api: Api, user: str, gifts: int) -> None:
    sender = await funded_sender(server.ws, api, user)
    for index in range(gifts):
        ack = await sender.gift(f"{user}-{index}", "rose" if index % 2 else "hand_hearts", 1)
        assert ack["type"] == "ack", ack
    await sender.close()


def read(entries: Any) -> list[tuple[str, list[tuple[str, str]]]]:
    """XRANGE's answer as ids and ordered field pairs, as the chain hashes them."""
    return [
        (exact_text(entry_id), [(exact_text(k), exact_text(v)) for k, v in fields.items()])
        for entry_id, fields in entries
    ]


async def test_each_entry_carries_the_hash_of_the_one_before(
    server: Any, api: Api, redis: Redis
) -> None:
    await send_some_gifts(server, api, "chained", 3)
    for user in ("chained", "carol"):  # a payer's ledger, and a creator's credits
        keys = WalletKeys(server.key_prefix, user)
        entries = read(await redis.xrange(keys.ledger))
        head = exact_text(await redis.hget(keys.wallet, "chain"))
        assert entries[0][1][0] == ("prev", "")
        for (before_id, before), (_, after) in itertools.pairwise(entries):
            assert after[0] == ("prev", entry_hash(before_id, before))
        # Lua's hash of the last entry, kept by the wallet, is Python's.
        assert head == entry_hash(*entries[-1])
        assert chain_breach(entries, head) is None


async def test_reconcile_catches_an_edited_entry(server: Any, api: Api, redis: Redis) -> None:
    await send_some_gifts(server, api, "edited", 3)
    keys = WalletKeys(server.key_prefix, "edited")
    assert (await reconcile.check(redis, server.key_prefix)).clean
    # The ledger written again, each entry under its own id, the first gift's
    # room changed: the sums still agree, only the chain can tell.
    entries = read(await redis.xrange(keys.ledger))
    edited = next(i for i, (_, fields) in enumerate(entries) if dict(fields)["kind"] == "gift")
    await redis.delete(keys.ledger)
    for index, (entry_id, fields) in enumerate(entries):
        if index == edited:
            fields = [(k, "elsewhere" if k == "room" else v) for k, v in fields]
        await redis.xadd(keys.ledger, dict(fields), id=entry_id)
    report = await reconcile.check(redis, server.key_prefix)
    assert [b for b in report.breaches if "chain" in b] == [
        f"edited: ledger chain broken: entry {entries[edited + 1][0]}: its prev is not the "
        "hash of the entry before it: an entry before it was edited, removed or moved"
    ]
    assert [b for b in report.breaches if "chain" not in b] == []


async def test_an_export_verifies_and_every_tampering_is_caught(
    server: Any, api: Api, redis_url: str, tmp_path: Path
) -> None:
    await send_some_gifts(server, api, "auditee", 6)
    await send_some_gifts(server, api, "bystander", 2)
    path = tmp_path / "ledger.jsonl"
    await export(path, server, redis_url)
    status, output = await verify(path)
    assert status == 0, output
    assert "ledger verified: every chain intact, every balance agrees" in output
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    records = [json.loads(line) for line in lines]
    wallet_line = next(i for i, r in enumerate(records) if r.get("wallet") == "auditee")
    count = records[wallet_line]["entries"]
    first, last = wallet_line + 1, wallet_line + count  # the wallet's entry lines
    assert count == 7  # the purchase, then six gifts

    def tampered(name: str, changed: list[str]) -> Path:
        out = tmp_path / f"{name}.jsonl"
        out.write_text("".join(changed), encoding="utf-8")
        return out

    def with_count(changed: list[str], entries: int) -> list[str]:
        record = json.loads(changed[wallet_line])
        record["entries"] = entries
        changed[wallet_line] = json.dumps(record) + "\n"
        return changed

    def edit(index: int, name: str, value: str) -> str:
        record = json.loads(lines[index])
        record["fields"] = [[k, value if k == name else v] for k, v in record["fields"]]
        return json.dumps(record) + "\n"

    # Line numbers in the verdict count from 1.
    cases: dict[str, tuple[list[str], str]] = {
        # A gift's count changed (its amounts left alone, so every sum still
        # agrees): the entry after it no longer points at it.
        "edited": (
            [*lines[: first + 2], edit(first + 2, "count", "9"), *lines[first + 3 :]],
            f"line {first + 4}, wallet auditee",
        ),
        # A gift removed, and the count fixed to hide it.
        "removed": (
            with_count([*lines[: first + 3], *lines[first + 4 :]], count - 1),
            f"line {first + 4}, wallet auditee",
        ),
        # Two gifts swapped whole: the first of them, where it now stands, does
        # not point at the entry before it.
        "swapped": (
            [*lines[: first + 1], lines[first + 2], lines[first + 1], *lines[first + 3 :]],
            f"line {first + 2}, wallet auditee",
        ),
        # Two gifts' contents swapped under their ids: the chain is out of order.
        "moved": (
            [
                *lines[: first + 1],
                swap_contents(lines[first + 1], lines[first + 2]),
                swap_contents(lines[first + 2], lines[first + 1]),
                *lines[first + 3 :],
            ],
            f"line {first + 2}, wallet auditee",
        ),
        # The last gift taken off the end: what is left chains, but does not
        # end where the wallet last wrote.
        "cut at the end": (
            with_count([*lines[:last], *lines[last + 1 :]], count - 1),
            f"line {wallet_line + 1}, wallet auditee: its last entry is not the one",
        ),
        # The wallet's coins raised: the entries do not sum to them.
        "wallet inflated": (
            [
                *lines[:wallet_line],
                lines[wallet_line].replace(
                    f'"coins":{records[wallet_line]["coins"]},',
                    f'"coins":{records[wallet_line]["coins"] + 100},',
                ),
                *lines[wallet_line + 1 :],
            ],
            f"line {wallet_line + 1}, wallet auditee: the wallet held",
        ),
        # The file cut short.
        "truncated": (lines[:-1], "cut short"),
        # A value with a newline, which no script writes: the joined text of
        # the hash could be read two ways.
        "newline": (
            [*lines[: first + 2], edit(first + 2, "room", "carol\nroom"), *lines[first + 3 :]],
            f"line {first + 3}, wallet auditee, entry",
        ),
    }
    for name, (changed, where) in cases.items():
        assert changed != lines, name
        status, output = await verify(tampered(name, changed))
        assert status == 1, (name, output)
        assert f"BROKEN at {where}" in output or where in output, (name, output)


def swap_contents(line: str, other: str) -> str:
    """``line`` with ``other``'s fields under its own id."""
    record, donor = json.loads(line), json.loads(other)
    record["fields"] = donor["fields"]
    return json.dumps(record) + "\n"


async def test_an_export_taken_while_gifts_move_verifies(
    unlimited: Any, unlimited_api: Api, redis_url: str, tmp_path: Path
) -> None:
    # A server with no gift rate limit, so that gifts keep coming throughout.
    token = await unlimited_api.token("moving")
    await unlimited_api.buy(token, "coins_330")
    sender = await RoomClient.open(unlimited.ws, "carol", token)
    await sender.of_type("welcome")
    sending = True

    async def keep_sending() -> int:
        sent = 0
        while sending and sent < 330:
            ack = await sender.gift(f"m-{sent}", "rose", 1)
            assert ack["type"] == "ack", ack
            sent += 1
        return sent

    sends = asyncio.create_task(keep_sending())
    await asyncio.sleep(0.1)
    path = tmp_path / "moving.jsonl"
    await export(path, unlimited, redis_url)
    sending = False
    assert await sends > 0
    await sender.close()
    status, output = await verify(path)
    assert status == 0, output
