"""Analytics request and response bodies (the public contract; API.md lists the dashboard)."""

from __future__ import annotations

from typing import Literal

import msgspec


class FunderLiability(msgspec.Struct):
    funder_id: int
    points: int


class TopMission(msgspec.Struct):
    mission_id: int
    completions: int


class TopMerchant(msgspec.Struct):
    merchant_id: int
    transactions: int


class DashboardOut(msgspec.Struct):
    """GET /admin/dashboard/realtime: today (Asia/Bangkok) as of the last consumer run.

    ``redemption_rate`` is points redeemed (coupons used) today / points awarded today;
    ``peak_hour`` is the Asia/Bangkok hour (0-23) with most member activity today.
    """

    day: str
    active_members_now: int
    active_members_today: int
    missions_completed_today: int
    points_awarded_today: int
    redemptions_today: int
    coupons_used_today: int
    points_redeemed_today: int
    points_in_circulation: int
    liability_by_funder: list[FunderLiability]
    top_missions: list[TopMission]
    top_merchants: list[TopMerchant]
    redemption_rate: float
    peak_hour: int | None
    peak_hour_events: int


class EngagementOut(msgspec.Struct):
    day: str
    dau: int
    mau: int
    dau_mau: float
    return_rate_30d: float
    return_base_members: int
    returned_members: int
    previous_window: list[str]
    current_window: list[str]


class CohortOut(msgspec.Struct):
    cohort_week: str
    size: int
    active: list[int]
    retention: list[float | None]


class CohortsOut(msgspec.Struct):
    weeks: int
    items: list[CohortOut]


ExportFormat = Literal["csv", "xlsx"]
ExportReport = Literal["daily", "members", "campaigns", "districts", "segments"]
HeatLevel = Literal["district", "geofence"]
