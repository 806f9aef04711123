"""Counts as people read them: "1 coin", "2 coins", "1,500 coins". Pure."""

from __future__ import annotations


def plural(count: int, noun: str, many: str | None = None) -> str:
    """``count`` with ``noun``, grouped by thousands; ``many`` for an irregular plural."""
    word = noun if count == 1 else (many or noun + "s")
    return f"{count:,} {word}"
