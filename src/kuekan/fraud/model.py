"""Pure fraud rules: facts in, a :class:`Finding` (rule, reason code, severity, evidence) out.

Thresholds come from settings (``fraud_*``); nothing here does I/O.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any, Literal

import msgspec

from kuekan.settings import Settings

Severity = Literal["low", "medium", "high"]
EARTH_RADIUS_KM = 6371.0088

# rule -> (reason code, severity). High holds the member, medium holds the points for review,
# low is an alert only.
RULES: dict[str, tuple[str, Severity]] = {
    "checkin_velocity": ("too_many_checkins", "medium"),
    "impossible_travel": ("travel_speed_exceeded", "high"),
    "device_many_accounts": ("device_shared_by_accounts", "high"),
    "geofence_burst": ("unexpected_geofence_burst", "low"),
    "accuracy_anomaly": ("location_too_perfect_or_repeated", "medium"),
    "merchant_award_burst": ("merchant_awards_above_baseline", "medium"),
    "staff_self_award": ("staff_awarded_own_account", "high"),
    "award_redeem_loop": ("award_redeem_loop_with_merchant", "high"),
    "blacklisted": ("blacklisted_party", "high"),
}


class Finding(msgspec.Struct, frozen=True, kw_only=True):
    rule: str
    reason_code: str
    severity: Severity
    evidence: dict[str, Any]
    member_id: int | None = None
    merchant_id: int | None = None
    device_id: str | None = None


def finding(rule: str, evidence: dict[str, Any], **who: Any) -> Finding:
    code, severity = RULES[rule]
    return Finding(rule=rule, reason_code=code, severity=severity, evidence=evidence, **who)


class Thresholds(msgspec.Struct, frozen=True, kw_only=True):
    velocity_window_s: int = 600
    velocity_max_checkins: int = 5
    travel_max_kmh: float = 150.0
    travel_min_km: float = 1.0
    device_max_accounts: int = 3
    burst_factor: float = 5.0
    burst_min_awards: int = 30
    burst_window_s: int = 3600
    burst_baseline_days: int = 7
    loop_min_cycles: int = 3
    accuracy_perfect_m: float = 1.0
    accuracy_repeat_count: int = 3
    geofence_burst_max: int = 200

    @classmethod
    def from_settings(cls, s: Settings) -> Thresholds:
        return cls(
            velocity_window_s=s.fraud_velocity_window_s,
            velocity_max_checkins=s.fraud_velocity_max_checkins,
            travel_max_kmh=s.fraud_travel_max_kmh, travel_min_km=s.fraud_travel_min_km,
            device_max_accounts=s.fraud_device_max_accounts,
            burst_factor=s.fraud_burst_factor, burst_min_awards=s.fraud_burst_min_awards,
            burst_window_s=s.fraud_burst_window_s,
            burst_baseline_days=s.fraud_burst_baseline_days,
            loop_min_cycles=s.fraud_loop_min_cycles,
            accuracy_perfect_m=s.fraud_accuracy_perfect_m,
            accuracy_repeat_count=s.fraud_accuracy_repeat_count,
            geofence_burst_max=s.fraud_geofence_burst_max,
        )


class Checkin(msgspec.Struct, frozen=True, kw_only=True):
    member_id: int
    at: dt.datetime
    lat: float | None = None
    lon: float | None = None
    accuracy_m: float | None = None
    device_id: str | None = None
    geofence_id: int | None = None
    is_event: bool = False


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(a)))


def checkin_velocity(cur: Checkin, in_window: int, th: Thresholds) -> Finding | None:
    """More than N check-ins by one member within the window (the current one included)."""
    if in_window <= th.velocity_max_checkins:
        return None
    return finding("checkin_velocity", {"checkins": in_window, "window_s": th.velocity_window_s,
                                        "max": th.velocity_max_checkins}, member_id=cur.member_id)


def impossible_travel(cur: Checkin, prev: Checkin | None, th: Thresholds) -> Finding | None:
    """Faster than travel_max_kmh between consecutive check-ins more than travel_min_km apart."""
    if prev is None or None in (cur.lat, cur.lon, prev.lat, prev.lon):
        return None
    assert cur.lat is not None
    assert cur.lon is not None
    assert prev.lat is not None
    assert prev.lon is not None
    km = haversine_km(prev.lat, prev.lon, cur.lat, cur.lon)
    if km <= th.travel_min_km:
        return None
    hours = max((cur.at - prev.at).total_seconds(), 1.0) / 3600
    kmh = km / hours
    if kmh <= th.travel_max_kmh:
        return None
    return finding("impossible_travel", {"km": round(km, 3), "seconds": round(hours * 3600, 1),
                                         "kmh": round(kmh, 1), "max_kmh": th.travel_max_kmh},
                   member_id=cur.member_id)


def device_many_accounts(cur: Checkin, accounts: int, th: Thresholds) -> Finding | None:
    """One device used by more than K distinct members."""
    if cur.device_id is None or accounts <= th.device_max_accounts:
        return None
    return finding("device_many_accounts", {"accounts": accounts, "max": th.device_max_accounts},
                   member_id=cur.member_id, device_id=cur.device_id)


def geofence_burst(cur: Checkin, in_window: int, th: Thresholds) -> Finding | None:
    """Many check-ins at one geofence in a minute — unless it is a scheduled event at its own
    geofence, where the burst is the point of the event."""
    if cur.is_event or cur.geofence_id is None or in_window != th.geofence_burst_max + 1:
        # Exactly max+1 fires once per burst instead of once per check-in above the max.
        return None
    return finding("geofence_burst", {"geofence_id": cur.geofence_id, "checkins": in_window,
                                      "max": th.geofence_burst_max}, member_id=cur.member_id)


def accuracy_anomaly(cur: Checkin, same_coords: int, th: Thresholds) -> Finding | None:
    """Suspiciously perfect accuracy, or the very same coordinates again and again (spoofing
    apps replay fixed points; real GPS jitters in the 5th-6th decimal)."""
    if cur.accuracy_m is not None and cur.accuracy_m < th.accuracy_perfect_m:
        return finding("accuracy_anomaly", {"accuracy_m": cur.accuracy_m, "kind": "perfect"},
                       member_id=cur.member_id)
    if same_coords >= th.accuracy_repeat_count:
        return finding("accuracy_anomaly", {"repeats": same_coords, "kind": "repeated",
                                            "lat": cur.lat, "lon": cur.lon},
                       member_id=cur.member_id)
    return None


def merchant_award_burst(merchant_id: int, in_window: int, baseline_total: int,
                         th: Thresholds) -> Finding | None:
    """Awards in the window above factor x the merchant's own average for such a window."""
    windows = th.burst_baseline_days * 86400 / th.burst_window_s
    baseline = baseline_total / windows
    limit = max(th.burst_min_awards, th.burst_factor * baseline)
    if in_window <= limit:
        return None
    return finding("merchant_award_burst", {"awards": in_window, "baseline": round(baseline, 2),
                                            "limit": round(limit, 2)}, merchant_id=merchant_id)


def staff_self_award(member_id: int, merchant_id: int | None, staff_id: int,
                     staff_sub: str | None, member_sub: str | None) -> Finding | None:
    """Merchant staff awarding the member account behind their own LINE identity."""
    if not staff_sub or staff_sub != member_sub:
        return None
    return finding("staff_self_award", {"staff_id": staff_id}, member_id=member_id,
                   merchant_id=merchant_id)


def award_redeem_loop(member_id: int, merchant_id: int, awards: int, redeems: int,
                      th: Thresholds) -> Finding | None:
    """Earning and spending at the same merchant, again and again, within the window."""
    cycles = min(awards, redeems)
    if cycles < th.loop_min_cycles:
        return None
    return finding("award_redeem_loop", {"awards": awards, "redeems": redeems,
                                         "min_cycles": th.loop_min_cycles},
                   member_id=member_id, merchant_id=merchant_id)
