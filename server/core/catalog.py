"""The gift catalogue and the recharge packages: pure data, loaded from JSON.

Prices live here, on the server, and nowhere else: a client names a gift and
a count, never a price. An operator replaces the catalogue by pointing
``GIFTSTREAM_CATALOG_PATH`` at a file of the same shape as
``server/core/data/catalog.json``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import Any

from server.errors import UnknownGift, UnknownPackage
from server.settings import MAX_FAN_LEVELS

DEFAULT_CATALOG_PATH = Path(__file__).with_name("data") / "catalog.json"
_ID = re.compile(r"^[a-z0-9_]{1,32}\Z")
# Prices are decimal text with two places ("4.99"): never floats, never "1e3".
_PRICE = re.compile(r"^[0-9]{1,7}\.[0-9]{2}\Z")
# Amounts stay far below 2**53 so that Lua's doubles and JavaScript's numbers
# hold them exactly (see DESIGN "Pitfalls").
MAX_PRICE_COINS = 1_000_000


# The markets: where a package is sold, and the languages a gift is named in.
REGIONS = frozenset({"US", "CN"})
LANGUAGES = frozenset({"en", "zh-CN"})


class CatalogError(ValueError):
    """The catalogue file is malformed; the server refuses to start with it."""


class Tier(StrEnum):
    """Decides the animation: small gifts float by, fullscreen ones take the screen."""

    SMALL = "small"
    MEDIUM = "medium"
    LARGE = "large"
    FULLSCREEN = "fullscreen"


@dataclass(frozen=True, slots=True)
class Gift:
    id: str
    name: str
    coins: int
    tier: Tier
    streakable: bool
    # The sender must be at least this level in the creator's fan club
    # (server/core/fan_levels.py); 0 for anyone.
    fan_level_required: int = 0
    # The name in other languages than English, by language tag ("zh-CN").
    names: tuple[tuple[str, str], ...] = ()

    def name_in(self, language: str) -> str:
        return dict(self.names).get(language, self.name)


@dataclass(frozen=True, slots=True)
class Package:
    id: str
    coins: int
    bonus: int
    price: str
    currency: str
    # Where it is sold: "US" (USD, TikTok's packs) or "CN" (CNY, Douyin's).
    region: str = "US"

    @property
    def total_coins(self) -> int:
        return self.coins + self.bonus


@dataclass(frozen=True, slots=True)
class Catalog:
    gifts: dict[str, Gift]
    packages: dict[str, Package]

    def gift(self, gift_id: object) -> Gift:
        found = self.gifts.get(gift_id) if isinstance(gift_id, str) else None
        if found is None:
            raise UnknownGift(f"no gift {gift_id!r} in the catalogue")
        return found

    def package(self, package_id: object) -> Package:
        found = self.packages.get(package_id) if isinstance(package_id, str) else None
        if found is None:
            raise UnknownPackage(f"no recharge package {package_id!r}")
        return found

    def to_public(
        self, region: str = "US", language: str = "en", bonuses: Mapping[str, int] | None = None
    ) -> dict[str, Any]:
        """The shape of ``GET /api/catalog``: every gift, named in ``language``
        (its other names in ``names``), and the packages sold in ``region``
        with the bonus coins a promotion adds now (``bonuses``, by package)."""
        extra = bonuses or {}
        return {
            "region": region,
            "language": language,
            "gifts": [
                asdict(g) | {"tier": str(g.tier), "name": g.name_in(language), "names": _names(g)}
                for g in self.gifts.values()
            ],
            "packages": [
                asdict(p) | {"bonus": p.bonus + extra.get(p.id, 0)}
                for p in self.packages.values()
                if p.region == region
            ],
        }


def _names(gift: Gift) -> dict[str, str]:
    return {"en": gift.name} | dict(gift.names)


def _require(entry: dict[str, Any], key: str, kind: type) -> Any:
    value = entry.get(key)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise CatalogError(f"{entry.get('id', '?')}: {key!r} must be {kind.__name__}")
    return value


def _checked_id(entry: dict[str, Any]) -> str:
    ident = _require(entry, "id", str)
    if not _ID.match(ident):
        raise CatalogError(f"id {ident!r} must match {_ID.pattern}")
    return str(ident)


def _checked_coins(entry: dict[str, Any], key: str, minimum: int) -> int:
    value = int(_require(entry, key, int))
    if not minimum <= value <= MAX_PRICE_COINS:
        raise CatalogError(f"{entry['id']}: {key} must be {minimum}..{MAX_PRICE_COINS}")
    return value


def _parse_gift(entry: dict[str, Any]) -> Gift:
    try:
        tier = Tier(_require(entry, "tier", str))
    except ValueError as exc:
        raise CatalogError(f"{entry.get('id')}: unknown tier") from exc
    return Gift(
        id=_checked_id(entry),
        name=_require(entry, "name", str),
        coins=_checked_coins(entry, "coins", 1),
        tier=tier,
        streakable=_require(entry, "streakable", bool),
        fan_level_required=_fan_level(entry),
        names=_checked_names(entry),
    )


def _checked_names(entry: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    names = entry.get("names", {})
    if not isinstance(names, dict) or not all(
        isinstance(k, str) and k in LANGUAGES and isinstance(v, str) and v.strip()
        for k, v in names.items()
    ):
        raise CatalogError(f"{entry.get('id')}: names must map {sorted(LANGUAGES)} to names")
    return tuple(sorted(names.items()))


def _fan_level(entry: dict[str, Any]) -> int:
    if "fan_level_required" not in entry:
        return 0
    level = int(_require(entry, "fan_level_required", int))
    if not 0 <= level <= MAX_FAN_LEVELS:
        raise CatalogError(f"{entry['id']}: fan_level_required must be 0..{MAX_FAN_LEVELS}")
    return level


def _parse_package(entry: dict[str, Any]) -> Package:
    price = _require(entry, "price", str)
    if not _PRICE.match(price) or Decimal(price) <= 0:
        raise CatalogError(f"{entry.get('id')}: price {price!r} must look like 4.99 and be > 0")
    return Package(
        id=_checked_id(entry),
        coins=_checked_coins(entry, "coins", 1),
        bonus=_checked_coins(entry, "bonus", 0) if "bonus" in entry else 0,
        price=price,
        currency=_require(entry, "currency", str),
        region=_checked_region(entry),
    )


def _checked_region(entry: dict[str, Any]) -> str:
    region = entry.get("region", "US")
    if region not in REGIONS:
        raise CatalogError(f"{entry.get('id')}: region must be one of {sorted(REGIONS)}")
    return str(region)


def _entries(document: dict[str, Any], key: str) -> list[dict[str, Any]]:
    entries = document.get(key, [])
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise CatalogError(f"{key!r} must be a list of objects")
    return entries


def parse_catalog(document: Any) -> Catalog:
    if not isinstance(document, dict):
        raise CatalogError("the catalogue must be a JSON object")
    gifts = [_parse_gift(e) for e in _entries(document, "gifts")]
    packages = [_parse_package(e) for e in _entries(document, "packages")]
    if not gifts or not packages:
        raise CatalogError("the catalogue needs at least one gift and one package")
    gift_map = {g.id: g for g in gifts}
    package_map = {p.id: p for p in packages}
    if len(gift_map) != len(gifts) or len(package_map) != len(packages):
        raise CatalogError("gift and package ids must be unique")
    return Catalog(gifts=gift_map, packages=package_map)


def load_catalog(path: Path | None = None) -> Catalog:
    source = path or DEFAULT_CATALOG_PATH
    try:
        document = json.loads(source.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as exc:
        raise CatalogError(f"cannot read catalogue {source}: {exc}") from exc
    return parse_catalog(document)
