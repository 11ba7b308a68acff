"""Request and response Structs of the admin geofence API (the contract)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

Code = Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]
Title = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
Text = Annotated[str, msgspec.Meta(max_length=4000)]
Lat = Annotated[float, msgspec.Meta(ge=-90, le=90)]
Lon = Annotated[float, msgspec.Meta(ge=-180, le=180)]
Accuracy = Annotated[float, msgspec.Meta(ge=0, le=100_000)]

FenceKind = Literal["district", "venue", "event", "custom"]
MaxAccuracy = Annotated[float, msgspec.Meta(gt=0, le=5000)]
EdgeTolerance = Annotated[float, msgspec.Meta(ge=0, le=1000)]


class GeofenceIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    name: Title
    geometry: dict[str, Any]
    max_accuracy_m: MaxAccuracy = 100.0
    edge_tolerance_m: EdgeTolerance = 30.0
    kind: FenceKind = "venue"
    code: Code | None = None
    description: Text = ""


class GeofencePatch(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, omit_defaults=True):
    name: Title | msgspec.UnsetType = msgspec.UNSET
    geometry: dict[str, Any] | msgspec.UnsetType = msgspec.UNSET
    max_accuracy_m: MaxAccuracy | msgspec.UnsetType = msgspec.UNSET
    edge_tolerance_m: EdgeTolerance | msgspec.UnsetType = msgspec.UNSET
    kind: FenceKind | msgspec.UnsetType = msgspec.UNSET
    status: Literal["active", "disabled"] | msgspec.UnsetType = msgspec.UNSET
    description: Text | msgspec.UnsetType = msgspec.UNSET


class GeofenceOut(msgspec.Struct, kw_only=True):
    id: int
    code: str | None
    name: str
    kind: str
    status: str
    max_accuracy_m: float
    edge_tolerance_m: float
    description: str
    area_m2: float | None = None
    centroid: dict[str, float] | None = None
    geometry: dict[str, Any] | None = None


class GeofenceList(msgspec.Struct):
    items: list[GeofenceOut]
    next_cursor: str | None = None


class ImportOut(msgspec.Struct):
    items: list[GeofenceOut]
    warnings: list[str]
    dry_run: bool = False


class FenceTestIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    lat: Lat
    lon: Lon
    accuracy_m: Accuracy


class FenceTestOut(msgspec.Struct):
    fence_id: int
    decision: str
    distance_to_edge_m: float
    accepted: bool
    risk_flag: bool
