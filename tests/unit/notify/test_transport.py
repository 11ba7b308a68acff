"""The shared pieces: token bucket, backoff, Retry-After parsing."""

from __future__ import annotations

import asyncio
import datetime as dt
import time

import pytest

from kuekan.notify.transport import (
    RateLimitWouldBlock,
    RetryPolicy,
    TokenBucket,
    build_buckets,
    parse_retry_after,
)


def test_bucket_allows_a_burst_then_spaces_reservations_at_the_rate() -> None:
    bucket = TokenBucket(rate_per_s=50.0, burst=2, wait_max_s=1.0)

    waits = [bucket.reserve() for _ in range(4)]

    assert waits[:2] == [0.0, 0.0]
    assert waits[2] == pytest.approx(0.02, abs=0.005)
    assert waits[3] == pytest.approx(0.04, abs=0.005)


async def test_bucket_acquire_really_waits() -> None:
    bucket = TokenBucket(rate_per_s=25.0, burst=1, wait_max_s=1.0)
    started = time.monotonic()

    await asyncio.gather(*(bucket.acquire() for _ in range(6)))

    assert time.monotonic() - started >= 0.19  # 5 waits of 40 ms after the first token


def test_bucket_refuses_a_wait_beyond_its_cap_and_keeps_the_token() -> None:
    bucket = TokenBucket(rate_per_s=1.0, burst=1, wait_max_s=0.5)
    bucket.reserve()

    with pytest.raises(RateLimitWouldBlock) as caught:
        bucket.reserve()

    assert caught.value.wait_s == pytest.approx(1.0, abs=0.05)
    with pytest.raises(RateLimitWouldBlock):
        bucket.reserve()  # the refused call did not consume a token either


def test_backoff_grows_exponentially_with_jitter_and_stays_under_the_cap() -> None:
    policy = RetryPolicy(max_retries=10, backoff_base_s=1.0, backoff_max_s=8.0)
    for retry, ceiling in [(1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (9, 8.0)]:
        delays = [policy.backoff_s(retry) for _ in range(200)]
        assert min(delays) >= ceiling / 2
        assert max(delays) <= ceiling
        assert len(set(delays)) > 100  # jittered, not constant


def test_policy_refuses_unbounded_settings() -> None:
    with pytest.raises(ValueError, match="max_retries"):
        RetryPolicy(max_retries=1_000)
    with pytest.raises(ValueError, match="backoff"):
        RetryPolicy(backoff_base_s=5.0, backoff_max_s=1.0)


def test_retry_after_in_seconds_and_as_http_date() -> None:
    now = dt.datetime(2026, 1, 1, 12, 0, 0, tzinfo=dt.UTC)

    assert parse_retry_after("7") == 7.0
    assert parse_retry_after("Thu, 01 Jan 2026 12:00:30 GMT", now=now) == 30.0
    assert parse_retry_after("Thu, 01 Jan 2026 11:00:00 GMT", now=now) == 0.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


def test_unknown_endpoint_in_rate_settings_is_refused() -> None:
    with pytest.raises(ValueError, match="pushh"):
        build_buckets({"push": (10.0, 10)}, {"pushh": 5.0}, None, wait_max_s=1.0)
