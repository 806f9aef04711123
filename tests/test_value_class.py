"""``@value_class``: a dataclass with slots, equality and a hash at run time, whose
fields the type checker refuses to assign; and the bench that says what it saves."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest

from server.core.protocol import Ack, SendGift
from server.core.report_sums import Credit
from server.core.value_class import value_class
from server.money.room_gifts import SentGift
from server.money.wallet import GiftOrder, GiftOutcome
from tests.conftest import REPO_ROOT


@value_class
class Point:
    x: int
    label: str = "p"


def test_a_value_class_is_a_slotted_dataclass_equal_and_hashed_by_its_fields() -> None:
    point = Point(1)
    assert dataclasses.is_dataclass(point)
    assert point == Point(1, "p")
    assert point != Point(2)
    assert hash(point) == hash(Point(1, "p"))
    assert {point, Point(1)} == {point}
    assert not hasattr(point, "__dict__")  # slots: no field can be added by a typo
    with pytest.raises(AttributeError):
        point.y = 2  # type: ignore[attr-defined]


@pytest.mark.parametrize("cls", [SendGift, GiftOrder, GiftOutcome, SentGift, Ack, Credit])
def test_the_gift_paths_value_objects_are_value_classes(cls: type) -> None:
    # Not frozen at run time (that is the saving), hashable as they were.
    params = cls.__dataclass_params__  # type: ignore[attr-defined]
    assert not params.frozen
    assert cls.__hash__ is not None
    assert "__slots__" in cls.__dict__


@pytest.mark.timeout(120)
def test_the_type_checker_refuses_to_assign_a_field(tmp_path: Path) -> None:
    source = tmp_path / "assigns.py"
    source.write_text(
        "from server.core.protocol import Ack\n"
        "ack = Ack(id='r1', balance=1, seq=2, coins=3)\n"
        "ack.balance = 0\n"
    )
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", str(source)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=110,
        check=False,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "assigns.py:3" in done.stdout
    assert "read-only" in done.stdout


def test_the_bench_of_making_a_gifts_objects_gives_a_plausible_ratio() -> None:
    from tests.test_bench import run_script

    done = run_script("bench_value_class.py", "--gifts", "2000", "--turns", "2", timeout=120)
    lines = dict(line.split(": ", 1) for line in done.stdout.splitlines())
    assert float(lines["frozen dataclasses"].split()[0]) > 0
    assert float(lines["value classes"].split()[0]) > 0
    # Frozen twins set each field through object.__setattr__: the shipped
    # classes are never much dearer, whatever the host does meanwhile.
    assert 0.0 < float(lines["ratio"]) < 1.5
