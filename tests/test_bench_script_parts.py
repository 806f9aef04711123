"""scripts/bench_script_parts.py: its variants leave out what they say, and its
arithmetic is right on known inputs."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO_ROOT

sys.path.insert(0, str(REPO_ROOT / "scripts"))

from bench_script_parts import VARIANTS, Turn, main_async, summary


def turn(variant: str, script_us: float, valkey_us: float, per_call: int = 8) -> Turn:
    return Turn(variant, per_call, 1000, 1.0, script_us, script_us / 5, valkey_us, 7.0)


def test_medians_and_ratios_over_the_shipped_script() -> None:
    turns = [
        turn("shipped", 60.0, 80.0),
        turn("shipped", 50.0, 70.0),
        turn("shipped", 90.0, 75.0),
        *(turn(v.name, 40.0, 56.0) for v in VARIANTS[1:]),
    ]
    rows = {row["variant"]: row for row in summary(turns)}
    assert rows["shipped"]["script_us"] == 60.0  # the median of 50, 60, 90
    assert rows["shipped"]["valkey_us"] == 75.0
    assert rows["bare"]["script_ratio"] == pytest.approx(40 / 60, abs=1e-3)
    assert rows["bare"]["valkey_ratio"] == pytest.approx(56 / 75, abs=1e-3)
    assert rows["shipped"]["script_ratio"] == 1.0


def test_the_unchained_variant_hashes_nothing() -> None:
    shipped, unchained = (v.script_source() for v in VARIANTS[:2])
    assert "redis.sha1hex(id" in shipped
    assert "redis.sha1hex(id" not in unchained
    assert unchained.count("local function chained_entry") == 1


def test_the_entry_a_gift_variant_writes_a_credit_entry_a_gift() -> None:
    variants = {v.name: v.script_source() for v in VARIANTS}
    shipped, before = variants["shipped"], variants["entry-a-gift"]
    assert '"kind", "credits"' in shipped
    assert "credit_gift(KEYS[5]" not in shipped
    assert "credit_gift(KEYS[5]" in before
    assert '"kind", "credits"' not in before


async def test_each_variant_pays_for_its_gifts_and_leaves_its_part_out(tmp_path: Path) -> None:
    args = argparse.Namespace(
        gifts=200, per_call=[2], turns=1, senders=20, appendfsync="no", json=None
    )
    results: dict[str, Any] = await main_async(args)
    rows = {row["variant"]: row for row in results["medians"]}
    assert set(rows) == {v.name for v in VARIANTS}
    for row in rows.values():
        assert 1.0 < row["script_us"] < 10_000.0, row
        assert 0.0 < row["command_us"] < row["script_us"], row
    # Per call of two gifts: the combos' HMGET and HSET are one command a gift.
    assert rows["shipped"]["commands"] - rows["no-combo"]["commands"] == pytest.approx(
        1.0, abs=0.05
    )
    assert rows["bare"]["commands"] == pytest.approx(rows["no-combo"]["commands"], abs=0.05)
    assert rows["no-chain"]["commands"] == pytest.approx(rows["shipped"]["commands"], abs=0.05)
    # One credits entry a call of two gifts against a credit entry a gift.
    assert rows["entry-a-gift"]["commands"] - rows["shipped"]["commands"] == pytest.approx(
        0.5, abs=0.05
    )
