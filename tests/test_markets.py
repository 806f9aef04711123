"""The two markets: English and USD packs, Simplified Chinese and CNY packs.

What the catalogue answers for a request's language and region (from
``?lang=``, ``?region=`` or ``Accept-Language``), and promotions: bonus coins
a package carries for a period, kept by an order made then and credited when
it is paid. Real servers, real Valkey.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from redis.asyncio import Redis

from server.core.locale import market, preferred_language
from server.core.promotions import Promotions
from server.errors import BadField
from server.money import reconcile
from server.settings import Settings, SettingsError, parse_promotions
from tests.client import Api, bearer
from tests.conftest import StartServer

DAY_MS = 86_400_000


@pytest.mark.parametrize(
    ("header", "language"),
    [
        (None, "en"),
        ("", "en"),
        ("zh-CN,zh;q=0.9,en;q=0.8", "zh-CN"),
        ("zh", "zh-CN"),
        ("zh-Hans-CN", "zh-CN"),
        ("en-GB,en;q=0.9", "en"),
        ("fr-FR,fr;q=0.9", "en"),  # not served: the default
        ("en;q=0.5,zh-CN;q=0.8", "zh-CN"),  # by quality, not order
        ("zh-CN;q=0,en", "en"),  # q=0: not acceptable
        ("de,zh-TW;q=0.9,zh-CN;q=0.5", "zh-CN"),  # Traditional is not served
    ],
)
def test_the_preferred_language(header: str | None, language: str) -> None:
    assert preferred_language(header) == language


def test_a_market_from_its_parts() -> None:
    assert market(None, None, "zh-CN") == ("zh-CN", "CN")
    assert market("en", None, "zh-CN") == ("en", "US")
    assert market("en", "CN", None) == ("en", "CN")
    assert market(None, "US", "zh") == ("zh-CN", "US")
    for lang, region in (("fr", None), (None, "EU"), ("zh-TW", "CN")):
        with pytest.raises(BadField):
            market(lang, region, None)


def test_promotions_hold_for_their_days_only() -> None:
    promotions = Promotions(
        parse_promotions("cny_98:98:2026-12-01:2026-12-31; cny_6:5:2026-12-24:2026-12-24")
    )
    december_first = datetime(2026, 12, 1, tzinfo=UTC)
    at = int(december_first.timestamp() * 1000)
    assert promotions.bonus("cny_98", at) == 98
    assert promotions.bonus("cny_98", at - 1) == 0  # 30 November, 23:59:59.999
    assert promotions.bonus("cny_98", at + 31 * DAY_MS - 1) == 98  # the last instant of the 31st
    assert promotions.bonus("cny_98", at + 31 * DAY_MS) == 0
    assert promotions.bonus("cny_6", at + 23 * DAY_MS) == 5
    assert promotions.current(at) == {"cny_98": 98}
    assert promotions.bonus("coins_65", at) == 0


@pytest.mark.parametrize(
    "text",
    ["cny_98:98:2026-12-31:2026-12-01", "cny_98:0:2026-12-01:2026-12-31", "cny_98:98:2026-12-01",
     "cny_98:lots:2026-12-01:2026-12-31", "cny_98:98:2026-13-01:2026-12-31"],
)  # fmt: skip
def test_a_malformed_promotion_is_refused_at_start(text: str) -> None:
    with pytest.raises(SettingsError, match="promotions"):
        Settings(promotions=text).validate()


async def catalog(api: Api, headers: dict[str, str] | None = None, **query: str) -> Any:
    answer = await api.http.get("/api/catalog", params=query, headers=headers or {})
    assert answer.status_code == 200, answer.text
    return answer.json()


async def test_the_catalogue_speaks_the_request_language_and_sells_its_region_packs(
    server: Any, api: Api
) -> None:
    default = await catalog(api)
    assert (default["language"], default["region"]) == ("en", "US")
    assert {p["currency"] for p in default["packages"]} == {"USD"}
    assert len(default["packages"]) == 6
    rose = next(g for g in default["gifts"] if g["id"] == "rose")
    assert (rose["name"], rose["names"]["zh-CN"]) == ("Rose", "玫瑰")

    chinese = await catalog(api, {"accept-language": "zh-CN,zh;q=0.9"})
    assert (chinese["language"], chinese["region"]) == ("zh-CN", "CN")
    assert {p["currency"] for p in chinese["packages"]} == {"CNY"}
    assert all(p["coins"] == 10 * float(p["price"]) for p in chinese["packages"])
    assert next(g for g in chinese["gifts"] if g["id"] == "rose")["name"] == "玫瑰"

    chosen = await catalog(api, {"accept-language": "zh-CN"}, lang="en", region="CN")
    assert (chosen["language"], chosen["region"]) == ("en", "CN")
    assert next(g for g in chosen["gifts"] if g["id"] == "rose")["name"] == "Rose"

    wrong = await api.http.get("/api/catalog", params={"region": "EU"})
    assert (wrong.status_code, wrong.json()["code"]) == (400, "bad_field")


async def test_a_promotion_adds_its_bonus_to_an_order_made_while_it_runs(
    start_server: StartServer, redis: Redis
) -> None:
    today = datetime.now(UTC).date()
    window = f"{today - timedelta(days=1)}:{today + timedelta(days=1)}"
    server = await start_server(promotions=f"cny_98:98:{window}")
    api = Api(server.http)
    shown = await catalog(api, region="CN")
    assert next(p for p in shown["packages"] if p["id"] == "cny_98")["bonus"] == 98
    assert next(p for p in shown["packages"] if p["id"] == "cny_30")["bonus"] == 0
    token = await api.token("yuan")
    paid = await api.buy(token, "cny_98")
    assert paid["status"] == "ok", paid
    wallet = await api.wallet(token)
    assert (wallet["coins"], wallet["bonus"], wallet["recharged"]) == (1078, 98, 980)
    assert server.key_prefix is not None
    report = await reconcile.check(redis, server.key_prefix)
    assert report.breaches == []
    orders = await api.http.post("/api/orders", json={"package": "cny_98"}, headers=bearer(token))
    assert orders.json()["coins"] == 1078
    await api.aclose()


async def test_a_promotion_that_is_over_adds_nothing(start_server: StartServer) -> None:
    long_ago = "2020-01-01:2020-01-31"
    server = await start_server(promotions=f"cny_98:98:{long_ago}")
    api = Api(server.http)
    shown = await catalog(api, region="CN")
    assert next(p for p in shown["packages"] if p["id"] == "cny_98")["bonus"] == 0
    token = await api.token("late")
    await api.buy(token, "cny_98")
    assert (await api.wallet(token))["coins"] == 980
    await api.aclose()
