"""Rewards rules: the earn rule with tier multipliers, tiers, coupon codes and QR, the offline
window (kuekan.rewards.model)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from kuekan.rewards import model

THB = st.decimals(min_value=0, max_value=1_000_000, places=2, allow_nan=False,
                  allow_infinity=False)
RATE = st.decimals(min_value=Decimal("0.5"), max_value=1000, places=2, allow_nan=False,
                   allow_infinity=False)
MULTIPLIER = st.sampled_from([Decimal(1), Decimal("1.5"), Decimal(2), Decimal(3)])


@given(thb=THB, rate=RATE, multiplier=MULTIPLIER)
def test_purchase_points_are_floored_and_never_exceed_the_exact_amount(
        thb: Decimal, rate: Decimal, multiplier: Decimal) -> None:
    points = model.purchase_points(thb, rate, Decimal(0), multiplier)
    assert isinstance(points, int)
    assert 0 <= points <= thb / rate * multiplier
    base = int(thb // rate)
    assert points == int(base * multiplier)  # the tier multiplies whole base points


@given(thb=THB, rate=RATE, low=MULTIPLIER, high=MULTIPLIER)
def test_a_higher_tier_multiplier_never_earns_less(thb: Decimal, rate: Decimal, low: Decimal,
                                                   high: Decimal) -> None:
    if low > high:
        low, high = high, low
    assert (model.purchase_points(thb, rate, Decimal(0), low)
            <= model.purchase_points(thb, rate, Decimal(0), high))


def test_below_the_minimum_spend_earns_nothing() -> None:
    assert model.purchase_points(Decimal("99.99"), Decimal(10), Decimal(100), Decimal(2)) == 0
    assert model.purchase_points(Decimal(100), Decimal(10), Decimal(100), Decimal(2)) == 20
    assert model.purchase_points(Decimal(0), Decimal(10), Decimal(0), Decimal(1)) == 0


TIERS = [("standard", 0), ("vip", 5000), ("gold", 20000)]


@given(earned=st.integers(min_value=0, max_value=10**7))
def test_the_best_tier_is_the_highest_threshold_reached(earned: int) -> None:
    tier = model.best_tier(earned, TIERS)
    threshold = dict(TIERS)[tier]
    assert threshold <= earned
    assert all(t <= threshold for _, t in TIERS if t <= earned)


def test_below_every_threshold_is_standard() -> None:
    assert model.best_tier(10, [("vip", 5000)]) == "standard"
    assert model.best_tier(5000, TIERS) == "vip"


def test_coupon_codes_avoid_ambiguous_characters_and_normalise_back() -> None:
    for code in model.code_candidates():
        raw = code.replace("-", "")
        assert len(raw) == model.CODE_LEN and set(raw) <= set(model.CODE_ALPHABET)
        assert model.normalize_code(code.lower().replace("-", " ")) == code


def test_a_coupon_qr_verifies_only_when_genuine() -> None:
    exp = dt.datetime(2027, 1, 1, tzinfo=dt.UTC)
    payload = model.sign_coupon("ABCDE-FGHJK", exp, "k1", "secret")
    assert model.verify_coupon(payload, {"k1": "secret"}) == "ABCDE-FGHJK"
    assert model.verify_coupon(payload, {"k1": "other"}) is None
    assert model.verify_coupon(payload.replace("ABCDE", "ABCDF"), {"k1": "secret"}) is None
    assert model.verify_coupon("KKC1.x", {"k1": "secret"}) is None


@given(offset_s=st.integers(min_value=-10 * 86400, max_value=86400))
def test_the_offline_window_accepts_exactly_the_window(offset_s: int) -> None:
    now = dt.datetime(2026, 12, 8, 12, tzinfo=dt.UTC)
    at = now + dt.timedelta(seconds=offset_s)
    why = model.offline_refusal(at, now, 72, 300)
    if offset_s > 300:
        assert why == "scanned_at_in_future"
    elif offset_s < -72 * 3600:
        assert why == "offline_window_expired"
    else:
        assert why is None
    assert model.offline_refusal(at.replace(tzinfo=None), now, 72, 300) == \
        "scanned_at_needs_offset"
