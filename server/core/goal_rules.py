"""A creator's goal: what a request may set, what it looks like, what fills it. Pure.

A goal is a target in coins (every gift counts its coins) or a count of one
gift (only that gift counts, by how many were sent). It fills from the
``credit`` entries of the creator's ledger written after it was set
(``goal.lua``), so each gift counts once, whichever process counts it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from server.core.catalog import Catalog
from server.core.credit_entries import BadCredits, credit_fields_of_bytes
from server.errors import BadField

MAX_TITLE_CHARS = 60
MAX_TARGET_COINS = 1_000_000_000
MAX_TARGET_COUNT = 1_000_000
COINS, GIFT = "coins", "gift"


@dataclass(frozen=True, slots=True)
class GoalAsk:
    """A goal as a creator asks for it, checked."""

    title: str
    kind: str
    gift: str
    target: int


def parse_goal(body: Mapping[str, Any], catalog: Catalog) -> GoalAsk:
    """``{"title", "target_coins"}`` or ``{"title", "gift_id", "target_count"}``."""
    title = body.get("title")
    if not isinstance(title, str) or not title.strip() or len(title.strip()) > MAX_TITLE_CHARS:
        raise BadField(f"title must be 1 to {MAX_TITLE_CHARS} characters")
    coins, gift_id, count = body.get("target_coins"), body.get("gift_id"), body.get("target_count")
    if coins is not None and gift_id is None and count is None:
        return GoalAsk(title.strip(), COINS, "", _whole(coins, "target_coins", MAX_TARGET_COINS))
    if coins is None and gift_id is not None and count is not None:
        gift = catalog.gift(gift_id)  # UnknownGift for a gift not offered
        return GoalAsk(
            title.strip(), GIFT, gift.id, _whole(count, "target_count", MAX_TARGET_COUNT)
        )
    raise BadField("a goal is target_coins, or gift_id with target_count")


def _whole(value: object, name: str, most: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= most:
        raise BadField(f"{name} must be a whole number from 1 to {most:,}")
    return value


def goal_view(raw: Mapping[str, str]) -> dict[str, Any] | None:
    """The goal as the API and the room see it, from its hash (None for none)."""
    if "id" not in raw:
        return None
    reached = raw.get("reached")
    return {
        "goal_id": raw["id"],
        "title": raw.get("title", ""),
        "kind": raw.get("kind", COINS),
        "gift_id": raw.get("gift") or None,
        "target": int(raw.get("target", 0)),
        "progress": int(raw.get("progress", 0)),
        "created": int(raw.get("created", 0)),
        "reached": int(reached) if reached else None,
    }


def filled_by(kind: str, gift: str, credits: Iterable[Mapping[bytes, bytes]]) -> int:
    """What ledger entries (fields as Redis returns them) add to a goal: the
    coins of every credit, or the count of the goal's gift's credits."""
    total = 0
    for fields in credits:
        try:
            found = credit_fields_of_bytes(fields)
        except BadCredits:
            continue  # reconcile names a damaged entry; a goal goes on without it
        for credit in found:
            if kind == COINS:
                total += int(credit.get("coins") or 0)
            elif credit.get("gift", "") == gift:
                total += int(credit.get("count") or 0)
    return total
