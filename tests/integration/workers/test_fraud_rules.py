"""Each fraud rule fires on a case and stays quiet on a close case, through the real outbox
handler with the payloads the missions and rewards domains write."""

from __future__ import annotations

import datetime as dt
import random
import uuid
from typing import Any

import asyncpg
import httpx
import msgspec
import pytest

from kuekan.members import repository as members_repo
from tests.integration.workers.conftest import run_event

KORAT = (14.9799, 102.0977)
PAK_CHONG = (14.7081, 101.4208)  # ~78 km from Korat city


def ago(minutes: float) -> str:
    return (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=minutes)).isoformat()


def checkin(lat: float, lon: float, at: str, **extra: Any) -> dict[str, Any]:
    return {"checkin_id": random.randint(1, 10**9), "mission_id": None, "decision": "inside",
            "points_awarded": 10, "lat": lat, "lon": lon, "accuracy_m": 8.0,
            "device_id": None, "at": at, **extra}


def jitter(lat: float, lon: float, i: int) -> tuple[float, float]:
    return lat + 0.0001 * i + 0.0000137, lon + 0.0001 * i + 0.0000291


async def alerts(pool: asyncpg.Pool, rule: str, **where: Any) -> int:
    col, val = next(iter(where.items()))
    return int(await pool.fetchval(
        f"select count(*) from fraud_alerts where rule = $1 and {col} = $2", rule, val))  # noqa: S608


async def test_checkin_velocity(ctx: dict[str, Any], pool: asyncpg.Pool, world: Any) -> None:
    fast, calm = (await world.member())[0], (await world.member())[0]
    for who, n in ((fast, 6), (calm, 5)):
        for i in range(n):
            await run_event(ctx, "checkin.completed",
                            checkin(*jitter(*KORAT, i), ago(5 - i * 0.5), member_id=who), who)
    assert await alerts(pool, "checkin_velocity", member_id=fast) == 1
    assert await alerts(pool, "checkin_velocity", member_id=calm) == 0


async def test_impossible_travel(ctx: dict[str, Any], pool: asyncpg.Pool, world: Any) -> None:
    teleport, driver, stroller = [(await world.member())[0] for _ in range(3)]
    await run_event(ctx, "checkin.completed", checkin(*KORAT, ago(60)), teleport)
    await run_event(ctx, "checkin.completed", checkin(*PAK_CHONG, ago(50)), teleport)  # ~470 km/h
    await run_event(ctx, "checkin.completed", checkin(*KORAT, ago(60)), driver)
    await run_event(ctx, "checkin.completed", checkin(*PAK_CHONG, ago(20)), driver)  # ~117 km/h
    await run_event(ctx, "checkin.completed", checkin(*KORAT, ago(1)), stroller)
    near = (KORAT[0] + 0.008, KORAT[1])  # 0.9 km in 50 s: fast, but under the 1 km floor
    await run_event(ctx, "checkin.completed", checkin(*near, ago(0.2)), stroller)
    assert await alerts(pool, "impossible_travel", member_id=teleport) == 1
    assert await alerts(pool, "impossible_travel", member_id=driver) == 0
    assert await alerts(pool, "impossible_travel", member_id=stroller) == 0


async def test_one_device_on_many_accounts(ctx: dict[str, Any], pool: asyncpg.Pool,
                                           world: Any) -> None:
    farm, family = f"dev-{uuid.uuid4().hex}", f"dev-{uuid.uuid4().hex}"
    for device, n in ((farm, 4), (family, 3)):
        for i in range(n):
            who = (await world.member())[0]
            await run_event(ctx, "checkin.completed",
                            checkin(*jitter(*KORAT, i), ago(10 - i), device_id=device), who)
    assert await alerts(pool, "device_many_accounts", device_id=farm) == 1
    assert await alerts(pool, "device_many_accounts", device_id=family) == 0


async def test_geofence_burst_fires_except_for_a_scheduled_event_at_its_own_geofence(
        ctx: dict[str, Any], pool: asyncpg.Pool, world: Any) -> None:
    ctx = {**ctx, "settings": msgspec.structs.replace(ctx["settings"],
                                                      fraud_geofence_burst_max=5)}
    quiet_temple, festival = random.randint(10**9, 2 * 10**9), random.randint(2 * 10**9, 3 * 10**9)
    for fence, event in ((quiet_temple, False), (festival, True)):
        for i in range(8):
            who = (await world.member())[0]
            await run_event(ctx, "checkin.completed",
                            checkin(*jitter(*KORAT, i), ago(0.5 - i * 0.05),
                                    geofence_id=fence, event=event), who)
    rows = await pool.fetch("select evidence from fraud_alerts where rule = 'geofence_burst'"
                            " and (evidence ->> 'geofence_id')::bigint = any($1::bigint[])",
                            [quiet_temple, festival])
    assert [r["evidence"]["geofence_id"] for r in rows] == [quiet_temple]


@pytest.mark.parametrize(("accuracy_m", "fires"), [(0.0, True), (0.4, True), (4.5, False)])
async def test_suspiciously_perfect_accuracy(ctx: dict[str, Any], pool: asyncpg.Pool,
                                             world: Any, accuracy_m: float, fires: bool) -> None:
    who = (await world.member())[0]
    await run_event(ctx, "checkin.completed",
                    checkin(*KORAT, ago(1), accuracy_m=accuracy_m), who)
    assert await alerts(pool, "accuracy_anomaly", member_id=who) == int(fires)


async def test_repeated_identical_coordinates(ctx: dict[str, Any], pool: asyncpg.Pool,
                                              world: Any) -> None:
    spoofer, regular = (await world.member())[0], (await world.member())[0]
    for i in range(4):  # the fourth time at the very same point
        await run_event(ctx, "checkin.completed",
                        checkin(14.971234, 102.101234, ago(600 - i * 120)), spoofer)
    for i in range(3):  # three times is still a habit, not a replay
        await run_event(ctx, "checkin.completed",
                        checkin(14.971234, 102.101234, ago(600 - i * 120)), regular)
    assert await alerts(pool, "accuracy_anomaly", member_id=spoofer) == 1
    assert await alerts(pool, "accuracy_anomaly", member_id=regular) == 0


async def _history(pool: asyncpg.Pool, merchant: int, per_hour: int) -> None:
    await pool.execute(
        "insert into fraud_awards (outbox_id, kind, member_id, merchant_id, points, at)"
        " select -(($1::bigint * 100000) + g), 'award', 1, $1, 10,"
        " now() - interval '2 hours' - (g * interval '1 hour' / $2)"
        " from generate_series(1, 24 * 6 * $2) g", merchant, per_hour)


async def test_merchant_award_burst_against_its_own_baseline(
        ctx: dict[str, Any], pool: asyncpg.Pool, world: Any) -> None:
    busy, new = random.randint(10**6, 10**7), random.randint(10**7, 10**8)
    await _history(pool, busy, 20)  # a busy shop: 20 awards an hour for six days
    who = (await world.member())[0]
    for merchant in (busy, new):
        await pool.execute(
            "insert into fraud_awards (outbox_id, kind, member_id, merchant_id, points, at)"
            " select -(($1::bigint * 100000) + 90000 + g), 'award', 1, $1, 10,"
            " now() - g * interval '30 seconds' from generate_series(1, 59) g", merchant)
        await run_event(ctx, "points.awarded", {"action": "award", "points": 10,
                                                "member_id": who, "merchant_id": merchant,
                                                "transfer_id": None, "at": ago(0)}, who)
    # 60 in an hour is normal for the busy shop (limit 5 x ~20), a burst for a new one (30).
    assert await alerts(pool, "merchant_award_burst", merchant_id=busy) == 0
    assert await alerts(pool, "merchant_award_burst", merchant_id=new) == 1


async def _merchant(http: httpx.AsyncClient, world: Any) -> int:
    admin = await world.admin()
    funder = await world.funder()
    r = await http.post("/admin/merchants", headers=admin, json={
        "name": "Korat noodles", "district_code": "3001", "lat": 14.97, "lon": 102.1,
        "category": "food", "thb_per_point": "10", "funder_id": funder})
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


async def test_staff_awarding_their_own_member_account(
        ctx: dict[str, Any], pool: asyncpg.Pool, world: Any, http: httpx.AsyncClient) -> None:
    merchant = await _merchant(http, world)
    sub, other_sub = f"Ustaff-{uuid.uuid4().hex[:10]}", f"Ustaff-{uuid.uuid4().hex[:10]}"
    self_member = (await members_repo.ensure_members(pool, [sub]))[sub]
    customer = (await world.member())[0]
    staff = await members_repo.ensure_staff(pool, sub, "merchant", merchant, None)
    colleague = await members_repo.ensure_staff(pool, other_sub, "merchant", merchant, None)
    for member, by in ((self_member, staff), (customer, colleague)):
        await run_event(ctx, "points.awarded", {
            "action": "award", "points": 25, "member_id": member, "merchant_id": merchant,
            "transfer_id": None, "ref": {"staff_id": by}, "at": ago(0)}, member)
    assert await alerts(pool, "staff_self_award", member_id=self_member) == 1
    assert await alerts(pool, "staff_self_award", member_id=customer) == 0


async def test_award_redeem_loop_between_one_member_and_one_merchant(
        ctx: dict[str, Any], pool: asyncpg.Pool, world: Any) -> None:
    looper, shopper = (await world.member())[0], (await world.member())[0]
    shop, elsewhere = random.randint(10**8, 10**9), random.randint(10**9, 2 * 10**9)
    plan = {looper: [shop, shop, shop], shopper: [shop, shop, elsewhere]}
    for member, redeem_at in plan.items():
        for i, where in enumerate(redeem_at):
            await run_event(ctx, "points.awarded", {"points": 50, "member_id": member,
                                                    "merchant_id": shop, "at": ago(60 - i)},
                            member)
            await run_event(ctx, "coupon.redeemed", {"coupon_id": random.randint(1, 10**9),
                                                     "merchant_id": where, "points": 50,
                                                     "member_id": member, "at": ago(50 - i)},
                            member)
    assert await alerts(pool, "award_redeem_loop", member_id=looper) == 1
    assert await alerts(pool, "award_redeem_loop", member_id=shopper) == 0
