"""Fraud decision rules (kuekan.fraud.model): each fires exactly past its threshold."""

from __future__ import annotations

import datetime as dt

from hypothesis import given
from hypothesis import strategies as st

from kuekan.fraud import model
from kuekan.fraud.model import Checkin, Thresholds

TH = Thresholds()
T0 = dt.datetime(2026, 12, 8, 10, tzinfo=dt.UTC)


def _at(seconds: float, lat: float | None = 14.97, lon: float | None = 102.1,
        **kw: object) -> Checkin:
    return Checkin(member_id=1, at=T0 + dt.timedelta(seconds=seconds), lat=lat, lon=lon,
                   **kw)  # type: ignore[arg-type]


@given(n=st.integers(min_value=0, max_value=50))
def test_velocity_fires_only_above_the_maximum(n: int) -> None:
    found = model.checkin_velocity(_at(0), n, TH)
    assert (found is not None) == (n > TH.velocity_max_checkins)
    if found:
        assert (found.rule, found.severity) == ("checkin_velocity", "medium")


@given(km_north=st.floats(min_value=0, max_value=500),
       minutes=st.floats(min_value=0, max_value=600))
def test_impossible_travel_is_speed_over_the_limit_beyond_the_minimum_distance(
        km_north: float, minutes: float) -> None:
    prev = _at(0, lat=14.0, lon=102.0)
    cur = _at(minutes * 60, lat=14.0 + km_north / 111.2, lon=102.0)
    found = model.impossible_travel(cur, prev, TH)
    km = model.haversine_km(14.0, 102.0, cur.lat or 0, 102.0)
    kmh = km / (max(minutes * 60, 1.0) / 3600)
    expected = km > TH.travel_min_km and kmh > TH.travel_max_kmh
    assert (found is not None) == expected
    if found:
        assert found.severity == "high" and found.evidence["kmh"] >= TH.travel_max_kmh


def test_travel_without_coordinates_or_history_is_not_judged() -> None:
    assert model.impossible_travel(_at(10), None, TH) is None
    assert model.impossible_travel(_at(10, lat=None), _at(0), TH) is None


def test_haversine_matches_a_known_distance() -> None:
    # Korat city hall to Bangkok's city pillar: about 220 km as the crow flies.
    assert 215 < model.haversine_km(14.9799, 102.0978, 13.7563, 100.5018) < 225


@given(accounts=st.integers(min_value=0, max_value=20))
def test_one_device_on_many_accounts(accounts: int) -> None:
    found = model.device_many_accounts(_at(0, device_id="d1"), accounts, TH)
    assert (found is not None) == (accounts > TH.device_max_accounts)
    assert model.device_many_accounts(_at(0), 99, TH) is None  # no device id, no rule


def test_a_geofence_burst_fires_once_and_never_at_an_event() -> None:
    fired = [n for n in range(1, 2 * TH.geofence_burst_max)
             if model.geofence_burst(_at(0, geofence_id=5), n, TH)]
    assert fired == [TH.geofence_burst_max + 1]
    assert model.geofence_burst(_at(0, geofence_id=5, is_event=True),
                                TH.geofence_burst_max + 1, TH) is None


def test_accuracy_anomaly_on_perfect_or_repeated_fixes() -> None:
    assert model.accuracy_anomaly(_at(0, accuracy_m=0.5), 0, TH) is not None
    assert model.accuracy_anomaly(_at(0, accuracy_m=8), TH.accuracy_repeat_count, TH) is not None
    assert model.accuracy_anomaly(_at(0, accuracy_m=8), TH.accuracy_repeat_count - 1, TH) is None


@given(in_window=st.integers(0, 10_000), baseline=st.integers(0, 1_000_000))
def test_merchant_burst_is_above_both_the_floor_and_the_factor_of_its_baseline(
        in_window: int, baseline: int) -> None:
    found = model.merchant_award_burst(3, in_window, baseline, TH)
    windows = TH.burst_baseline_days * 86400 / TH.burst_window_s
    limit = max(TH.burst_min_awards, TH.burst_factor * baseline / windows)
    assert (found is not None) == (in_window > limit)


def test_staff_awarding_their_own_account() -> None:
    assert model.staff_self_award(1, 2, 3, "Uabc", "Uabc") is not None
    assert model.staff_self_award(1, 2, 3, "Uabc", "Uxyz") is None
    assert model.staff_self_award(1, 2, 3, None, None) is None


@given(awards=st.integers(0, 20), redeems=st.integers(0, 20))
def test_award_redeem_loop_counts_full_cycles(awards: int, redeems: int) -> None:
    found = model.award_redeem_loop(1, 2, awards, redeems, TH)
    assert (found is not None) == (min(awards, redeems) >= TH.loop_min_cycles)


def test_every_rule_has_a_reason_and_a_known_severity() -> None:
    for rule, (reason, severity) in model.RULES.items():
        f = model.finding(rule, {})
        assert (f.reason_code, f.severity) == (reason, severity)
        assert severity in {"low", "medium", "high"}
