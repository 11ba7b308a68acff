"""Heat map, journey, campaign ROI and tourist/resident split on a small fixture (2023 dates,
so no other test's activity falls into them)."""

from __future__ import annotations

import asyncpg
import httpx
import redis.asyncio as aioredis

from tests.conftest import World
from tests.integration.analytics.helpers import MUEANG, drain, emit

DAY = "2023-06-10"
PIMAI = (15.2200, 102.4930)  # Phimai district (3015)


async def test_heatmap_journey_roi_and_segments(
        http: httpx.AsyncClient, world: World, pool: asyncpg.Pool,
        redis: aioredis.Redis) -> None:
    admin = await world.admin("chamber")
    (a, _), (b, _), (c, _) = [await world.member() for _ in range(3)]
    await pool.execute("update members set segment = 'tourist' where id = any($1::bigint[])",
                       [a, b])

    async def checkin(member: int, hour: int, gf: int, where: tuple[float, float]) -> None:
        await emit(pool, "checkin.completed", member, mission_id=500 + gf, geofence_id=gf,
                   decision="inside", points_awarded=10, lat=where[0], lon=where[1],
                   at=f"{DAY}T{hour:02d}:00:00+07:00")

    # Event at fence 1 (Mueang); a and b go on to fence 2 (Phimai), c stays.
    for m in (a, b, c):
        await checkin(m, 10, 1, MUEANG)
    await checkin(a, 14, 2, PIMAI)
    await checkin(b, 15, 2, PIMAI)
    await emit(pool, "scan.purchase", a, merchant_id=1, amount_thb="250.50", points=25,
               campaign_id=31, at=f"{DAY}T16:00:00+07:00")
    await emit(pool, "scan.purchase", b, merchant_id=1, amount_thb="149.50", points=15,
               campaign_id=31, at=f"{DAY}T16:30:00+07:00")
    await drain(pool, redis)
    params = {"from": DAY, "to": DAY}

    heat = (await http.get("/admin/analytics/heatmap", headers=admin, params=params)).json()
    counts = {f["properties"]["code"]: f["properties"]["checkins"] for f in heat["features"]}
    assert len(heat["features"]) == 32
    assert counts["3001"] == 3 and counts["3015"] == 2
    assert sum(counts.values()) == 5
    assert heat["features"][0]["geometry"]["type"] in {"Polygon", "MultiPolygon"}

    j = (await http.get("/admin/analytics/journey", headers=admin,
                        params={**params, "geofence_id": 1})).json()
    assert (j["attendees"], j["went_on"], j["stayed"]) == (3, 2, 1)
    assert j["next"][0]["geofence_id"] == 2 and j["next"][0]["members"] == 2
    assert j["next"][0]["share"] == 0.6667

    roi = (await http.get("/admin/analytics/campaigns/roi", headers=admin,
                          params={**params, "campaign": "campaign:31",
                                  "point_value_thb": 0.5})).json()
    (item,) = roi["items"]
    assert (item["points_cost"], item["spend_thb"], item["scans"]) == (40, "400.00", 2)
    assert item["cost_thb"] == "20.00" and item["roi"] == 19.0

    seg = {s["segment"]: s for s in (await http.get(
        "/admin/analytics/segments", headers=admin, params=params)).json()["items"]}
    assert seg["tourist"]["active_members"] == 2 and seg["resident"]["active_members"] == 1
    assert seg["tourist"]["share_of_active"] == 0.6667
