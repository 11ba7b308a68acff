"""The per-process catalogue: a fence change made through one API process reaches another one
through the Redis nudge, well before the periodic version check would."""

from __future__ import annotations

import asyncio
import time

import asyncpg
import httpx

from tests.conftest import World, idem, start_server, stop_server
from tests.integration.missions.helpers import box, create_fence, create_mission

NUDGE_MAX_S = 1.0


async def test_fence_update_reaches_another_process_through_the_nudge(
        http: httpx.AsyncClient, world: World, api_url: str) -> None:
    admin = await world.admin()
    funder = await world.funder()
    fence = await create_fence(http, admin, "moving fence", box(14.90, 102.00, 0.001))
    mission = await create_mission(http, admin, funder, geofence_id=fence["id"],
                                   recurrence="daily")
    proc, other = start_server()
    try:
        async with httpx.AsyncClient(base_url=f"{other}/api/v1", timeout=30) as b:
            _, member = await world.member()
            here = (14.95, 102.05)
            body = {"mission_id": mission["id"], "lat": here[0], "lon": here[1],
                    "accuracy_m": 5}
            r = await b.post("/checkins", headers=member | idem(), json=body)
            assert r.status_code == 403 and r.json()["code"] == "outside_geofence"
            # Move the fence onto the point and away again, three times: process B must follow
            # each move within NUDGE_MAX_S. The 5 s poll alone would make that three times in a
            # row with a probability under 1 %.
            for move in range(3):
                inside = move % 2 == 0
                centre = here if inside else (14.90, 102.00)
                r = await http.patch(f"/admin/geofences/{fence['id']}", headers=admin,
                                     json={"geometry": box(*centre, 0.001)})
                assert r.status_code == 200
                started = time.monotonic()
                while True:
                    got = await b.get("/missions", headers=member,
                                      params={"lat": here[0], "lon": here[1], "limit": 200})
                    dist = next(m["distance_m"] for m in got.json()["items"]
                                if m["id"] == mission["id"])
                    if (dist == 0.0) == inside or time.monotonic() - started > NUDGE_MAX_S:
                        break
                    await asyncio.sleep(0.02)
                assert (dist == 0.0) == inside, (move, dist)
                assert time.monotonic() - started < NUDGE_MAX_S
            r = await b.post("/checkins", headers=member | idem(), json=body)
            assert r.status_code == 201, r.text
    finally:
        stop_server(proc)


async def test_recurrence_periods_are_bangkok_days_and_monday_weeks(pool: asyncpg.Pool) -> None:
    rows = await pool.fetchrow(
        "select kk_mission_period('once', '2026-11-22') o, kk_mission_period('daily',"
        " '2026-11-22') d, kk_mission_period('weekly', '2026-11-22') w1,"
        " kk_mission_period('weekly', '2026-11-23') w2")
    assert rows is not None
    assert (rows["o"], rows["d"], rows["w1"], rows["w2"]) == (
        "once", "2026-11-22", "w2026-11-16", "w2026-11-23")


async def test_vip_tier_multiplier_applies_only_when_the_mission_allows_it(
        http: httpx.AsyncClient, world: World, pool: asyncpg.Pool) -> None:
    admin = await world.admin()
    funder = await world.funder()
    fence = await create_fence(http, admin, "vip venue", box(14.80, 102.20, 0.001))
    eligible = await create_mission(http, admin, funder, geofence_id=fence["id"], points=20)
    plain = await create_mission(http, admin, funder, geofence_id=fence["id"], points=20,
                                 multiplier_eligible=False)
    member_id, member = await world.member()
    await pool.execute("update members set tier = 'vip' where id = $1", member_id)
    at = {"lat": 14.80, "lon": 102.20, "accuracy_m": 5}
    r1 = await http.post("/checkins", headers=member | idem(),
                         json={"mission_id": eligible["id"], **at})
    r2 = await http.post("/checkins", headers=member | idem(),
                         json={"mission_id": plain["id"], **at})
    assert r1.json()["points_awarded"] == 30 and r2.json()["points_awarded"] == 20
    assert r2.json()["balance"] == 50
