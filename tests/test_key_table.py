"""Every key the server writes is in docs/money.md's key table, with its lifetime.

A demo server does a bit of everything a platform does (gifts and their
combos, settlement, a recharge paid and one left open, room sockets signed
in and anonymous, a look at a random room, the overlay key); then every key
under the test's prefix is matched against the table. A key that is in no
row fails, and so does a key without a time to live whose row says it
expires.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from pathlib import Path

from redis.asyncio import Redis

from tests.client import Api, RoomClient, bearer
from tests.conftest import ServerProcess

MONEY_DOC = Path(__file__).resolve().parent.parent / "docs" / "money.md"


@dataclass(frozen=True)
class Row:
    pattern: re.Pattern[str]
    documented: str
    expires: bool  # False for "never ..." and "capped"


def table_rows(prefix: str) -> list[Row]:
    """The key table's rows, each of its key forms as a pattern under ``prefix``."""
    text = MONEY_DOC.read_text(encoding="utf-8")
    table = text[text.index("### Key layout") : text.index("A **gift key**")]
    rows: list[Row] = []
    for line in table.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split(" | ")]
        if len(cells) != 5 or not cells[0].startswith("`gs:"):
            continue
        expires = not cells[4].startswith(("never", "capped", "(a channel"))
        # A cell names a key, then may add "(and `:coins`, `:diamonds`)" to
        # it, or "`…:diamonds`" in place of its last part.
        full = ""
        for form in re.findall(r"`([^`]+)`", cells[0]):
            if form.startswith("gs:"):
                key = full = form
            elif form.startswith("…"):
                key = full.rsplit(":", 1)[0] + form[1:]
            elif form.startswith(":"):
                key = full + form
            else:
                continue
            rows.append(Row(as_pattern(prefix + key[2:]), key, expires))
    return rows


def as_pattern(key: str) -> re.Pattern[str]:
    parts = re.split(r"<[^>]+>", key)
    return re.compile(".+".join(re.escape(part) for part in parts))


async def a_bit_of_everything(server: ServerProcess, api: Api) -> None:
    alice = await api.token("alice")
    carol = await api.token("carol", "creator")
    watcher = await RoomClient.open(server.ws, "carol")
    sender = await RoomClient.open(server.ws, "carol", alice)
    try:
        for n in range(3):
            assert (await sender.gift(f"k-{n}", "rose", 5))["type"] == "ack"
        await sender.of_type("combo_end", within=10)
        await RoomClient.open(server.ws, "r-nobody-opens")  # closed with the test
        order = (
            await api.http.post("/api/orders", json={"package": "coins_65"}, headers=bearer(alice))
        ).json()["order_id"]
        paid = await api.http.post(f"/api/sandbox/pay/{order}", headers=bearer(alice))
        assert paid.json()["status"] == "ok"
        await api.http.post("/api/orders", json={"package": "coins_65"}, headers=bearer(alice))
        await api.http.get("/api/creator/overlay-key", headers=bearer(carol))
        for _ in range(100):  # until settlement has credited carol
            if (await api.wallet(carol))["diamonds"] > 0:
                break
            await asyncio.sleep(0.1)
    finally:
        await sender.close()
        await watcher.close()


async def test_every_key_written_is_in_the_table_with_its_lifetime(
    server: ServerProcess, api: Api, redis: Redis, key_prefix: str
) -> None:
    rows = table_rows(key_prefix)
    assert len(rows) >= 25, "the key table was not found in docs/money.md"
    await a_bit_of_everything(server, api)
    keys = sorted([key.decode() async for key in redis.scan_iter(match=f"{key_prefix}:*")])
    assert len(keys) > 20
    undocumented, immortal = [], []
    for key in keys:
        matching = [row for row in rows if row.pattern.fullmatch(key)]
        if not matching:
            undocumented.append(key)
        elif any(row.expires for row in matching) and await redis.ttl(key) == -1:
            immortal.append(f"{key} ({matching[0].documented})")
    assert undocumented == []
    assert immortal == []


def test_the_table_parser_reads_every_form_of_a_key_cell() -> None:
    rows = {row.documented: row for row in table_rows("gs")}
    assert "gs:{w:<creator>}:earn:d:<day>:diamonds" in rows  # from "…:diamonds"
    assert "gs:{w:<creator>}:earn:all:coins" in rows  # from "(and `:coins`, …)"
    assert "gs:{w:<creator>}:earn:all:diamonds" in rows
    assert "gs:{ip:<address>}:order_rate" in rows  # the second key of a cell
    assert not rows["gs:{w:<user>}:wallet"].expires
    assert rows["gs:{w:<sender>}:req:<request id>"].expires
    assert rows["gs:{w:<sender>}:req:<request id>"].pattern.fullmatch("gs:{w:al}:req:al:r1")
