"""Typed settings: defaults for a laptop demo, environment variables, overrides, the doc."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from server.settings import (
    ENV_PREFIX,
    Settings,
    SettingsError,
    env_name,
    from_environment,
)

SETTINGS_DOC = Path(__file__).resolve().parent.parent / "docs" / "settings.md"
FIELD_NAMES = [item.name for item in dataclasses.fields(Settings)]


def without_secrets(settings: Settings) -> Settings:
    return dataclasses.replace(
        settings, jwt_secret="s" * 32, webhook_secret="", payout_webhook_secret=""
    )


# ---------------------------------------------------------------- defaults


def test_defaults_run_a_laptop_demo() -> None:
    settings = Settings()
    assert (settings.host, settings.port) == ("127.0.0.1", 8000)
    assert settings.allowed_origins == ()
    assert settings.redis_url is None
    assert settings.embedded_redis is True
    assert settings.key_prefix == "gs"
    assert settings.data_dir == Path(".giftstream")
    assert settings.catalog_path is None
    assert settings.log_level == "INFO"
    assert settings.log_format == "auto"
    assert settings.access_log is False


def test_default_safety_switches_are_off() -> None:
    settings = Settings()
    assert settings.demo is False
    assert settings.dev_tokens is False
    assert settings.sandbox_payments is False


def test_default_economy_follows_the_domain() -> None:
    settings = Settings()
    assert settings.revenue_share_percent == 50
    assert settings.min_creator_followers == 1000
    assert settings.max_gift_count == 9999
    assert settings.token_ttl_seconds == 3600
    assert settings.webhook_tolerance_seconds == 300
    assert settings.idempotency_ttl_seconds == 7 * 24 * 3600


def test_default_real_time_limits() -> None:
    settings = Settings()
    assert settings.max_frame_bytes == 4096
    assert settings.combo_window_ms == 3000
    assert settings.gift_rate_per_second == 20.0
    assert settings.gift_rate_burst == 60
    assert settings.outgoing_buffer_bytes == 1024 * 1024


def test_default_secrets_are_random_and_long() -> None:
    first, second = Settings(), Settings()
    assert len(first.jwt_secret) >= 32
    assert len(first.webhook_secret) >= 32
    assert first.jwt_secret != second.jwt_secret
    assert first.jwt_secret != first.webhook_secret


def test_settings_are_frozen() -> None:
    settings = Settings()
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.port = 1  # type: ignore[misc]


def test_empty_environment_gives_the_defaults() -> None:
    assert without_secrets(from_environment({})) == without_secrets(Settings())


def test_unrelated_variables_are_ignored() -> None:
    environ = {"PORT": "1", "GIFTSTREAM_NOPE": "x", "GIFTSTREAM_REDIS_URL": "redis://elsewhere"}
    assert without_secrets(from_environment(environ)) == without_secrets(Settings())


# ---------------------------------------------------------------- environment names


def test_env_names() -> None:
    assert env_name("port") == "GIFTSTREAM_PORT"
    assert env_name("allowed_origins") == "GIFTSTREAM_ALLOWED_ORIGINS"
    assert env_name("redis_url") == "REDIS_URL"


@pytest.mark.parametrize("name", FIELD_NAMES)
def test_every_env_name_is_upper_case_with_the_prefix(name: str) -> None:
    expected = "REDIS_URL" if name == "redis_url" else ENV_PREFIX + name.upper()
    assert env_name(name) == expected
    assert re.fullmatch(r"[A-Z][A-Z0-9_]*", env_name(name))


# ---------------------------------------------------------------- reading the environment


def test_port() -> None:
    settings = from_environment({"GIFTSTREAM_PORT": "9001"})
    assert settings.port == 9001
    assert type(settings.port) is int


def test_host() -> None:
    assert from_environment({"GIFTSTREAM_HOST": "0.0.0.0"}).host == "0.0.0.0"


@pytest.mark.parametrize("text", ["eight", "", "80.5", "0x50", "8k"])
def test_bad_integer(text: str) -> None:
    with pytest.raises(SettingsError, match="GIFTSTREAM_PORT"):
        from_environment({"GIFTSTREAM_PORT": text})


def test_redis_url() -> None:
    settings = from_environment({"REDIS_URL": "redis://cache.internal:6380/2"})
    assert settings.redis_url == "redis://cache.internal:6380/2"
    assert settings.embedded_redis is False


def test_empty_redis_url_means_embedded() -> None:
    settings = from_environment({"REDIS_URL": ""})
    assert settings.redis_url is None
    assert settings.embedded_redis is True


@pytest.mark.parametrize(
    ("text", "origins"),
    [
        ("https://a.example", ("https://a.example",)),
        (
            "https://a.example,http://localhost:3000",
            ("https://a.example", "http://localhost:3000"),
        ),
        (" https://a.example , https://b.example ,", ("https://a.example", "https://b.example")),
        (",,", ()),
        ("", ()),
    ],
)
def test_allowed_origins_is_a_comma_list(text: str, origins: tuple[str, ...]) -> None:
    assert from_environment({"GIFTSTREAM_ALLOWED_ORIGINS": text}).allowed_origins == origins


@pytest.mark.parametrize("text", ["true", "True", "TRUE", "1", "yes", "on", " true "])
def test_true_booleans(text: str) -> None:
    assert from_environment({"GIFTSTREAM_DEV_TOKENS": text}).dev_tokens is True


@pytest.mark.parametrize("text", ["false", "False", "0", "no", "off", ""])
def test_false_booleans(text: str) -> None:
    assert from_environment({"GIFTSTREAM_SANDBOX_PAYMENTS": text}).sandbox_payments is False


@pytest.mark.parametrize("text", ["maybe", "2", "tru", "enabled", "-1", "y"])
def test_bad_boolean(text: str) -> None:
    with pytest.raises(SettingsError, match="GIFTSTREAM_DEV_TOKENS"):
        from_environment({"GIFTSTREAM_DEV_TOKENS": text})


def test_settings_error_is_a_value_error() -> None:
    assert issubclass(SettingsError, ValueError)


def test_paths() -> None:
    settings = from_environment(
        {"GIFTSTREAM_DATA_DIR": "/var/lib/giftstream", "GIFTSTREAM_CATALOG_PATH": "cat.json"}
    )
    assert settings.data_dir == Path("/var/lib/giftstream")
    assert settings.catalog_path == Path("cat.json")
    assert isinstance(settings.catalog_path, Path)


def test_empty_catalog_path_means_the_shipped_one() -> None:
    assert from_environment({"GIFTSTREAM_CATALOG_PATH": ""}).catalog_path is None


def test_floats() -> None:
    settings = from_environment(
        {"GIFTSTREAM_GIFT_RATE_PER_SECOND": "2.5", "GIFTSTREAM_SWEEP_INTERVAL_SECONDS": "1"}
    )
    assert settings.gift_rate_per_second == 2.5
    assert settings.sweep_interval_seconds == 1.0


def test_bad_float() -> None:
    with pytest.raises(SettingsError, match="GIFTSTREAM_GIFT_RATE_PER_SECOND"):
        from_environment({"GIFTSTREAM_GIFT_RATE_PER_SECOND": "fast"})


def test_secrets_and_text() -> None:
    settings = from_environment(
        {
            "GIFTSTREAM_JWT_SECRET": "t-secret-of-thirty-two-characters",
            "GIFTSTREAM_WEBHOOK_SECRET": "w-secret",
            "GIFTSTREAM_KEY_PREFIX": "prod",
            "GIFTSTREAM_LOG_LEVEL": "DEBUG",
        }
    )
    assert settings.jwt_secret == "t-secret-of-thirty-two-characters"
    assert settings.webhook_secret == "w-secret"
    assert (settings.key_prefix, settings.log_level) == ("prod", "DEBUG")


@pytest.mark.parametrize("text", ["auto", "human", "json"])
def test_log_format(text: str) -> None:
    settings = from_environment({"GIFTSTREAM_LOG_FORMAT": text})
    assert settings.log_format == text
    settings.validate()


def test_access_log_is_a_boolean() -> None:
    assert from_environment({"GIFTSTREAM_ACCESS_LOG": "on"}).access_log is True
    with pytest.raises(SettingsError, match="GIFTSTREAM_ACCESS_LOG"):
        from_environment({"GIFTSTREAM_ACCESS_LOG": "loud"})


def test_economy_from_the_environment() -> None:
    settings = from_environment(
        {
            "GIFTSTREAM_REVENUE_SHARE_PERCENT": "70",
            "GIFTSTREAM_MAX_GIFT_COUNT": "99",
            "GIFTSTREAM_MIN_CREATOR_FOLLOWERS": "0",
            "GIFTSTREAM_COMBO_WINDOW_MS": "5000",
        }
    )
    assert settings.revenue_share_percent == 70
    assert settings.max_gift_count == 99
    assert settings.min_creator_followers == 0
    assert settings.combo_window_ms == 5000


def test_reads_the_process_environment_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GIFTSTREAM_PORT", "8123")
    monkeypatch.setenv("GIFTSTREAM_ALLOWED_ORIGINS", "https://a.example")
    settings = from_environment()
    assert settings.port == 8123
    assert settings.allowed_origins == ("https://a.example",)


# ---------------------------------------------------------------- demo mode


@pytest.mark.parametrize("text", ["1", "true"])
def test_demo_turns_on_dev_tokens_and_sandbox_payments(text: str) -> None:
    settings = from_environment({"GIFTSTREAM_DEMO": text})
    assert settings.demo is True
    assert settings.dev_tokens is True
    assert settings.sandbox_payments is True


def test_no_demo_leaves_them_off() -> None:
    settings = from_environment({"GIFTSTREAM_DEMO": "0"})
    assert (settings.demo, settings.dev_tokens, settings.sandbox_payments) == (False, False, False)


def test_dev_tokens_alone_does_not_open_the_sandbox() -> None:
    settings = from_environment({"GIFTSTREAM_DEV_TOKENS": "1"})
    assert (settings.dev_tokens, settings.sandbox_payments, settings.demo) == (True, False, False)


# ---------------------------------------------------------------- overrides


def test_the_former_name_of_the_jwt_secret_still_works() -> None:
    former = "a-secret-set-under-its-former-name"
    assert from_environment({"GIFTSTREAM_TOKEN_SECRET": former}).jwt_secret == former
    both = {"GIFTSTREAM_TOKEN_SECRET": former, "GIFTSTREAM_JWT_SECRET": "n" * 32}
    assert from_environment(both).jwt_secret == "n" * 32


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("GIFTSTREAM_JWT_SECRET", "too-short"),
        ("GIFTSTREAM_JWKS_URL", "ftp://platform.test/keys"),
        ("GIFTSTREAM_JWT_LEEWAY_SECONDS", "601"),
        ("GIFTSTREAM_JWT_USER_CLAIM", ""),
    ],
)
def test_token_settings_are_checked(name: str, value: str) -> None:
    with pytest.raises(SettingsError, match=name.removeprefix("GIFTSTREAM_").lower()):
        from_environment({name: value}).validate()


def test_with_overrides_ignores_none() -> None:
    base = Settings(port=9000, redis_url="redis://r")
    changed = base.with_overrides(port=None, redis_url=None, host="0.0.0.0")
    assert changed.port == 9000
    assert changed.redis_url == "redis://r"
    assert changed.host == "0.0.0.0"
    assert changed.jwt_secret == base.jwt_secret


def test_with_overrides_applies_false_and_zero() -> None:
    base = Settings(demo=True, min_creator_followers=1000)
    changed = base.with_overrides(demo=False, min_creator_followers=0)
    assert changed.demo is False
    assert changed.min_creator_followers == 0


def test_with_overrides_leaves_the_original() -> None:
    base = Settings()
    base.with_overrides(port=1)
    assert base.port == 8000


def test_with_no_overrides_is_equal() -> None:
    base = Settings()
    assert base.with_overrides() == base
    assert base.with_overrides(port=None) == base


# ---------------------------------------------------------------- the doc


@pytest.mark.parametrize("name", FIELD_NAMES)
def test_every_setting_is_in_the_settings_doc(name: str) -> None:
    assert SETTINGS_DOC.is_file(), f"{SETTINGS_DOC} is missing"
    text = SETTINGS_DOC.read_text(encoding="utf-8")
    variable = env_name(name)
    assert re.search(rf"(?<![A-Z0-9_]){variable}(?![A-Z0-9_])", text), variable


@pytest.mark.parametrize(
    "changes",
    [
        {"revenue_share_percent": 101},
        {"revenue_share_percent": -1},
        {"max_gift_count": 0},
        {"port": 70000},
        {"max_frame_bytes": 10},
        {"outgoing_buffer_bytes": 1024},
        {"gift_rate_per_second": 0.0},
        {"gift_rate_burst": 0},
        {"redis_pool_size": 1},
        {"embedded_appendfsync": "sometimes"},
        {"log_format": "pretty"},
        {"log_format": "JSON"},
    ],
)
def test_validate_refuses_values_that_would_misbehave(changes: dict[str, object]) -> None:
    with pytest.raises(SettingsError, match=next(iter(changes))):
        Settings(**changes).validate()  # type: ignore[arg-type]


def test_validate_accepts_the_defaults_and_edges() -> None:
    Settings().validate()
    Settings(revenue_share_percent=0, coalesce_tick_ms=0, port=0).validate()
    Settings(revenue_share_percent=100, embedded_appendfsync="everysec").validate()
