"""scripts/bench_ab.py: the order the sides are driven in, and the paired
arithmetic, on known inputs."""

from __future__ import annotations

import math
import sys

import pytest

from tests.conftest import REPO_ROOT

sys.path.insert(0, str(REPO_ROOT / "scripts"))

from bench_ab import Phase, order, summary


def phase(round_: int, side: str, acks: float, server_us: float) -> Phase:
    return Phase(round_, side, acks, server_us, valkey_us=100.0, commands=6.5)


def test_sides_take_turns_first_so_that_a_drift_falls_on_both() -> None:
    assert order(3) == [(1, "A"), (1, "B"), (2, "B"), (2, "A"), (3, "A"), (3, "B")]
    assert order(0) == []


def test_ratios_are_taken_round_by_round_then_their_median() -> None:
    # The machine slows in round 2 (both sides' acks fall), B stays 1.2x A
    # in every round: the pooled medians would say 1.2 as well, but the
    # ratio range shows it held round by round.
    phases = [
        phase(1, "A", 1000.0, 200.0),
        phase(1, "B", 1200.0, 160.0),
        phase(2, "B", 600.0, 320.0),
        phase(2, "A", 500.0, 400.0),
        phase(3, "A", 900.0, 220.0),
        phase(3, "B", 1080.0, 176.0),
    ]
    result = summary(phases)
    assert result["rounds"] == 3
    assert result["acks_ratio"] == pytest.approx(1.2)
    assert result["acks_ratio_range"] == pytest.approx([1.2, 1.2])
    assert result["server_us_ratio"] == pytest.approx(0.8)
    assert result["acks_A"] == 900.0  # the median of 1000, 500, 900
    assert result["server_us_B"] == 176.0
    assert result["valkey_us_ratio"] == pytest.approx(1.0)


def test_a_round_missing_a_side_is_left_out() -> None:
    phases = [
        phase(1, "A", 1000.0, 200.0),
        phase(1, "B", 2000.0, 100.0),
        phase(2, "A", 10.0, 9000.0),  # its B never ran
    ]
    result = summary(phases)
    assert result["rounds"] == 1
    assert result["acks_ratio"] == pytest.approx(2.0)
    assert result["acks_A"] == 1000.0


def test_no_rounds_says_nothing_rather_than_a_number() -> None:
    result = summary([])
    assert result["rounds"] == 0
    assert result["acks_ratio"] is None
    assert result["server_us_A"] is None


def test_a_side_with_no_baseline_gives_nan_not_a_crash() -> None:
    result = summary([phase(1, "A", 0.0, 200.0), phase(1, "B", 10.0, 100.0)])
    assert math.isnan(result["acks_ratio"])
