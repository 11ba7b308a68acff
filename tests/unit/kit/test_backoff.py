"""The one backoff rule: exponential with equal jitter, capped."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from kuekan.kit.backoff import backoff_s


@given(attempt=st.integers(min_value=-3, max_value=60),
       base_s=st.floats(min_value=0.001, max_value=60),
       cap_factor=st.floats(min_value=1, max_value=10_000))
def test_the_delay_lies_between_half_and_all_of_the_capped_exponential(
        attempt: int, base_s: float, cap_factor: float) -> None:
    cap_s = base_s * cap_factor
    ceiling = min(cap_s, base_s * 2.0 ** (max(attempt, 1) - 1))
    delay = backoff_s(attempt, base_s, cap_s)
    assert ceiling / 2 * (1 - 1e-9) <= delay <= ceiling * (1 + 1e-9)
    assert delay <= cap_s * (1 + 1e-9)


def test_the_delay_is_jittered_and_reaches_the_cap() -> None:
    first = {backoff_s(1, 10.0, 3600.0) for _ in range(100)}
    assert len(first) > 90 and min(first) >= 5.0 and max(first) <= 10.0
    late = [backoff_s(30, 10.0, 3600.0) for _ in range(100)]
    assert min(late) >= 1800.0 and max(late) <= 3600.0
