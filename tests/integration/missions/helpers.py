"""Shared helpers for the missions tests: real Korat shapes, fences and missions via the API."""

from __future__ import annotations

import datetime as dt
import functools
import json
import uuid
from typing import Any

import httpx
from shapely.geometry import MultiPolygon, Polygon, mapping, shape

from kuekan.kit.data import korat_data_dir


@functools.cache
def districts() -> dict[str, dict[str, Any]]:
    """code -> GeoJSON feature of the 32 real DOPA districts."""
    data = json.loads((korat_data_dir() / "districts.geojson").read_text(encoding="utf-8"))
    return {f["properties"]["code"]: f for f in data["features"]}


def district_shape(code: str) -> Polygon | MultiPolygon:
    geom = shape(districts()[code]["geometry"])
    assert isinstance(geom, Polygon | MultiPolygon)
    return geom


def inside_point(code: str) -> tuple[float, float]:
    """(lat, lon) of a point well inside a district."""
    p = district_shape(code).representative_point()
    return p.y, p.x


def geojson(geom: Polygon | MultiPolygon) -> dict[str, Any]:
    out: dict[str, Any] = json.loads(json.dumps(mapping(geom)))
    return out


async def create_fence(http: httpx.AsyncClient, admin: dict[str, str], name: str,
                       geometry: dict[str, Any], **kw: Any) -> dict[str, Any]:
    r = await http.post("/admin/geofences", headers=admin,
                        json={"name": name, "geometry": geometry, **kw})
    assert r.status_code == 201, r.text
    out: dict[str, Any] = r.json()
    return out


async def create_mission(http: httpx.AsyncClient, admin: dict[str, str], funder: int,
                         **kw: Any) -> dict[str, Any]:
    body = {"code": f"T{uuid.uuid4().hex[:12]}", "kind": "checkin", "title_th": "ทดสอบ",
            "title_en": "Test", "points": 10, "funder_id": funder,
            "starts_at": (dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)).isoformat(),
            "ends_at": (dt.datetime.now(dt.UTC) + dt.timedelta(days=1)).isoformat(), **kw}
    r = await http.post("/admin/missions", headers=admin, json=body)
    assert r.status_code == 201, r.text
    out: dict[str, Any] = r.json()
    return out


def box(lat: float, lon: float, half_deg: float = 0.002) -> dict[str, Any]:
    return {"type": "Polygon", "coordinates": [[
        [lon - half_deg, lat - half_deg], [lon + half_deg, lat - half_deg],
        [lon + half_deg, lat + half_deg], [lon - half_deg, lat + half_deg],
        [lon - half_deg, lat - half_deg]]]}
