"""Retry delays, the one rule: exponential with equal jitter, capped (tenacity's wait strategies).

Before retry ``attempt`` (1-based) the delay is half of ``min(cap, base·2^(attempt-1))`` fixed
plus up to the other half at random: it grows like the plain exponential, never exceeds the
cap, and retries of many callers that failed together spread out instead of arriving at once.

The three users need a delay *value*, not a retry loop that sleeps: the outbox defers an ARQ
job (``Retry(defer=...)``), agency webhooks store ``next_attempt_at``, and the LINE/SMS client
combines the delay with a ``Retry-After`` before deciding whether to wait at all. tenacity's
wait strategies are plain functions of the attempt number, so they serve all three
(docs/ARCHITECTURE.md says why tenacity rather than stamina).
"""

from __future__ import annotations

from typing import Any, cast

from tenacity import RetryCallState
from tenacity.wait import wait_base, wait_exponential, wait_random_exponential


def equal_jitter(base_s: float, cap_s: float) -> wait_base:
    """The wait strategy: a fixed exponential half plus a fully jittered exponential half."""
    assert 0 <= base_s <= cap_s
    half_base, half_cap = base_s / 2, cap_s / 2
    return (wait_exponential(multiplier=half_base, max=half_cap)
            + wait_random_exponential(multiplier=half_base, max=half_cap))


def backoff_s(attempt: int, base_s: float, cap_s: float) -> float:
    """The delay before retry ``attempt`` (1-based; below 1 counts as 1), in seconds."""
    state = RetryCallState(retry_object=cast(Any, None), fn=None, args=(), kwargs={})
    state.attempt_number = max(attempt, 1)
    return float(equal_jitter(base_s, cap_s)(state))
