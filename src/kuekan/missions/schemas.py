"""Request and response Structs of the missions, check-in and geofence APIs (the contract)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated, Literal

import msgspec

from kuekan.kit.bounds import Id, check_instant
from kuekan.missions.model import Audience, Kind, KindRules, Recurrence

Code = Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]
Title = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
Text = Annotated[str, msgspec.Meta(max_length=4000)]
Points = Annotated[int, msgspec.Meta(ge=0, le=1_000_000)]
Lat = Annotated[float, msgspec.Meta(ge=-90, le=90)]
Lon = Annotated[float, msgspec.Meta(ge=-180, le=180)]
Accuracy = Annotated[float, msgspec.Meta(ge=0, le=100_000)]


class MissionIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """POST /admin/missions. Fields a kind does not use must be left out (validated)."""

    code: Code
    kind: Kind
    title_th: Title
    title_en: Title
    points: Points
    funder_id: Id
    starts_at: dt.datetime
    ends_at: dt.datetime | None = None
    geofence_id: Id | None = None
    recurrence: Recurrence = "once"
    per_member_cap: Annotated[int, msgspec.Meta(ge=1, le=100_000)] | None = None
    budget_points: Annotated[int, msgspec.Meta(ge=0, le=10**12)] | None = None
    audience: Audience = "all"
    multiplier_eligible: bool = True
    venue_code_required: bool = False
    venue_code_rotate_s: Annotated[int, msgspec.Meta(ge=5, le=3600)] = 30
    venue_code_grace_s: Annotated[int, msgspec.Meta(ge=0, le=3600)] = 60
    description_th: Text = ""
    description_en: Text = ""
    min_spend_thb: Decimal | None = None
    merchant_ids: Annotated[list[Id], msgspec.Meta(max_length=500)] | None = None
    categories: Annotated[list[Code], msgspec.Meta(max_length=500)] | None = None
    collection_geofence_ids: Annotated[list[Id], msgspec.Meta(max_length=1000)] | None = None
    collection_required: Annotated[int, msgspec.Meta(ge=1, le=1000)] | None = None
    badge_code: Code | None = None
    reward_multiplier: Decimal | None = None
    reward_multiplier_days: Annotated[int, msgspec.Meta(ge=1, le=3650)] | None = None
    chain_steps: Annotated[list[Id], msgspec.Meta(max_length=50)] | None = None

    def __post_init__(self) -> None:
        check_instant("starts_at", self.starts_at)
        check_instant("ends_at", self.ends_at)


class MissionPatch(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, omit_defaults=True):
    """PATCH /admin/missions/{id}: any subset of MissionIn (not code/kind), plus status."""

    title_th: Title | msgspec.UnsetType = msgspec.UNSET
    title_en: Title | msgspec.UnsetType = msgspec.UNSET
    points: Points | msgspec.UnsetType = msgspec.UNSET
    funder_id: Id | msgspec.UnsetType = msgspec.UNSET
    starts_at: dt.datetime | msgspec.UnsetType = msgspec.UNSET
    ends_at: dt.datetime | msgspec.UnsetType | None = msgspec.UNSET
    geofence_id: Id | msgspec.UnsetType | None = msgspec.UNSET
    recurrence: Recurrence | msgspec.UnsetType = msgspec.UNSET
    per_member_cap: Annotated[int, msgspec.Meta(ge=1, le=100_000)] | msgspec.UnsetType | None = (
        msgspec.UNSET)
    budget_points: Annotated[int, msgspec.Meta(ge=0, le=10**12)] | msgspec.UnsetType | None = (
        msgspec.UNSET)
    audience: Audience | msgspec.UnsetType = msgspec.UNSET
    multiplier_eligible: bool | msgspec.UnsetType = msgspec.UNSET
    venue_code_required: bool | msgspec.UnsetType = msgspec.UNSET
    description_th: Text | msgspec.UnsetType = msgspec.UNSET
    description_en: Text | msgspec.UnsetType = msgspec.UNSET
    min_spend_thb: Decimal | msgspec.UnsetType | None = msgspec.UNSET
    merchant_ids: Annotated[list[Id], msgspec.Meta(max_length=500)] | msgspec.UnsetType | None = (
        msgspec.UNSET)
    categories: Annotated[list[Code], msgspec.Meta(max_length=500)] | msgspec.UnsetType | None = (
        msgspec.UNSET)
    collection_geofence_ids: (Annotated[list[Id], msgspec.Meta(max_length=1000)]
                              | msgspec.UnsetType | None) = msgspec.UNSET
    collection_required: Annotated[int, msgspec.Meta(ge=1, le=1000)] | msgspec.UnsetType | None = (
        msgspec.UNSET)
    chain_steps: Annotated[list[Id], msgspec.Meta(max_length=50)] | msgspec.UnsetType | None = (
        msgspec.UNSET)
    status: Literal["active", "disabled"] | msgspec.UnsetType = msgspec.UNSET

    def __post_init__(self) -> None:
        for name in ("starts_at", "ends_at"):
            value = getattr(self, name)
            check_instant(name, value if isinstance(value, dt.datetime) else None)


class MissionOut(KindRules, frozen=True, kw_only=True):
    """A mission as members and admins see it (never the venue secret)."""

    id: int
    code: str
    kind: str
    title_th: str
    title_en: str
    description_th: str
    description_en: str
    points: int
    funder_id: int
    geofence_id: int | None
    starts_at: dt.datetime
    ends_at: dt.datetime | None
    recurrence: str
    per_member_cap: int | None
    budget_points: int | None
    audience: str
    multiplier_eligible: bool
    venue_code_required: bool
    status: str
    distance_m: float | None = None
    budget_remaining_points: int | None = None


class MissionList(msgspec.Struct):
    items: list[MissionOut]
    next_cursor: str | None = None


class VenueCodeOut(msgspec.Struct):
    mission_id: int
    code: str
    rotate_s: int
    grace_s: int
    valid_from: dt.datetime
    rotates_at: dt.datetime


class StepOut(msgspec.Struct):
    mission_id: int
    completed: bool
    unlocked: bool


class ProgressOut(msgspec.Struct, kw_only=True):
    mission_id: int
    kind: str
    completions: int
    completed: bool
    completed_at: dt.datetime | None = None
    places_required: int | None = None
    places_collected: int | None = None
    collected_geofence_ids: list[int] | None = None
    steps: list[StepOut] | None = None
    badges: list[str] = msgspec.field(default_factory=list)


class CheckinIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """POST /checkins."""

    mission_id: Id
    lat: Lat
    lon: Lon
    accuracy_m: Accuracy
    venue_code: Annotated[str, msgspec.Meta(max_length=32)] | None = None
    device_id: Annotated[str, msgspec.Meta(max_length=128)] | None = None
