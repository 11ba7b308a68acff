"""Demo missions and geofences at real Korat places (registered in kuekan.seed.SEED_HOOKS).

Idempotent: fences are keyed by code (``district:3001``, ``venue:...``, ``event:...``), missions
by their code; a second run creates nothing.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from decimal import Decimal
from typing import Any

import asyncpg
from shapely.geometry import MultiPolygon, Polygon

from kuekan.geo import repository as geo_repo
from kuekan.geo.model import metres_per_degree, parse_geojson_geometry
from kuekan.geo.service import geometry_json
from kuekan.kit.data import korat_data_dir
from kuekan.missions import model
from kuekan.missions import repository as repo
from kuekan.missions.model import MissionSpec
from kuekan.settings import Settings

# (code, Thai name, English name, lat, lon, radius m, district code) — real coordinates.
ATTRACTIONS = [
    ("THAO_SURANARI", "อนุสาวรีย์ท้าวสุรนารี", "Thao Suranari Monument", 14.9751, 102.1004, 120, "3001"),
    ("PHIMAI_PARK", "อุทยานประวัติศาสตร์พิมาย", "Phimai Historical Park", 15.2216, 102.4937, 300,
     "3015"),
    ("WAT_SALA_LOI", "วัดศาลาลอย", "Wat Sala Loi", 14.9868, 102.1192, 120, "3001"),
    ("FOSSIL_MUSEUM", "พิพิธภัณฑ์ไม้กลายเป็นหิน (โคราชจีโอพาร์ค)", "Khorat Fossil Museum", 14.8780,
     102.0280, 200, "3001"),
]
# Korat Creative Splash (Songkran) around the monument and the old city moat.
SPLASH = ("CREATIVE_SPLASH", 14.9745, 102.0990, 450)
PASSPORT_CODE = "KORAT_32_PASSPORT"


def disc(lat: float, lon: float, radius_m: float, sides: int = 32) -> MultiPolygon:
    """A regular polygon of ``radius_m`` around a point (a small venue fence)."""
    m_lon, m_lat = metres_per_degree(lat)
    ring = [(lon + radius_m * math.cos(2 * math.pi * i / sides) / m_lon,
             lat + radius_m * math.sin(2 * math.pi * i / sides) / m_lat) for i in range(sides)]
    return MultiPolygon([Polygon([*ring, ring[0]])])


async def _mission(conn: asyncpg.Connection, spec: MissionSpec, slices: int) -> int:
    existing = await conn.fetchval("select id from missions where code = $1", spec.code)
    if existing is not None:
        return int(existing)
    model.validate_spec(spec)
    return (await repo.insert(conn, spec, model.new_venue_secret(), slices)).id


async def seed_missions(conn: asyncpg.Connection, settings: Settings,
                        summary: dict[str, Any]) -> dict[str, Any]:
    pao = summary["funders"]["PAO"]
    slices = settings.budget_slices
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    data = json.loads((korat_data_dir() / "districts.geojson").read_text(encoding="utf-8"))
    district_fences: dict[str, int] = {}
    names: dict[str, tuple[str, str]] = {}
    for feat in data["features"]:
        props = feat["properties"]
        names[props["code"]] = (props["name_th"], props["name_en"])
        district_fences[props["code"]] = await geo_repo.upsert_by_code(
            conn, name=f"อำเภอ{props['name_th']} ({props['name_en']})", kind="district",
            code=f"district:{props['code']}",
            geometry=geometry_json(parse_geojson_geometry(feat["geometry"])),
            max_accuracy_m=200.0, edge_tolerance_m=50.0)
    missions: dict[str, int] = {}
    for code, name_th, name_en, lat, lon, radius, _district in ATTRACTIONS:
        fid = await geo_repo.upsert_by_code(
            conn, name=f"{name_th} ({name_en})", kind="venue", code=f"venue:{code}",
            geometry=geometry_json(disc(lat, lon, radius)), max_accuracy_m=100.0,
            edge_tolerance_m=30.0)
        missions[code] = await _mission(conn, MissionSpec(
            code=code, kind="checkin", title_th=f"เช็คอิน {name_th}",
            title_en=f"Check in at {name_en}",
            points=20, funder_id=pao, starts_at=start, geofence_id=fid, recurrence="daily",
            budget_points=2_000_000), slices)
    for dcode, fid in sorted(district_fences.items()):
        missions[f"DISTRICT_{dcode}"] = await _mission(conn, MissionSpec(
            code=f"DISTRICT_{dcode}", kind="checkin", title_th=f"เยือนอำเภอ{names[dcode][0]}",
            title_en=f"Visit {names[dcode][1]} district", points=10, funder_id=pao, starts_at=start,
            geofence_id=fid, recurrence="once", budget_points=1_000_000), slices)
    missions[PASSPORT_CODE] = await _mission(conn, MissionSpec(
        code=PASSPORT_CODE, kind="collection", title_th="เที่ยวโคราช 32 อำเภอ",
        title_en="Korat 32 Districts Passport", points=500, funder_id=pao, starts_at=start,
        collection_geofence_ids=sorted(district_fences.values()), collection_required=10,
        badge_code="korat-passport-10", reward_multiplier=Decimal("2"),
        reward_multiplier_days=30, budget_points=5_000_000, multiplier_eligible=False), slices)
    code, lat, lon, radius = SPLASH
    splash_fence = await geo_repo.upsert_by_code(
        conn, name="Korat Creative Splash (ลานย่าโม)", kind="event", code=f"event:{code}",
        geometry=geometry_json(disc(lat, lon, radius)), max_accuracy_m=150.0,
        edge_tolerance_m=30.0)
    missions[code] = await _mission(conn, MissionSpec(
        code=code, kind="event", title_th="โคราชครีเอทีฟสแปลช", title_en="Korat Creative Splash",
        points=50, funder_id=pao, starts_at=start,
        ends_at=dt.datetime(2027, 12, 31, tzinfo=dt.UTC), geofence_id=splash_fence,
        recurrence="daily", budget_points=10_000_000), slices)
    return {"geofences": len(district_fences) + len(ATTRACTIONS) + 1, "missions": missions}
