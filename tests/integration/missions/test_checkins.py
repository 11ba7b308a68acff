"""Check-ins on real storage through HTTP: floods, duplicates, refusals, collections, chains."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
import uuid
from decimal import Decimal
from typing import Any

import asyncpg
import httpx
import pytest

from kuekan.missions.hooks import record_purchase
from kuekan.settings import Settings
from tests.conftest import World, assert_ledger_ok, idem
from tests.integration.missions.helpers import (
    box,
    create_fence,
    create_mission,
    district_shape,
    geojson,
    inside_point,
)

SPLASH_LAT, SPLASH_LON = 14.9745, 102.0990
RETRIES_5XX = 5


async def _event(http: httpx.AsyncClient, world: World, **kw: Any) -> tuple[dict[str, Any], int]:
    admin = await world.admin()
    funder = await world.funder()
    fence = await create_fence(http, admin, "Creative Splash", box(SPLASH_LAT, SPLASH_LON, 0.004),
                               kind="event")
    mission = await create_mission(http, admin, funder, kind="event", geofence_id=fence["id"], **kw)
    return mission, funder


def _at(mission: dict[str, Any], **kw: Any) -> dict[str, Any]:
    return {"mission_id": mission["id"], "lat": SPLASH_LAT, "lon": SPLASH_LON, "accuracy_m": 8,
            **kw}


async def test_1000_concurrent_checkins_at_one_event_fence_award_once_within_budget(
        http: httpx.AsyncClient, world: World, pool: asyncpg.Pool) -> None:
    budget = 10 * 700
    mission, _ = await _event(http, world, points=10, budget_points=budget, recurrence="daily")
    members = await world.members(1000)
    started = time.perf_counter()
    sem = asyncio.Semaphore(250)

    async def one(headers: dict[str, str]) -> httpx.Response:
        # Like a real client: a 5xx (PostgreSQL out of connections on a shared test box, a
        # serialization retry budget spent) is retried with the same key, which must never
        # award twice.
        key, body = idem(), _at(mission, device_id=uuid.uuid4().hex)
        async with sem:
            for _ in range(RETRIES_5XX):
                r = await http.post("/checkins", headers=headers | key, json=body)
                if r.status_code < 500:
                    return r
                await asyncio.sleep(0.2)
            return r

    responses = await asyncio.gather(*(one(h) for _, h in members))
    elapsed = time.perf_counter() - started
    codes = [r.status_code for r in responses]
    ok = [r for r in responses if r.status_code == 201]
    refused = [r.json()["code"] for r in responses if r.status_code != 201]
    assert set(refused) <= {"mission_budget_exhausted"}, set(refused)
    assert len(ok) == 700, codes.count(201)
    total = await pool.fetchval(
        "select coalesce(sum(amount), 0) from transfers where (ref->>'mission_id')::bigint = $1",
        mission["id"])
    assert total == budget
    per_member = await pool.fetch(
        "select member_id, count(*) n from transfers where (ref->>'mission_id')::bigint = $1"
        " group by member_id having count(*) > 1", mission["id"])
    assert per_member == []
    assert await pool.fetchval("select kk_budget_remaining($1)", f"mission:{mission['id']}") == 0
    assert await pool.fetchval(
        "select count(*) from checkins where mission_id = $1 and status = 'accepted'",
        mission["id"]) == 700
    assert await pool.fetchval("select count(*) from outbox where topic = 'checkin.completed'"
                               " and (payload->>'mission_id')::bigint = $1", mission["id"]) == 700
    assert elapsed < 60
    await assert_ledger_ok(pool)


async def test_50_concurrent_duplicates_by_one_member_award_once(
        http: httpx.AsyncClient, world: World, pool: asyncpg.Pool) -> None:
    mission, _ = await _event(http, world, points=15, recurrence="daily")
    member_id, member = await world.member()
    same = idem()
    reqs = [http.post("/checkins", headers=member | (same if i % 2 else idem()),
                      json=_at(mission)) for i in range(50)]
    responses = await asyncio.gather(*reqs)
    created = [r for r in responses if r.status_code == 201]
    assert created, [r.text for r in responses][:3]
    assert len({r.json()["transfer_id"] for r in created}) == 1
    for r in responses:
        if r.status_code != 201:
            assert r.json()["code"] in {"already_completed", "idempotency_key_in_flight"}, r.text
    n = await pool.fetchval("select count(*) from transfers where member_id = $1", member_id)
    assert n == 1
    assert await pool.fetchval("select posted from member_balances where member_id = $1",
                               member_id) == 15
    again = await http.post("/checkins", headers=member | same, json=_at(mission))
    assert again.headers.get("idempotent-replayed") == "true"
    other = await http.post("/checkins", headers=member | same, json=_at(mission, accuracy_m=9))
    assert other.status_code == 422 and other.json()["code"] == "idempotency_key_reused"


async def _refused(http: httpx.AsyncClient, headers: dict[str, str], body: dict[str, Any],
                   status: int, code: str) -> None:
    r = await http.post("/checkins", headers=headers | idem(), json=body)
    assert r.status_code == status, r.text
    problem = r.json()
    assert problem["code"] == code and problem["message_th"] and problem["message_en"]
    assert r.headers["content-type"].startswith("application/problem+json")


async def test_a_refusal_raised_in_sql_carries_the_missions_own_message(
        http: httpx.AsyncClient, world: World) -> None:
    # already_completed is decided by kk_mission_take (SQL), which knows only the code: the
    # message must still be the mission's, not a generic "Already completed".
    mission, _ = await _event(http, world, points=10, recurrence="once")
    _, member = await world.member()
    r = await http.post("/checkins", headers=member | idem(), json=_at(mission))
    assert r.status_code == 201, r.text
    again = await http.post("/checkins", headers=member | idem(), json=_at(mission))
    assert again.status_code == 409, again.text
    problem = again.json()
    assert problem["code"] == "already_completed"
    assert problem["message_en"] == "You have already completed this mission for this period"
    assert problem["message_th"] == "คุณทำภารกิจนี้ครบแล้วในรอบนี้"
    assert problem["title"] == problem["message_en"]


async def test_every_refusal_code_is_reachable(http: httpx.AsyncClient, world: World,
                                               pool: asyncpg.Pool, settings: Settings) -> None:
    admin = await world.admin()
    mission, funder = await _event(http, world, points=10, recurrence="once")
    member_id, member = await world.member()
    await _refused(http, member, _at(mission, lat=14.90), 403, "outside_geofence")
    await _refused(http, member, _at(mission, accuracy_m=500), 403, "inaccurate_location")
    rec = await pool.fetchrow("select decision, accuracy_m, distance_to_edge_m, refusal_code"
                              " from checkins where member_id = $1 order by id", member_id)
    assert rec is not None and rec["decision"] == "outside" and rec["distance_to_edge_m"] > 7000
    r = await http.post("/checkins", headers=member | idem(), json=_at(mission))
    assert r.status_code == 201
    await _refused(http, member, _at(mission), 409, "already_completed")
    future = await create_mission(
        http, admin, funder, kind="event", geofence_id=mission["geofence_id"],
        starts_at=(dt.datetime.now(dt.UTC) + dt.timedelta(days=1)).isoformat(),
        ends_at=(dt.datetime.now(dt.UTC) + dt.timedelta(days=2)).isoformat())
    await _refused(http, member, _at(future), 409, "mission_not_active")
    tight = await create_mission(http, admin, funder, kind="event",
                                 geofence_id=mission["geofence_id"], points=10, budget_points=10)
    _, first = await world.member()
    r = await http.post("/checkins", headers=first | idem(), json=_at(tight))
    assert r.status_code == 201
    await _refused(http, member, _at(tight), 409, "mission_budget_exhausted")
    big = settings.member_daily_cap_points // 2 + 1
    m1 = await create_mission(http, admin, funder, kind="event",
                              geofence_id=mission["geofence_id"], points=big)
    m2 = await create_mission(http, admin, funder, kind="event",
                              geofence_id=mission["geofence_id"], points=big)
    assert (await http.post("/checkins", headers=member | idem(), json=_at(m1))).status_code == 201
    await _refused(http, member, _at(m2), 409, "daily_limit_reached")
    held_id, held = await world.member()
    await pool.execute("update members set status = 'on_hold' where id = $1", held_id)
    await _refused(http, held, _at(mission), 403, "member_on_hold")
    venue = await create_mission(http, admin, funder, geofence_id=mission["geofence_id"],
                                 venue_code_required=True)
    await _refused(http, member, _at(venue, venue_code="WRONGCOD"), 403, "venue_code_invalid")
    await _refused(http, member, _at(venue), 403, "venue_code_invalid")
    code = (await http.get(f"/admin/missions/{venue['id']}/venue-code", headers=admin)).json()
    ok = await http.post("/checkins", headers=member | idem(),
                         json=_at(venue, venue_code=code["code"].lower()))
    assert ok.status_code == 201, ok.text
    # A refusal is stored under its key: the retry replays it.
    key = idem()
    first_try = await http.post("/checkins", headers=member | key, json=_at(mission, lat=14.9))
    retry = await http.post("/checkins", headers=member | key, json=_at(mission, lat=14.9))
    assert first_try.status_code == retry.status_code == 403
    assert retry.headers.get("idempotent-replayed") == "true"
    missing = await http.post("/checkins", headers=member, json=_at(mission))
    assert missing.status_code == 400 and missing.json()["code"] == "idempotency_key_required"
    await assert_ledger_ok(pool)


@pytest.fixture(scope="module")
def passport_codes() -> list[str]:
    return [f"30{i:02d}" for i in range(1, 13)]


async def _passport(http: httpx.AsyncClient, world: World,
                    codes: list[str]) -> tuple[dict[str, Any], dict[str, int]]:
    admin = await world.admin()
    funder = await world.funder()
    fences = {c: (await create_fence(http, admin, f"district {c}",
                                     geojson(district_shape(c)), kind="district"))["id"]
              for c in codes}
    missions = {c: (await create_mission(http, admin, funder, geofence_id=fences[c],
                                         points=10, recurrence="once"))["id"] for c in codes}
    passport = await create_mission(
        http, admin, funder, kind="collection", title_th="เที่ยวโคราช 32 อำเภอ", points=500,
        collection_geofence_ids=list(fences.values()), collection_required=10,
        badge_code=f"passport-{uuid.uuid4().hex[:6]}", reward_multiplier="2",
        reward_multiplier_days=30, multiplier_eligible=False)
    return passport, missions


async def _visit(http: httpx.AsyncClient, member: dict[str, str], mission_id: int,
                 code: str) -> httpx.Response:
    lat, lon = inside_point(code)
    return await http.post("/checkins", headers=member | idem(), json={
        "mission_id": mission_id, "lat": lat, "lon": lon, "accuracy_m": 10})


async def test_tenth_district_completes_the_passport_exactly_once(
        http: httpx.AsyncClient, world: World, pool: asyncpg.Pool,
        passport_codes: list[str]) -> None:
    passport, missions = await _passport(http, world, passport_codes)
    member_id, member = await world.member()
    for code in passport_codes[:9]:
        r = await _visit(http, member, missions[code], code)
        assert r.status_code == 201 and r.json()["completed"] == [], r.text
    prog = (await http.get(f"/missions/{passport['id']}/progress", headers=member)).json()
    assert prog["places_collected"] == 9 and prog["completed"] is False
    tenth = await _visit(http, member, missions[passport_codes[9]], passport_codes[9])
    done = tenth.json()["completed"]
    assert [d["mission_id"] for d in done] == [passport["id"]] and done[0]["points"] == 500
    eleventh = await _visit(http, member, missions[passport_codes[10]], passport_codes[10])
    assert eleventh.json()["completed"] == []
    # The passport's multiplier period doubles the next eligible award.
    assert eleventh.json()["points_awarded"] == 20
    prog = (await http.get(f"/missions/{passport['id']}/progress", headers=member)).json()
    assert prog["completed"] is True and prog["places_collected"] == 11
    assert passport["badge_code"] in prog["badges"]
    bonus = await pool.fetchval("select count(*) from transfers where member_id = $1 and"
                                " ref->>'leg' = 'bonus'", member_id)
    assert bonus == 1


async def test_passport_completes_once_under_concurrent_checkins(
        http: httpx.AsyncClient, world: World, pool: asyncpg.Pool,
        passport_codes: list[str]) -> None:
    passport, missions = await _passport(http, world, passport_codes)
    member_id, member = await world.member()
    responses = await asyncio.gather(*(_visit(http, member, missions[c], c)
                                       for c in passport_codes))
    assert [r.status_code for r in responses] == [201] * len(passport_codes)
    # Other tests' passports cover the same districts and complete too; count this one.
    completions = [d for r in responses for d in r.json()["completed"]
                   if d["mission_id"] == passport["id"]]
    assert len(completions) == 1 and completions[0]["points"] == 500
    assert await pool.fetchval(
        "select count(*) from mission_completions where mission_id = $1 and member_id = $2",
        passport["id"], member_id) == 1
    assert await pool.fetchval("select places from mission_progress where mission_id = $1"
                               " and member_id = $2", passport["id"], member_id) == 12
    await assert_ledger_ok(pool)


async def test_chain_unlocks_step_by_step(http: httpx.AsyncClient, world: World) -> None:
    admin = await world.admin()
    mission, funder = await _event(http, world, points=5)
    step2 = await create_mission(http, admin, funder, geofence_id=mission["geofence_id"], points=5)
    chain = await create_mission(http, admin, funder, kind="chain", points=100,
                                 chain_steps=[mission["id"], step2["id"]])
    _, member = await world.member()
    await _refused(http, member, _at(step2), 409, "mission_locked")
    assert (await http.post("/checkins", headers=member | idem(),
                            json=_at(mission))).status_code == 201
    r = await http.post("/checkins", headers=member | idem(), json=_at(step2))
    assert r.status_code == 201
    assert [d["mission_id"] for d in r.json()["completed"]] == [chain["id"]]
    prog = (await http.get(f"/missions/{chain['id']}/progress", headers=member)).json()
    assert [s["completed"] for s in prog["steps"]] == [True, True]


async def test_purchase_hook_completes_once_per_period_in_the_scan_transaction(
        http: httpx.AsyncClient, world: World, pool: asyncpg.Pool) -> None:
    admin = await world.admin()
    funder = await world.funder()
    category = f"cat{uuid.uuid4().hex[:6]}"
    mission = await create_mission(http, admin, funder, kind="purchase", points=30,
                                   min_spend_thb="100", categories=[category],
                                   recurrence="daily")
    member_id, _ = await world.member()
    merchant_id = int(await pool.fetchval("select coalesce(max(id), 0) + 1000 from merchants"))
    day = dt.datetime.now(dt.UTC).astimezone(dt.timezone(dt.timedelta(hours=7))).date()
    async with pool.acquire() as conn, conn.transaction():
        small = await record_purchase(conn, member_id=member_id, merchant_id=merchant_id,
                                      category=category, amount_thb=Decimal("99.99"), day=day)
        done = await record_purchase(conn, member_id=member_id, merchant_id=merchant_id,
                                     category=category, amount_thb=Decimal("150"), day=day)
        again = await record_purchase(conn, member_id=member_id, merchant_id=merchant_id,
                                      category=category, amount_thb=Decimal("150"), day=day)
    assert small == [] and again == []
    assert [d["mission_id"] for d in done] == [mission["id"]] and done[0]["points"] == 30
    assert await pool.fetchval("select posted from member_balances where member_id = $1",
                               member_id) == 30
    await assert_ledger_ok(pool)


async def test_missions_list_sorted_by_distance_and_admin_validation(
        http: httpx.AsyncClient, world: World) -> None:
    admin = await world.admin()
    funder = await world.funder()
    near_fence = await create_fence(http, admin, "near", box(14.97, 102.10, 0.001))
    far_fence = await create_fence(http, admin, "far", box(15.22, 102.49, 0.001))
    far = await create_mission(http, admin, funder, geofence_id=far_fence["id"])
    near = await create_mission(http, admin, funder, geofence_id=near_fence["id"])
    _, member = await world.member()
    r = await http.get("/missions", headers=member,
                       params={"lat": 14.97, "lon": 102.10, "limit": 200})
    ids = [m["id"] for m in r.json()["items"]]
    assert ids.index(near["id"]) < ids.index(far["id"])
    assert next(m for m in r.json()["items"] if m["id"] == near["id"])["distance_m"] == 0.0
    bad = await http.post("/admin/missions", headers=admin, json={
        "code": f"B{uuid.uuid4().hex[:8]}", "kind": "event", "title_th": "x", "title_en": "x",
        "points": 5, "funder_id": funder, "starts_at": "2026-01-01T00:00:00Z"})
    assert bad.status_code == 422
    unknown = await http.post("/admin/missions", headers=admin, json={
        "code": f"B{uuid.uuid4().hex[:8]}", "kind": "checkin", "title_th": "x", "title_en": "x",
        "points": 5, "funder_id": funder, "starts_at": "2026-01-01T00:00:00Z",
        "geofence_id": 10**12})
    assert unknown.status_code == 422
    r = await http.patch(f"/admin/missions/{near['id']}", headers=admin,
                         json={"status": "disabled"})
    assert r.status_code == 200 and r.json()["status"] == "disabled"
    r = await http.get("/missions", headers=member, params={"limit": 200})
    assert near["id"] not in [m["id"] for m in r.json()["items"]]
