"""Real Korat boundaries (DOPA) for geofence tests, and small geometry helpers.

The data is the package's own (``kuekan/data/korat``, see its SOURCE.md). Tests fail, never skip,
when it is missing: a geofence test on made-up shapes only would not catch real-world breakage.
"""

from __future__ import annotations

import functools
import json
import math
from pathlib import Path
from typing import Any

from shapely.geometry import MultiPolygon, Polygon, shape

from kuekan.geo.model import Fence, LocalFrame
from kuekan.kit.resources import korat_data_dir

# Landmarks far from any district border: (name, lat, lon, district code).
THAO_SURANARI = ("Thao Suranari Monument", 14.9751, 102.1004, "3001")
PHIMAI_PARK = ("Phimai Historical Park", 15.2216, 102.4937, "3015")
PAK_CHONG_TOWN = ("Pak Chong town", 14.7056, 101.4164, "3021")
LANDMARKS = (THAO_SURANARI, PHIMAI_PARK, PAK_CHONG_TOWN)


def korat_dir() -> Path:
    """The package's own copy of the boundaries."""
    return korat_data_dir()


@functools.cache
def features(kind: str) -> tuple[dict[str, Any], ...]:
    """Features of ``districts`` or ``subdistricts``.geojson, read once per test run."""
    with (korat_dir() / f"{kind}.geojson").open(encoding="utf-8") as handle:
        return tuple(json.load(handle)["features"])


def district(code: str) -> dict[str, Any]:
    return next(f for f in features("districts") if f["properties"]["code"] == code)


def subdistrict(admin_code: str) -> dict[str, Any]:
    return next(f for f in features("subdistricts") if f["properties"]["Admin_code"] == admin_code)


def polygonal(feature: dict[str, Any]) -> MultiPolygon:
    geometry = shape(feature["geometry"])
    return geometry if isinstance(geometry, MultiPolygon) else MultiPolygon([geometry])


def fence_of(feature: dict[str, Any], fence_id: int = 1, max_accuracy_m: float = 50.0,
             edge_tolerance_m: float = 20.0) -> Fence:
    props = feature["properties"]
    name = props.get("name_en") or props.get("T_Name_T") or "fence"
    return Fence(fence_id, name, polygonal(feature), max_accuracy_m, edge_tolerance_m)


def offset(lat: float, lon: float, east_m: float, north_m: float) -> tuple[float, float]:
    """The (lat, lon) ``east_m``/``north_m`` metres away, via a frame centred on the point."""
    frame = LocalFrame.at(lon, lat)
    new_lon, new_lat = frame.lonlat(east_m, north_m)
    return new_lat, new_lon


def square(lat: float, lon: float, half_side_m: float) -> Polygon:
    """An axis-aligned square of 2 * half_side_m metres around a point, in lon/lat."""
    corners = [(-1, -1), (1, -1), (1, 1), (-1, 1), (-1, -1)]
    points = [offset(lat, lon, sx * half_side_m, sy * half_side_m) for sx, sy in corners]
    return Polygon([(p_lon, p_lat) for p_lat, p_lon in points])


def haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance on the mean-radius sphere (R = 6 371 008.8 m)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6_371_008.8 * math.asin(math.sqrt(a))


def vincenty_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Geodesic distance on the WGS84 ellipsoid (Vincenty's inverse formula, ~0.1 mm)."""
    a, f = 6_378_137.0, 1 / 298.257_223_563
    b = a * (1 - f)
    u1 = math.atan((1 - f) * math.tan(math.radians(lat1)))
    u2 = math.atan((1 - f) * math.tan(math.radians(lat2)))
    big_l = math.radians(lon2 - lon1)
    lam = big_l
    for _ in range(200):
        sin_lam, cos_lam = math.sin(lam), math.cos(lam)
        sin_sigma = math.hypot(math.cos(u2) * sin_lam,
                               math.cos(u1) * math.sin(u2) - math.sin(u1) * math.cos(u2) * cos_lam)
        if sin_sigma == 0:
            return 0.0
        cos_sigma = math.sin(u1) * math.sin(u2) + math.cos(u1) * math.cos(u2) * cos_lam
        sigma = math.atan2(sin_sigma, cos_sigma)
        sin_alpha = math.cos(u1) * math.cos(u2) * sin_lam / sin_sigma
        cos2_alpha = 1 - sin_alpha**2
        cos_2sm = cos_sigma - 2 * math.sin(u1) * math.sin(u2) / cos2_alpha
        c = f / 16 * cos2_alpha * (4 + f * (4 - 3 * cos2_alpha))
        previous = lam
        lam = big_l + (1 - c) * f * sin_alpha * (
            sigma + c * sin_sigma * (cos_2sm + c * cos_sigma * (-1 + 2 * cos_2sm**2)))
        if abs(lam - previous) < 1e-12:
            break
    u_sq = cos2_alpha * (a**2 - b**2) / b**2
    big_a = 1 + u_sq / 16384 * (4096 + u_sq * (-768 + u_sq * (320 - 175 * u_sq)))
    big_b = u_sq / 1024 * (256 + u_sq * (-128 + u_sq * (74 - 47 * u_sq)))
    delta_sigma = big_b * sin_sigma * (cos_2sm + big_b / 4 * (
        cos_sigma * (-1 + 2 * cos_2sm**2)
        - big_b / 6 * cos_2sm * (-3 + 4 * sin_sigma**2) * (-3 + 4 * cos_2sm**2)))
    return b * big_a * (sigma - delta_sigma)
