"""The token bucket: a burst at once, then a steady rate, on a clock the test holds."""

from __future__ import annotations

import pytest

from server.core.ratelimit import TokenBucket

T0 = 1_000.0


def allowed(bucket: TokenBucket, now: float, attempts: int) -> int:
    return sum(bucket.allow(now) for _ in range(attempts))


def drained(rate: float = 2.0, burst: int = 5) -> TokenBucket:
    bucket = TokenBucket(rate_per_second=rate, burst=burst)
    assert allowed(bucket, T0, burst) == burst
    assert bucket.allow(T0) is False
    return bucket


def test_burst_allowed_at_once_then_refused() -> None:
    bucket = TokenBucket(rate_per_second=2.0, burst=5)
    assert [bucket.allow(T0) for _ in range(7)] == [True] * 5 + [False] * 2


def test_starts_full_whatever_the_first_reading() -> None:
    for start in (0.0, 1e-9, 123_456.789):
        bucket = TokenBucket(rate_per_second=1.0, burst=3)
        assert allowed(bucket, start, 10) == 3


def test_refills_at_the_rate() -> None:
    bucket = drained(rate=2.0)
    assert bucket.allow(T0 + 0.49) is False
    assert bucket.allow(T0 + 0.5) is True
    assert bucket.allow(T0 + 0.5) is False
    assert allowed(bucket, T0 + 2.0, 10) == 3


def test_fractions_of_a_token_accumulate() -> None:
    bucket = drained(rate=4.0)
    assert bucket.allow(T0 + 0.1) is False
    assert bucket.allow(T0 + 0.2) is False
    assert bucket.allow(T0 + 0.25) is True


def test_slow_rate() -> None:
    bucket = drained(rate=0.5, burst=1)
    assert bucket.allow(T0 + 1.9) is False
    assert bucket.allow(T0 + 2.0) is True


def test_steady_sending_below_the_rate_is_always_allowed() -> None:
    bucket = drained(rate=20.0, burst=60)
    results = [bucket.allow(T0 + step * 0.055) for step in range(1, 201)]
    assert all(results)


def test_sending_faster_than_the_rate_is_held_to_the_rate() -> None:
    bucket = drained(rate=10.0, burst=10)
    # 100 attempts per second for 10 seconds: about 10 per second get through.
    passed = sum(bucket.allow(T0 + step * 0.01) for step in range(1, 1001))
    assert passed == pytest.approx(100, abs=1)


@pytest.mark.parametrize("idle", [10.0, 3600.0, 1e9])
def test_never_exceeds_burst_after_a_long_idle(idle: float) -> None:
    bucket = drained(rate=2.0, burst=5)
    assert allowed(bucket, T0 + idle, 100) == 5


def test_never_exceeds_burst_even_unused() -> None:
    bucket = TokenBucket(rate_per_second=1000.0, burst=3)
    assert bucket.allow(T0) is True
    assert allowed(bucket, T0 + 1e6, 10) == 3


def test_time_going_backwards_adds_no_tokens() -> None:
    bucket = drained(rate=2.0, burst=5)
    for earlier in (T0 - 1, T0 - 100, T0 - 500, 0.0, -1e6):
        assert bucket.allow(earlier) is False
    assert bucket.tokens is not None
    assert bucket.tokens <= 1.0


def test_time_going_backwards_keeps_tokens_it_had() -> None:
    bucket = TokenBucket(rate_per_second=2.0, burst=5)
    assert allowed(bucket, T0, 2) == 2
    assert allowed(bucket, T0 - 50, 10) == 3


def test_zero_burst_allows_nothing() -> None:
    bucket = TokenBucket(rate_per_second=100.0, burst=0)
    assert bucket.allow(T0) is False
    assert bucket.allow(T0 + 100) is False


def test_zero_rate_never_refills() -> None:
    bucket = drained(rate=0.0, burst=2)
    assert bucket.allow(T0 + 1e6) is False


def test_buckets_are_independent() -> None:
    first = drained()
    second = TokenBucket(rate_per_second=2.0, burst=5)
    assert second.allow(T0) is True
    assert first.allow(T0) is False
