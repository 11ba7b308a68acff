"""Geofence decisions on the real Korat boundaries, through the admin API and check-ins."""

from __future__ import annotations

import math

import httpx
import pytest
import shapely
from shapely.geometry import LineString, MultiLineString, Point

from kuekan.geo.model import metres_per_degree
from tests.conftest import World, idem
from tests.integration.missions.helpers import (
    box,
    create_fence,
    create_mission,
    district_shape,
    geojson,
    inside_point,
)

LANDMARKS = [("3001", 14.9751, 102.1004), ("3015", 15.2216, 102.4937), ("3021", 14.7056, 101.4164)]


async def _test(http: httpx.AsyncClient, admin: dict[str, str], fence_id: int, lat: float,
                lon: float, accuracy_m: float) -> dict[str, object]:
    r = await http.post(f"/admin/geofences/{fence_id}/test", headers=admin,
                        json={"lat": lat, "lon": lon, "accuracy_m": accuracy_m})
    assert r.status_code == 200, r.text
    out: dict[str, object] = r.json()
    return out


@pytest.mark.parametrize(("code", "lat", "lon"), LANDMARKS)
async def test_landmark_is_inside_its_real_district_and_outside_another(
        http: httpx.AsyncClient, world: World, code: str, lat: float, lon: float) -> None:
    admin = await world.admin()
    own = await create_fence(http, admin, f"district {code}", geojson(district_shape(code)))
    other_code = "3032" if code != "3032" else "3001"
    other = await create_fence(http, admin, "other", geojson(district_shape(other_code)))
    res = await _test(http, admin, own["id"], lat, lon, 10)
    assert res["decision"] == "inside" and res["accepted"] is True
    assert float(res["distance_to_edge_m"]) > 500  # type: ignore[arg-type]
    far = await _test(http, admin, other["id"], lat, lon, 10)
    assert far["decision"] == "outside" and far["accepted"] is False


def _border_probe(a: str, b: str) -> tuple[float, float, float, float]:
    """Points 5 m on either side of the shared border of districts a and b: (a_lat, a_lon,
    b_lat, b_lon)."""
    shared = district_shape(a).boundary.intersection(district_shape(b).boundary)
    lines = shapely.get_parts(shapely.line_merge(shapely.union_all(
        [g for g in shapely.get_parts(shared) if isinstance(g, LineString | MultiLineString)])))
    line = max((g for g in lines if isinstance(g, LineString)), key=lambda g: g.length)
    mid = line.interpolate(0.5, normalized=True)
    ahead = line.interpolate(min(line.length, line.project(mid) + 1e-4))
    m_lon, m_lat = metres_per_degree(mid.y)
    dx, dy = (ahead.x - mid.x) * m_lon, (ahead.y - mid.y) * m_lat
    norm = math.hypot(dx, dy)
    nx, ny = -dy / norm, dx / norm  # unit normal in metres
    p1 = (mid.y + 5 * ny / m_lat, mid.x + 5 * nx / m_lon)
    p2 = (mid.y - 5 * ny / m_lat, mid.x - 5 * nx / m_lon)
    if district_shape(a).covers(Point(p1[1], p1[0])):
        return (*p1, *p2)
    return (*p2, *p1)


async def test_points_5_m_either_side_of_a_shared_district_border(
        http: httpx.AsyncClient, world: World) -> None:
    admin = await world.admin()
    a = await create_fence(http, admin, "Mueang", geojson(district_shape("3001")),
                           edge_tolerance_m=30, max_accuracy_m=100)
    b = await create_fence(http, admin, "Chaleom Phra Kiat", geojson(district_shape("3032")),
                           edge_tolerance_m=30, max_accuracy_m=100)
    a_lat, a_lon, b_lat, b_lon = _border_probe("3001", "3032")
    assert (await _test(http, admin, a["id"], a_lat, a_lon, 3))["decision"] == "inside"
    assert (await _test(http, admin, b["id"], b_lat, b_lon, 3))["decision"] == "inside"
    # 5 m outside A: accuracy 3 m cannot reach the edge; 10 m accuracy can (edge, risk flag).
    out = await _test(http, admin, a["id"], b_lat, b_lon, 3)
    assert out["decision"] == "outside"
    assert 4.0 < float(out["distance_to_edge_m"]) < 6.0  # type: ignore[arg-type]
    edge = await _test(http, admin, a["id"], b_lat, b_lon, 10)
    assert edge["decision"] == "edge" and edge["risk_flag"] is True and edge["accepted"] is True


async def test_multipolygon_hole_and_accuracy_limits(http: httpx.AsyncClient,
                                                     world: World) -> None:
    admin = await world.admin()
    lat, lon = 14.95, 102.05
    outer = box(lat, lon, 0.01)["coordinates"][0]
    hole = box(lat, lon, 0.002)["coordinates"][0][::-1]
    second = box(lat + 0.05, lon + 0.05, 0.003)["coordinates"]
    fence = await create_fence(http, admin, "multi with hole", {
        "type": "MultiPolygon", "coordinates": [[outer, hole], second]}, max_accuracy_m=50,
        edge_tolerance_m=20)
    fid = fence["id"]
    assert (await _test(http, admin, fid, lat + 0.006, lon, 5))["decision"] == "inside"
    assert (await _test(http, admin, fid, lat + 0.05, lon + 0.05, 5))["decision"] == "inside"
    in_hole = await _test(http, admin, fid, lat, lon, 5)
    assert in_hole["decision"] == "outside"
    assert 200 < float(in_hole["distance_to_edge_m"]) < 240  # type: ignore[arg-type]
    assert (await _test(http, admin, fid, lat + 0.006, lon, 50))["decision"] == "inside"
    assert (await _test(http, admin, fid, lat + 0.006, lon, 50.5))["decision"] == "inaccurate"


async def test_checkin_uses_a_new_fence_at_once_and_a_disabled_fence_is_not_live(
        http: httpx.AsyncClient, world: World) -> None:
    admin = await world.admin()
    funder = await world.funder()
    _, member = await world.member()
    lat, lon = inside_point("3015")
    fence = await create_fence(http, admin, "Phimai", geojson(district_shape("3015")))
    mission = await create_mission(http, admin, funder, geofence_id=fence["id"], points=7)
    body = {"mission_id": mission["id"], "lat": lat, "lon": lon, "accuracy_m": 10}
    r = await http.post("/checkins", headers=member | idem(), json=body)
    assert r.status_code == 201, r.text
    assert r.json()["decision"] == "inside" and r.json()["points_awarded"] == 7
    # Far away (Pak Chong) is refused as outside.
    far = await http.post("/checkins", headers=member | idem(),
                          json={**body, "lat": 14.7056, "lon": 101.4164})
    assert far.status_code == 403 and far.json()["code"] == "outside_geofence"
    r = await http.delete(f"/admin/geofences/{fence['id']}", headers=admin)
    assert r.status_code == 200 and r.json()["status"] == "disabled"
    _, other = await world.member()
    off = await http.post("/checkins", headers=other | idem(), json=body)
    assert off.status_code == 409 and off.json()["code"] == "mission_not_active"
    # The test endpoint still answers for a disabled fence (try before going live).
    assert (await _test(http, admin, fence["id"], lat, lon, 10))["decision"] == "inside"


async def test_invalid_geometry_is_refused_or_repaired(http: httpx.AsyncClient,
                                                       world: World) -> None:
    admin = await world.admin()
    r = await http.post("/admin/geofences", headers=admin, json={
        "name": "open ring",
        "geometry": {"type": "Polygon", "coordinates": [[[102, 15], [102.1, 15], [102.1, 15.1]]]}})
    assert r.status_code == 422
    bowtie = {"type": "Polygon", "coordinates": [[[102, 15], [102.01, 15.01], [102.01, 15],
                                                  [102, 15.01], [102, 15]]]}
    fence = await create_fence(http, admin, "bowtie", bowtie)
    assert fence["geometry"]["type"] == "MultiPolygon"
    assert len(fence["geometry"]["coordinates"]) == 2
