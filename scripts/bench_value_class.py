"""What a gift's value objects cost to make: ``@value_class`` against frozen dataclasses.

A gift's path makes five of them (its request, order, outcome, the script's
answer and the ack: ``SendGift``, ``GiftOrder``, ``GiftOutcome``,
``SentGift``, ``Ack``). This makes each gift's five ``--gifts`` times with
the classes as shipped (``server/core/value_class.py``) and with frozen
twins of them (the same fields, ``@dataclass(frozen=True, slots=True)``),
in turn, and prints ns a gift for each way and their ratio (the best of
``--turns``).

    .venv/bin/python scripts/bench_value_class.py

For counts the host's noise does not move, each way alone under callgrind,
less a run that makes nothing:

    valgrind --tool=callgrind --callgrind-out-file=/dev/null \\
        .venv/bin/python scripts/bench_value_class.py --way frozen --gifts 10000
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from server.core.catalog import Gift, Tier
from server.core.protocol import Ack, SendGift
from server.money.room_gifts import SentGift
from server.money.wallet import GiftOrder, GiftOutcome

SHIPPED = (SendGift, GiftOrder, GiftOutcome, SentGift, Ack)


def frozen_twin(cls: type) -> Any:
    """A frozen dataclass with ``cls``'s fields and defaults."""
    fields = [
        (field.name, field.type, dataclasses.field(default=field.default))
        if field.default is not dataclasses.MISSING
        else (field.name, field.type)
        for field in dataclasses.fields(cls)
    ]
    return dataclasses.make_dataclass(f"Frozen{cls.__name__}", fields, frozen=True, slots=True)


def make_gifts(classes: tuple[Any, ...], gifts: int, gift: Gift) -> None:
    """Each gift's five objects, ``gifts`` times, as the gift path makes them."""
    send_gift, order, outcome, sent, ack = classes
    for n in range(gifts):
        request = send_gift(f"s1-{n}", "rose", 1, False)
        paid = order("s1", request.id, gift, 1, "carol", "carol", 1_700_000_000_000 + n, "st")
        answer = outcome(f"s1:{paid.request_id}", 100, 1, False, "rose", 1, "carol", n, None)
        sent(answer, True)
        ack(request.id, answer.balance, answer.seq, answer.cost, False)


def ns_a_gift(way: Callable[[], None], gifts: int) -> float:
    started = time.perf_counter()
    way()
    return (time.perf_counter() - started) * 1e9 / gifts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gifts", type=int, default=50_000)
    parser.add_argument("--turns", type=int, default=5)
    parser.add_argument("--way", choices=("both", "shipped", "frozen", "none"), default="both")
    args = parser.parse_args()
    gift = Gift("rose", "Rose", 1, Tier.SMALL, streakable=True)
    frozen = tuple(frozen_twin(cls) for cls in SHIPPED)
    if args.way != "both":
        chosen = {"shipped": SHIPPED, "frozen": frozen}.get(args.way)
        if chosen is not None:
            make_gifts(chosen, args.gifts, gift)
        return
    shipped_ns, frozen_ns = [], []
    for _ in range(args.turns):  # in turn, so that the host's noise falls on both
        shipped_ns.append(ns_a_gift(lambda: make_gifts(SHIPPED, args.gifts, gift), args.gifts))
        frozen_ns.append(ns_a_gift(lambda: make_gifts(frozen, args.gifts, gift), args.gifts))
    print(f"frozen dataclasses: {min(frozen_ns):.0f} ns a gift")
    print(f"value classes: {min(shipped_ns):.0f} ns a gift")
    print(f"ratio: {min(shipped_ns) / min(frozen_ns):.2f}")


if __name__ == "__main__":
    main()
