"""Every setting of a giftstream process, in one place.

Each field reads an environment variable (``GIFTSTREAM_`` + the field name in
upper case, except ``REDIS_URL``); command-line flags override the
environment. The defaults run a laptop demo. ``docs/settings.md`` lists them
all; ``tests/test_settings.py`` keeps that page and this module in step.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, get_type_hints

ENV_PREFIX = "GIFTSTREAM_"
LOG_FORMATS = ("auto", "human", "json")


class SettingsError(ValueError):
    """A setting's text could not be read as the type it needs."""


def _random_secret() -> str:
    return secrets.token_urlsafe(32)


_RATE_PAIR = re.compile(r"^([A-Z]{3}):([0-9]+(?:\.[0-9]+)?)$")


def parse_rates(text: str) -> dict[str, Decimal]:
    """``payout_rates``, "USD:0.005,CNY:0.05", as {currency: cash per diamond};
    ValueError if malformed."""
    rates: dict[str, Decimal] = {}
    for pair in text.split(","):
        found = _RATE_PAIR.match(pair.strip())
        if found is None or Decimal(found.group(2)) <= 0:
            raise ValueError(f"not a CODE:amount pair above 0: {pair!r}")
        rates[found.group(1)] = Decimal(found.group(2))
    return rates


def parse_cash(text: str) -> Decimal:
    """An amount of money such as ``payout_minimum_cash``: 0 or more."""
    try:
        value = Decimal(text)
    except InvalidOperation as exc:
        raise ValueError(f"not an amount: {text!r}") from exc
    if not value.is_finite() or value < 0:
        raise ValueError(f"not an amount: {text!r}")
    return value


# Fan levels a club may have (server/core/fan_levels.py).
MAX_FAN_LEVELS = 50


def parse_fan_thresholds(text: str) -> tuple[int, ...]:
    """``"0,100,300"`` -> (0, 100, 300): a fan club's level thresholds in coins.
    Raises ValueError unless they rise from 0."""
    values = tuple(int(part) for part in text.split(","))
    if not values or values[0] != 0 or len(values) > MAX_FAN_LEVELS:
        raise ValueError(f"1 to {MAX_FAN_LEVELS} thresholds, the first 0")
    if any(b <= a for a, b in itertools.pairwise(values)):
        raise ValueError("thresholds must rise")
    return values


@dataclass(frozen=True, slots=True)
class Promotion:
    """Bonus coins for a package over whole UTC days (server/core/promotions.py)."""

    package: str
    bonus: int
    first_day: int  # days since 1970-01-01, UTC
    last_day: int


def parse_promotions(text: str) -> tuple[Promotion, ...]:
    """``"cny_98:98:2026-12-01:2026-12-31;..."``; "" for none. Raises ValueError."""
    found: list[Promotion] = []
    for item in filter(None, (part.strip() for part in text.split(";"))):
        package, bonus, first, last = item.split(":")
        days = [_utc_day(first), _utc_day(last)]
        if not package or not 1 <= int(bonus) <= 1_000_000 or days[0] > days[1]:
            raise ValueError(f"promotion {item!r}: a package, 1 to 1000000 coins, from <= to")
        found.append(Promotion(package, int(bonus), days[0], days[1]))
    return tuple(found)


def _utc_day(text: str) -> int:
    return (date.fromisoformat(text) - date(1970, 1, 1)).days


def _parses(parse: Callable[[str], object], text: str) -> bool:
    try:
        parse(text)
    except ValueError:
        return False
    return True


@dataclass(frozen=True, slots=True)
class Settings:
    # --- network ---
    host: str = "127.0.0.1"
    port: int = 8000
    # The names this server answers for, in the Host header (exact,
    # "*.example.com", or "*"): any other gets 400 bad_host. A page may open
    # a room socket when its origin's host is one of them.
    allowed_hosts: tuple[str, ...] = ("localhost", "127.0.0.1", "::1")
    # Whole origins (scheme://host[:port]) allowed to open a room WebSocket
    # from a browser besides those: pages served from another site.
    allowed_origins: tuple[str, ...] = ()

    # --- Redis ---
    # None: start the embedded Valkey under data_dir.
    redis_url: str | None = None
    # redis_url is a seed node of a Redis Cluster: a cluster client, sharded
    # pub/sub (with no redis_url: an embedded 3-primary cluster).
    redis_cluster: bool = False
    key_prefix: str = "gs"
    # Connections to Redis per process; callers queue when all are busy.
    redis_pool_size: int = 64
    script_batching: bool = True
    data_dir: Path = Path(".giftstream")
    # The embedded Valkey's AOF fsync policy: "always" loses no acknowledged
    # gift on power loss; "everysec" risks about the last second of them.
    embedded_appendfsync: str = "always"

    # --- demo ---
    demo: bool = False
    # Demo mode turns these on; a production deployment leaves them off.
    dev_tokens: bool = False
    sandbox_payments: bool = False

    # --- the operator ---
    # The Bearer token of /api/admin/ (server/api/admin_api.py). Unset, the
    # operator API answers 404; demo mode makes one up and prints it.
    operator_token: str | None = None

    # --- sign-in tokens: JSON Web Tokens (server/core/tokens.py) ---
    # The shared secret of HS256 tokens (the demo mints its one-click tokens
    # with it). Random per process unless set: set it in any multi-process
    # deployment that takes such tokens.
    jwt_secret: str = field(default_factory=_random_secret)
    # The platform's JSON Web Key Set: RS256 and ES256 tokens are checked
    # with the key their "kid" names.
    jwks_url: str | None = None
    # A token whose key id the set lacks fetches it again, at most this often.
    jwks_refetch_seconds: float = 10.0
    # When set, a token must say this issuer ("iss") and audience ("aud").
    jwt_issuer: str | None = None
    jwt_audience: str | None = None
    # Clock skew allowed on expiry and "not before".
    jwt_leeway_seconds: int = 30
    # The claims that name the user, the role and the age.
    jwt_user_claim: str = "sub"
    jwt_role_claim: str = "role"
    jwt_age_claim: str = "age"
    # How long the demo's tokens last.
    token_ttl_seconds: int = 3600

    # --- secrets ---
    # Random per process unless set: set it in any multi-process deployment.
    webhook_secret: str = field(default_factory=_random_secret)
    webhook_tolerance_seconds: int = 300

    # --- Stripe Checkout (server/api/stripe_api.py) ---
    # The Stripe account's secret API key: set (with the four below), viewers
    # can pay orders on Stripe's Checkout page. Unset, the Stripe routes
    # answer 404 and only the sandbox (in demo mode) takes payments.
    stripe_secret_key: str | None = None
    # The signing secret of the webhook endpoint registered at Stripe.
    stripe_webhook_secret: str | None = None
    # Where the library sends its API requests: Stripe's, except in tests
    # or against a self-hosted mock of Stripe's API.
    stripe_api_base: str = "https://api.stripe.com"
    # Where Checkout sends the payer back, once paid or having given up.
    stripe_success_url: str | None = None
    stripe_cancel_url: str | None = None

    # --- economy ---
    catalog_path: Path | None = None
    revenue_share_percent: int = 50
    max_gift_count: int = 9999
    # A single send worth more than this needs "confirm": true in its frame
    # (else confirm_required), so that a large tap is never an accident...
    confirm_above_coins: int = 1000
    # ...and none may be worth more than this (send_limit_exceeded).
    max_send_coins: int = 500_000
    # Joining a creator's fan club costs this many coins (a gift to them).
    fanclub_price_coins: int = 1
    # Fan levels: ascending coins spent in the creator's rooms since joining,
    # the first 0 (server/core/fan_levels.py).
    fan_level_coins: str = "0,100,300,1000,3000,10000,30000,100000"
    # Bonus coins packages carry for a period: "<package>:<bonus>:<from
    # YYYY-MM-DD>:<to YYYY-MM-DD>;..." (server/core/promotions.py).
    promotions: str = ""
    # A viewer's raise or removal of their own spending limit applies this
    # long after they ask (a lower limit applies at once).
    budget_cooling_seconds: float = 24 * 3600
    # A user the operator or their token says is a minor: "blocked" (no
    # recharge, no gift: age_restricted) or "limited" (gifts within
    # minor_daily_limit_coins a UTC day). A user of unknown age counts as
    # unknown_age_as says: "adult" or "minor".
    minor_policy: str = "blocked"
    minor_daily_limit_coins: int = 100
    unknown_age_as: str = "adult"
    min_creator_followers: int = 1000
    # A creator must be 18 or older (their token's "adult" claim, or the
    # operator's word) to switch gifting on.
    creators_must_be_adult: bool = True
    # A live stream nothing has been seen of for this long (no heartbeat,
    # no creator page or overlay open) is ended by the server.
    stream_idle_seconds: float = 120.0
    idempotency_ttl_seconds: int = 7 * 24 * 3600
    # An unpaid recharge order lives this long: past a payment provider's
    # redelivery of a late callback (about 3 days), which needs the order.
    order_ttl_seconds: int = 3 * 24 * 3600
    # Unpaid orders one user may hold; then 429 too_many_orders.
    max_open_orders: int = 10
    # New orders a minute, per user and per client address (token buckets
    # holding as many as a minute allows).
    orders_per_minute: int = 10
    orders_per_minute_per_ip: int = 60

    # --- withdrawals ---
    # Cash a diamond is worth, per currency: "CODE:amount" pairs. A payout by
    # alipay or wechat is paid in CNY, by bank or paypal in USD.
    payout_rates: str = "USD:0.005,CNY:0.05"
    # The least a withdrawal may be worth, in its own currency (1 USD is 200
    # diamonds at the rate above, 1 CNY 20).
    payout_minimum_cash: str = "1"
    # Diamonds a creator may ask to withdraw in one UTC day (failed ones do
    # not count).
    payout_daily_limit_diamonds: int = 2_000_000
    # The sandbox payout provider (demo mode): verifies payout profiles at
    # once and pays each withdrawal this long after it is asked for.
    sandbox_payouts: bool = False
    sandbox_payout_delay_seconds: float = 5.0
    # Signs the payout provider's callbacks to /api/payouts/webhook.
    payout_webhook_secret: str = field(default_factory=_random_secret)

    # --- HTTP API ---
    # Request bodies past these are refused with 413 before they are read
    # whole (server/api/bodies.py): JSON requests, and payment callbacks.
    max_body_bytes: int = 16 * 1024
    max_webhook_body_bytes: int = 64 * 1024

    # --- real-time path ---
    max_frame_bytes: int = 4096
    outgoing_buffer_bytes: int = 1024 * 1024
    coalesce_tick_ms: int = 50
    combo_window_ms: int = 3000
    # A process silent this long is taken for dead, and another ends its
    # combos (server/rooms/combo_ends.py): longer than the window.
    combo_owner_timeout_seconds: float = 10.0
    # On one Redis node, a room's gift waits this long for others of the room
    # to share its script call (server/tuning/script_groups.py): 0 sends at once.
    gift_gather_ms: float = 0.0
    gift_rate_per_second: float = 20.0
    gift_rate_burst: int = 60
    # Gifts one user may send, across all sockets and processes (gift.lua).
    user_gift_rate_per_second: float = 30.0
    user_gift_rate_burst: int = 100
    # Room sockets one signed-in user may hold open across all processes.
    max_sockets_per_user: int = 20
    # Connections (HTTP and room sockets) one client address may hold open in
    # one process; more are answered 429 and closed (server/ops/connection_caps.py).
    # Generous: many phones share one address behind a carrier's NAT.
    max_connections_per_ip: int = 256
    # Addresses not capped: a reverse proxy on this machine, which speaks for
    # all its clients, and this machine's own tools.
    connection_cap_exempt: tuple[str, ...] = ("127.0.0.1", "::1")
    # A connection's request head (a room socket's whole handshake) must
    # arrive within this, or the connection is closed (server/api/http_protocol.py).
    handshake_timeout_seconds: float = 10.0
    # Each room socket is pinged this often (0: never) and closed (1011) when
    # its pong has not come this long after (server/rooms/keepalive.py).
    ws_ping_interval_seconds: float = 20.0
    ws_ping_timeout_seconds: float = 20.0
    room_history_length: int = 1000
    # A process that dies stops counting in its rooms' viewer counts after this.
    presence_ttl_seconds: float = 30.0
    viewer_count_interval_seconds: float = 2.0

    # --- background work ---
    sweep_interval_seconds: float = 5.0
    sweep_min_age_seconds: float = 10.0

    # --- logging ---
    log_level: str = "INFO"
    # "auto": short lines for people when stderr is a terminal, JSON lines
    # otherwise (a log collector's input); "human" or "json" force one.
    log_format: str = "auto"
    # Each HTTP request and each accepted WebSocket, as a log line. Off, a
    # terminal's human logs leave out accepted sockets too, so that a demo
    # page's reconnects do not push the start-up banner off the screen.
    access_log: bool = False

    @property
    def embedded_redis(self) -> bool:
        return self.redis_url is None

    def validate(self) -> None:
        """Refuse values that would make the server misbehave rather than start."""
        problems = [
            message
            for broken, message in (
                (not 0 <= self.revenue_share_percent <= 100, "revenue_share_percent: 0..100"),
                (not 1 <= self.max_gift_count <= 100_000, "max_gift_count: 1..100000"),
                (self.confirm_above_coins < 0, "confirm_above_coins: 0 or more"),
                (
                    not 1 <= self.fanclub_price_coins <= 1_000_000,
                    "fanclub_price_coins: 1 to 1000000",
                ),
                (
                    not _parses(parse_promotions, self.promotions),
                    "promotions: <package>:<bonus>:<YYYY-MM-DD>:<YYYY-MM-DD>;...",
                ),
                (
                    not _parses(parse_fan_thresholds, self.fan_level_coins),
                    "fan_level_coins: ascending whole numbers, the first 0, comma-separated",
                ),
                (not self.budget_cooling_seconds >= 0, "budget_cooling_seconds: 0 or more"),
                (
                    self.minor_policy not in ("blocked", "limited"),
                    "minor_policy: blocked or limited",
                ),
                (self.minor_daily_limit_coins < 0, "minor_daily_limit_coins: 0 or more"),
                (self.unknown_age_as not in ("adult", "minor"), "unknown_age_as: adult or minor"),
                (
                    not 1 <= self.max_send_coins <= 10**13,
                    "max_send_coins: 1 to 10^13 (a gift's cost is capped there)",
                ),
                (not 0 <= self.port <= 65535, "port: 0..65535"),
                (self.max_frame_bytes < 256, "max_frame_bytes: at least 256"),
                (
                    not 1024 <= self.max_body_bytes <= 16 * 1024 * 1024,
                    "max_body_bytes: 1024..16777216",
                ),
                (
                    not 1024 <= self.max_webhook_body_bytes <= 16 * 1024 * 1024,
                    "max_webhook_body_bytes: 1024..16777216",
                ),
                (self.outgoing_buffer_bytes < 64 * 1024, "outgoing_buffer_bytes: at least 65536"),
                (self.coalesce_tick_ms < 0, "coalesce_tick_ms: 0 or more"),
                (not 0 <= self.gift_gather_ms <= 50, "gift_gather_ms: 0 to 50"),
                (not self.gift_rate_per_second > 0, "gift_rate_per_second: more than 0"),
                (self.gift_rate_burst < 1, "gift_rate_burst: at least 1"),
                (self.max_sockets_per_user < 1, "max_sockets_per_user: at least 1"),
                (self.max_connections_per_ip < 1, "max_connections_per_ip: at least 1"),
                (self.order_ttl_seconds < 60, "order_ttl_seconds: at least 60"),
                (self.max_open_orders < 1, "max_open_orders: at least 1"),
                (self.orders_per_minute < 1, "orders_per_minute: at least 1"),
                (self.orders_per_minute_per_ip < 1, "orders_per_minute_per_ip: at least 1"),
                (not self.user_gift_rate_per_second > 0, "user_gift_rate_per_second: more than 0"),
                (self.user_gift_rate_burst < 1, "user_gift_rate_burst: at least 1"),
                (self.redis_pool_size < 2, "redis_pool_size: at least 2"),
                (self.token_ttl_seconds < 1, "token_ttl_seconds: at least 1"),
                (len(self.jwt_secret) < 32, "jwt_secret: at least 32 characters"),
                (
                    self.jwks_url is not None
                    and not self.jwks_url.startswith(("https://", "http://")),
                    "jwks_url: an http:// or https:// URL",
                ),
                (not 0 <= self.jwt_leeway_seconds <= 600, "jwt_leeway_seconds: 0 to 600"),
                (not self.jwks_refetch_seconds >= 0.1, "jwks_refetch_seconds: at least 0.1"),
                (
                    not all((self.jwt_user_claim, self.jwt_role_claim, self.jwt_age_claim)),
                    "jwt_user_claim, jwt_role_claim, jwt_age_claim: not empty",
                ),
                (not self.presence_ttl_seconds >= 1, "presence_ttl_seconds: at least 1"),
                (
                    not self.combo_owner_timeout_seconds * 1000 > self.combo_window_ms,
                    "combo_owner_timeout_seconds: longer than combo_window_ms",
                ),
                (
                    not self.handshake_timeout_seconds > 0,
                    "handshake_timeout_seconds: more than 0",
                ),
                (
                    not self.ws_ping_interval_seconds >= 0,
                    "ws_ping_interval_seconds: 0 (no pings) or more",
                ),
                (
                    not self.ws_ping_timeout_seconds > 0,
                    "ws_ping_timeout_seconds: more than 0",
                ),
                (
                    not self.viewer_count_interval_seconds >= 0.05,
                    "viewer_count_interval_seconds: at least 0.05",
                ),
                (
                    self.embedded_appendfsync not in ("always", "everysec", "no"),
                    "embedded_appendfsync: always, everysec or no",
                ),
                (self.log_format not in LOG_FORMATS, "log_format: auto, human or json"),
                (not _parses(parse_rates, self.payout_rates), "payout_rates: CODE:amount,..."),
                (
                    not _parses(parse_cash, self.payout_minimum_cash),
                    "payout_minimum_cash: an amount, 0 or more",
                ),
                (self.payout_daily_limit_diamonds < 1, "payout_daily_limit_diamonds: at least 1"),
                (
                    self.operator_token is not None and len(self.operator_token) < 16,
                    "operator_token: at least 16 characters",
                ),
                (not self.stream_idle_seconds >= 1, "stream_idle_seconds: at least 1"),
                (
                    not self.sandbox_payout_delay_seconds >= 0,
                    "sandbox_payout_delay_seconds: 0 or more",
                ),
                (
                    # Some without the others: a payment that could never be
                    # credited, or a checkout with nowhere to return to.
                    len(
                        {
                            self.stripe_secret_key is None,
                            self.stripe_webhook_secret is None,
                            self.stripe_success_url is None,
                            self.stripe_cancel_url is None,
                        }
                    )
                    > 1,
                    "stripe_secret_key, stripe_webhook_secret, stripe_success_url, "
                    "stripe_cancel_url: all set, or none",
                ),
                (
                    not all(
                        url.startswith(("https://", "http://"))
                        for url in (
                            self.stripe_api_base,
                            self.stripe_success_url or "https://",
                            self.stripe_cancel_url or "https://",
                        )
                    ),
                    "stripe_api_base, stripe_success_url, stripe_cancel_url: "
                    "http:// or https:// URLs",
                ),
            )
            if broken
        ]
        if problems:
            raise SettingsError("invalid settings: " + "; ".join(problems))

    def with_overrides(self, **changes: Any) -> Settings:
        """A copy with the given fields replaced (None values are ignored)."""
        kept = {k: v for k, v in changes.items() if v is not None}
        return dataclasses.replace(self, **kept)


def env_name(field_name: str) -> str:
    return "REDIS_URL" if field_name == "redis_url" else ENV_PREFIX + field_name.upper()


def _parse_bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off", ""}:
        return False
    raise SettingsError(f"not a boolean: {text!r}")


def _parse(text: str, kind: Any, name: str) -> Any:
    try:
        if kind is bool:
            return _parse_bool(text)
        if kind is int:
            return int(text)
        if kind is float:
            return float(text)
        if kind == tuple[str, ...]:
            return tuple(part.strip() for part in text.split(",") if part.strip())
        if kind == Path | None:
            return Path(text) if text else None
        if kind is Path:
            if not text:
                raise ValueError("a path must not be empty")
            return Path(text)
        if kind == str | None:
            return text or None
        return text
    except ValueError as exc:
        raise SettingsError(f"{env_name(name)}: {exc}") from exc


# Settings renamed since a release: the former variable still works, when
# the new one is not set.
FORMER_NAMES = {"jwt_secret": "GIFTSTREAM_TOKEN_SECRET"}


def from_environment(environ: Mapping[str, str] | None = None) -> Settings:
    """Build settings from environment variables over the defaults."""
    environ = os.environ if environ is None else environ
    hints = get_type_hints(Settings)
    values: dict[str, Any] = {}
    for item in dataclasses.fields(Settings):
        raw = environ.get(env_name(item.name))
        if raw is None:
            raw = environ.get(FORMER_NAMES.get(item.name, ""))
        if raw is not None:
            values[item.name] = _parse(raw, hints[item.name], item.name)
    settings = Settings(**values)
    return in_demo_mode(settings) if settings.demo else settings


def in_demo_mode(settings: Settings) -> Settings:
    """What demo mode turns on, however it was asked for (flag or environment):
    tokens for anyone, the sandbox payment and payout providers, and an
    operator token made up for this run unless one is given."""
    return dataclasses.replace(
        settings,
        demo=True,
        dev_tokens=True,
        sandbox_payments=True,
        sandbox_payouts=True,
        operator_token=settings.operator_token or _random_secret(),
    )
