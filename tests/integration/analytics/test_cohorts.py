"""Cohort retention, DAU/MAU and the 30-day return rate on a hand-computed fixture (2024, so
no other test's activity can fall into these weeks)."""

from __future__ import annotations

import datetime as dt

import asyncpg
import httpx
import redis.asyncio as aioredis

from tests.conftest import World
from tests.integration.analytics.helpers import drain, emit

# Signup (Asia/Bangkok) and activity days per member.
SIGNUPS = {"a1": "2024-01-02", "a2": "2024-01-02", "a3": "2024-01-04", "a4": "2024-01-07",
           "b1": "2024-01-09", "b2": "2024-01-14"}
ACTIVITY = {
    "a1": ["2024-01-02", "2024-01-10", "2024-01-16", "2024-02-10", "2024-03-05"],
    "a2": ["2024-01-03", "2024-02-15"],
    "a3": ["2024-01-09", "2024-01-11", "2024-02-20", "2024-03-31"],
    "a4": [],
    "b1": ["2024-01-09", "2024-01-16", "2024-03-10"],
    "b2": ["2024-01-20", "2024-01-31", "2024-03-03"],
}


async def test_cohort_matrix_and_return_rate_match_hand_computed_numbers(
        http: httpx.AsyncClient, world: World, pool: asyncpg.Pool,
        redis: aioredis.Redis) -> None:
    admin = await world.admin("pao")
    ids: dict[str, int] = {}
    for name, day in SIGNUPS.items():
        ids[name], _ = await world.member()
        await pool.execute("update members set created_at = ($2::date + time '10:00')"
                           " at time zone 'Asia/Bangkok' where id = $1", ids[name],
                           dt.date.fromisoformat(day))
    for name, days in ACTIVITY.items():
        for day in days:
            await emit(pool, "scan.purchase", ids[name], at=f"{day}T12:00:00+07:00",
                       merchant_id=1, amount_thb="100", points=10)
    await drain(pool, redis)

    r = await http.get("/admin/analytics/cohorts", headers=admin,
                       params={"from": "2024-01-01", "to": "2024-01-14", "weeks": 3})
    assert r.status_code == 200, r.text
    rows = {row["cohort_week"]: row for row in r.json()["items"]}
    # Week of 2024-01-01: a1..a4. Week 0 (01-01..07): a1, a2. Week 1 (01-08..14): a1, a3.
    # Week 2 (01-15..21): a1.
    assert rows["2024-01-01"]["size"] == 4
    assert rows["2024-01-01"]["active"] == [2, 2, 1]
    assert rows["2024-01-01"]["retention"] == [0.5, 0.5, 0.25]
    # Week of 2024-01-08: b1, b2. Week 0: b1. Week 1 (01-15..21): b1, b2. Week 2: nobody.
    assert rows["2024-01-08"]["size"] == 2
    assert rows["2024-01-08"]["active"] == [1, 2, 0]
    assert rows["2024-01-08"]["retention"] == [0.5, 1.0, 0.0]
    assert set(rows) == {"2024-01-01", "2024-01-08"}

    r = await http.get("/admin/analytics/engagement", headers=admin,
                       params={"day": "2024-03-31"})
    assert r.status_code == 200, r.text
    e = r.json()
    # Current window 03-02..03-31; previous the 30 days before it, 02-01..03-01 (leap year).
    assert e["current_window"] == ["2024-03-02", "2024-03-31"]
    assert e["previous_window"] == ["2024-02-01", "2024-03-01"]
    # Previous window: a1 (02-10), a2 (02-15), a3 (02-20); b2's 01-31 is one day too early.
    # Back in the current window: a1 (03-05) and a3 (03-31, the last day counts) -> 2 of 3.
    assert (e["return_base_members"], e["returned_members"]) == (3, 2)
    assert e["return_rate_30d"] == 0.6667
    # DAU on 03-31: a3. MAU (03-02..03-31): a1, a3, b1, b2.
    assert (e["dau"], e["mau"], e["dau_mau"]) == (1, 4, 0.25)


async def test_cohort_range_longer_than_the_bound_is_a_422(
        http: httpx.AsyncClient, world: World) -> None:
    admin = await world.admin("pao")
    r = await http.get("/admin/analytics/cohorts", headers=admin,
                       params={"from": "2020-01-01", "to": "2024-01-01"})
    assert r.status_code == 422
    assert r.json()["code"] == "validation_failed"
