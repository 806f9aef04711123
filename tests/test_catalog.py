"""The gift catalogue and recharge packages: the shipped data and the parser that guards it."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from server.core.catalog import (
    DEFAULT_CATALOG_PATH,
    MAX_PRICE_COINS,
    Catalog,
    CatalogError,
    Tier,
    load_catalog,
    parse_catalog,
)
from server.errors import UnknownGift, UnknownPackage

# The recharge packs the platforms we serve publish, coins -> USD price.
DOMAIN_PACKAGES = {
    65: "0.99",
    330: "4.99",
    660: "9.99",
    1321: "19.99",
    3306: "49.99",
    6607: "99.99",
}
TIER_ORDER = [Tier.SMALL, Tier.MEDIUM, Tier.LARGE, Tier.FULLSCREEN]

Document = dict[str, Any]


def minimal_document() -> Document:
    """A valid catalogue of one gift and one package; tests spoil one field of it."""
    return {
        "gifts": [{"id": "rose", "name": "Rose", "coins": 1, "tier": "small", "streakable": True}],
        "packages": [{"id": "coins_65", "coins": 65, "price": "0.99", "currency": "USD"}],
    }


def spoiled(change: Callable[[Document], object]) -> Document:
    document = minimal_document()
    change(document)
    return document


def gift_with(**fields: object) -> Document:
    return spoiled(lambda d: d["gifts"][0].update(fields))


def package_with(**fields: object) -> Document:
    return spoiled(lambda d: d["packages"][0].update(fields))


def gift_without(key: str) -> Document:
    return spoiled(lambda d: d["gifts"][0].pop(key))


def package_without(key: str) -> Document:
    return spoiled(lambda d: d["packages"][0].pop(key))


@pytest.fixture(scope="module")
def shipped() -> Catalog:
    return load_catalog()


# ---------------------------------------------------------------- the shipped catalogue


def test_shipped_catalogue_is_the_default_file(shipped: Catalog) -> None:
    document = json.loads(DEFAULT_CATALOG_PATH.read_text(encoding="utf-8"))
    assert parse_catalog(document) == shipped
    assert [g["id"] for g in document["gifts"]] == list(shipped.gifts)


def test_shipped_rose_costs_one_coin(shipped: Catalog) -> None:
    rose = shipped.gift("rose")
    assert rose.coins == 1
    assert rose.tier is Tier.SMALL
    assert rose.streakable is True
    assert min(g.coins for g in shipped.gifts.values()) == 1


def test_shipped_catalogue_has_a_gift_of_tens_of_thousands_of_coins(shipped: Catalog) -> None:
    top = max(shipped.gifts.values(), key=lambda g: g.coins)
    assert 10_000 <= top.coins < 100_000
    assert top.tier is Tier.FULLSCREEN
    assert top.streakable is False


def test_shipped_catalogue_uses_every_tier(shipped: Catalog) -> None:
    assert {g.tier for g in shipped.gifts.values()} == set(Tier)


def test_shipped_tiers_rise_with_price(shipped: Catalog) -> None:
    by_price = sorted(shipped.gifts.values(), key=lambda g: g.coins)
    ranks = [TIER_ORDER.index(g.tier) for g in by_price]
    assert ranks == sorted(ranks)


def test_shipped_streakable_flags(shipped: Catalog) -> None:
    streakable = {g.id for g in shipped.gifts.values() if g.streakable}
    assert {"rose", "finger_heart"} <= streakable
    assert all(shipped.gifts[g].tier in (Tier.SMALL, Tier.MEDIUM) for g in streakable)
    assert not any(g.streakable for g in shipped.gifts.values() if g.tier is Tier.FULLSCREEN)


def test_shipped_prices_are_within_bounds(shipped: Catalog) -> None:
    for gift in shipped.gifts.values():
        assert isinstance(gift.coins, int)
        assert 1 <= gift.coins <= MAX_PRICE_COINS


def test_shipped_packages_are_those_of_the_domain(shipped: Catalog) -> None:
    packages = [p for p in shipped.packages.values() if p.region == "US"]
    assert len(packages) == 6
    assert {p.coins: p.price for p in packages} == DOMAIN_PACKAGES
    assert {p.currency for p in packages} == {"USD"}
    assert all(p.bonus == 0 and p.total_coins == p.coins for p in packages)


def test_shipped_cny_packages_sell_ten_coins_a_yuan(shipped: Catalog) -> None:
    packages = [p for p in shipped.packages.values() if p.region == "CN"]
    assert len(packages) >= 5
    assert {p.currency for p in packages} == {"CNY"}
    assert all(p.coins == 10 * Decimal(p.price) for p in packages)
    assert {p.region for p in shipped.packages.values()} == {"US", "CN"}


def test_every_shipped_gift_has_a_chinese_name(shipped: Catalog) -> None:
    for gift in shipped.gifts.values():
        chinese = gift.name_in("zh-CN")
        assert chinese != gift.name, gift.id
        assert all(ord(c) > 0x2E80 for c in chinese), gift.id


def test_shipped_package_prices_are_exact_cents(shipped: Catalog) -> None:
    for package in shipped.packages.values():
        assert Decimal(package.price).as_tuple().exponent == -2


# ---------------------------------------------------------------- lookups


def test_gift_lookup_returns_the_gift(shipped: Catalog) -> None:
    assert shipped.gift("lion").coins == 29999
    assert shipped.gift("lion").name == "Lion"


def test_package_lookup_returns_the_package(shipped: Catalog) -> None:
    package = shipped.package("coins_330")
    assert (package.coins, package.price, package.currency) == (330, "4.99", "USD")


@pytest.mark.parametrize("gift_id", ["tulip", "", "ROSE", "rose ", "coins_65"])
def test_unknown_gift_id(shipped: Catalog, gift_id: str) -> None:
    with pytest.raises(UnknownGift) as caught:
        shipped.gift(gift_id)
    assert caught.value.code == "unknown_gift"


@pytest.mark.parametrize(
    "gift_id", [None, 1, 1.0, True, b"rose", ["rose"], ("rose",), {"id": "rose"}]
)
def test_non_string_gift_id(shipped: Catalog, gift_id: object) -> None:
    with pytest.raises(UnknownGift):
        shipped.gift(gift_id)


@pytest.mark.parametrize("package_id", ["coins_1", "", "COINS_65", "rose"])
def test_unknown_package_id(shipped: Catalog, package_id: str) -> None:
    with pytest.raises(UnknownPackage) as caught:
        shipped.package(package_id)
    assert caught.value.code == "unknown_package"


@pytest.mark.parametrize("package_id", [None, 65, True, b"coins_65", ["coins_65"], {"a": 1}])
def test_non_string_package_id(shipped: Catalog, package_id: object) -> None:
    with pytest.raises(UnknownPackage):
        shipped.package(package_id)


# ---------------------------------------------------------------- the public shape


def test_to_public_has_the_contract_shape(shipped: Catalog) -> None:
    public = shipped.to_public()
    assert set(public) == {"gifts", "packages", "region", "language"}
    assert len(public["gifts"]) == len(shipped.gifts)
    for entry in public["gifts"]:
        assert set(entry) == {
            "id", "name", "coins", "tier", "streakable", "fan_level_required", "names",
        }  # fmt: skip
        assert entry["tier"] in {t.value for t in Tier}
        assert type(entry["coins"]) is int
        assert type(entry["streakable"]) is bool
    for entry in public["packages"]:
        assert {"id", "coins", "price", "currency"} <= set(entry)
        assert isinstance(entry["price"], str)


def test_to_public_matches_the_catalogue(shipped: Catalog) -> None:
    public = shipped.to_public()
    rose = next(g for g in public["gifts"] if g["id"] == "rose")
    assert rose == {
        "id": "rose",
        "name": "Rose",
        "coins": 1,
        "tier": "small",
        "streakable": True,
        "fan_level_required": 0,
        "names": {"en": "Rose", "zh-CN": "玫瑰"},
    }
    pack = next(p for p in public["packages"] if p["id"] == "coins_6607")
    assert (pack["coins"], pack["price"], pack["currency"]) == (6607, "99.99", "USD")


def test_to_public_survives_json(shipped: Catalog) -> None:
    public = shipped.to_public()
    assert json.loads(json.dumps(public)) == public


# ---------------------------------------------------------------- parse_catalog: accepted


def test_minimal_document_parses() -> None:
    catalog = parse_catalog(minimal_document())
    assert catalog.gift("rose").coins == 1
    assert catalog.package("coins_65").price == "0.99"


def test_bonus_defaults_to_zero() -> None:
    assert parse_catalog(minimal_document()).package("coins_65").bonus == 0


def test_bonus_adds_to_total_coins() -> None:
    package = parse_catalog(package_with(bonus=35)).package("coins_65")
    assert (package.coins, package.bonus, package.total_coins) == (65, 35, 100)


@pytest.mark.parametrize("coins", [1, 2, MAX_PRICE_COINS])
def test_gift_coins_within_bounds(coins: int) -> None:
    assert parse_catalog(gift_with(coins=coins)).gift("rose").coins == coins


@pytest.mark.parametrize("ident", ["a", "x" * 32, "coins_6607", "9_lives"])
def test_good_ids(ident: str) -> None:
    assert parse_catalog(gift_with(id=ident)).gift(ident).id == ident


@pytest.mark.parametrize("tier", ["small", "medium", "large", "fullscreen"])
def test_every_tier_is_accepted(tier: str) -> None:
    assert parse_catalog(gift_with(tier=tier)).gift("rose").tier is Tier(tier)


def test_same_id_for_a_gift_and_a_package_is_allowed() -> None:
    catalog = parse_catalog(package_with(id="rose"))
    assert catalog.gift("rose").coins == 1
    assert catalog.package("rose").coins == 65


# ---------------------------------------------------------------- parse_catalog: refused


@pytest.mark.parametrize("document", [None, [], "catalogue", 1, True])
def test_document_must_be_an_object(document: object) -> None:
    with pytest.raises(CatalogError):
        parse_catalog(document)


@pytest.mark.parametrize(
    "document",
    [
        {},
        {"gifts": [], "packages": []},
        spoiled(lambda d: d.update(gifts=[])),
        spoiled(lambda d: d.update(packages=[])),
        spoiled(lambda d: d.pop("gifts")),
        spoiled(lambda d: d.pop("packages")),
    ],
    ids=["empty", "both-empty", "no-gifts", "no-packages", "gifts-absent", "packages-absent"],
)
def test_empty_lists_are_refused(document: Document) -> None:
    with pytest.raises(CatalogError):
        parse_catalog(document)


def test_duplicate_gift_ids_are_refused() -> None:
    document = minimal_document()
    twin = copy.deepcopy(document["gifts"][0]) | {"name": "Another Rose", "coins": 2}
    document["gifts"].append(twin)
    with pytest.raises(CatalogError, match="unique"):
        parse_catalog(document)


def test_duplicate_package_ids_are_refused() -> None:
    document = minimal_document()
    twin = copy.deepcopy(document["packages"][0]) | {"coins": 66, "price": "1.99"}
    document["packages"].append(twin)
    with pytest.raises(CatalogError, match="unique"):
        parse_catalog(document)


@pytest.mark.parametrize(
    "coins",
    [True, False, 1.0, 1.5, "1", None, [1], 0, -1, -1000, MAX_PRICE_COINS + 1, 2**53, 2**64],
)
def test_bad_gift_coins(coins: object) -> None:
    with pytest.raises(CatalogError):
        parse_catalog(gift_with(coins=coins))


def test_gift_without_coins() -> None:
    with pytest.raises(CatalogError):
        parse_catalog(gift_without("coins"))


@pytest.mark.parametrize("coins", [True, 65.0, "65", None, 0, -65, MAX_PRICE_COINS + 1])
def test_bad_package_coins(coins: object) -> None:
    with pytest.raises(CatalogError):
        parse_catalog(package_with(coins=coins))


@pytest.mark.parametrize("bonus", [True, False, 1.0, "5", None, -1, MAX_PRICE_COINS + 1])
def test_bad_package_bonus(bonus: object) -> None:
    with pytest.raises(CatalogError):
        parse_catalog(package_with(bonus=bonus))


@pytest.mark.parametrize("tier", ["huge", "Small", "SMALL", "", "tiny", 1, None, True])
def test_unknown_tier(tier: object) -> None:
    with pytest.raises(CatalogError):
        parse_catalog(gift_with(tier=tier))


@pytest.mark.parametrize(
    "ident",
    ["", "Rose", "rose-red", "rose red", "rose.red", "x" * 33, "玫瑰", "rose/1", 5, None, True],
)
def test_bad_gift_ids(ident: object) -> None:
    with pytest.raises(CatalogError):
        parse_catalog(gift_with(id=ident))


@pytest.mark.parametrize("ident", ["", "Coins_65", "coins-65", "x" * 33, 65, None])
def test_bad_package_ids(ident: object) -> None:
    with pytest.raises(CatalogError):
        parse_catalog(package_with(id=ident))


@pytest.mark.parametrize("key", ["id", "name", "tier", "streakable"])
def test_gift_missing_a_field(key: str) -> None:
    with pytest.raises(CatalogError):
        parse_catalog(gift_without(key))


@pytest.mark.parametrize("key", ["id", "coins", "price", "currency"])
def test_package_missing_a_field(key: str) -> None:
    with pytest.raises(CatalogError):
        parse_catalog(package_without(key))


@pytest.mark.parametrize("streakable", [1, 0, "true", None, "yes"])
def test_streakable_must_be_a_bool(streakable: object) -> None:
    with pytest.raises(CatalogError):
        parse_catalog(gift_with(streakable=streakable))


@pytest.mark.parametrize("name", [None, 5, ["Rose"]])
def test_gift_name_must_be_a_string(name: object) -> None:
    with pytest.raises(CatalogError):
        parse_catalog(gift_with(name=name))


@pytest.mark.parametrize("price", ["abc", "", "1,99", "$0.99", "0.99 USD", "NaN", "sNaN", "--1"])
def test_non_decimal_price(price: str) -> None:
    with pytest.raises(CatalogError):
        parse_catalog(package_with(price=price))


@pytest.mark.parametrize("price", ["0", "0.00", "-0.99", "-1"])
def test_price_must_be_positive(price: str) -> None:
    with pytest.raises(CatalogError):
        parse_catalog(package_with(price=price))


@pytest.mark.parametrize("price", [0.99, 1, None, True])
def test_price_must_be_text(price: object) -> None:
    with pytest.raises(CatalogError):
        parse_catalog(package_with(price=price))


@pytest.mark.parametrize("currency", [None, 840, True])
def test_currency_must_be_text(currency: object) -> None:
    with pytest.raises(CatalogError):
        parse_catalog(package_with(currency=currency))


def test_catalog_error_is_a_value_error() -> None:
    # Callers that only know ValueError still stop on a bad catalogue.
    assert issubclass(CatalogError, ValueError)


# ---------------------------------------------------------------- load_catalog


def test_load_catalogue_an_operator_supplies(tmp_path: Path) -> None:
    document = minimal_document()
    document["gifts"].append(
        {
            "id": "castle",
            "name": "Castle",
            "coins": 20000,
            "tier": "fullscreen",
            "streakable": False,
        }
    )
    document["packages"][0] |= {"id": "eur_100", "coins": 100, "price": "1.49", "currency": "EUR"}
    path = tmp_path / "catalog.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    catalog = load_catalog(path)
    assert list(catalog.gifts) == ["rose", "castle"]
    assert catalog.gift("castle").tier is Tier.FULLSCREEN
    assert catalog.package("eur_100").currency == "EUR"
    with pytest.raises(UnknownGift):
        catalog.gift("lion")


def test_load_missing_file_is_a_catalog_error(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "catalog.json"
    with pytest.raises(CatalogError, match="cannot read catalogue") as caught:
        load_catalog(missing)
    assert str(missing) in str(caught.value)


def test_load_a_directory_is_a_catalog_error(tmp_path: Path) -> None:
    with pytest.raises(CatalogError):
        load_catalog(tmp_path)


@pytest.mark.parametrize("text", ["", "{", "not json", '{"gifts": [}'])
def test_load_invalid_json_is_a_catalog_error(tmp_path: Path, text: str) -> None:
    path = tmp_path / "catalog.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(CatalogError):
        load_catalog(path)


def test_load_a_file_with_a_bad_entry_is_a_catalog_error(tmp_path: Path) -> None:
    path = tmp_path / "catalog.json"
    path.write_text(json.dumps(gift_with(coins=0)), encoding="utf-8")
    with pytest.raises(CatalogError):
        load_catalog(path)
