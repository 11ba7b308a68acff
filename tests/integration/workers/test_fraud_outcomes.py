"""Fraud outcomes: held points, member holds through HTTP, review decisions, strikes."""

from __future__ import annotations

import datetime as dt
from typing import Any

import asyncpg
import httpx

from tests.conftest import assert_ledger_ok, idem
from tests.integration.workers.conftest import run_event

KORAT = (14.9799, 102.0977)
PAK_CHONG = (14.7081, 101.4208)


def ago(minutes: float) -> str:
    return (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=minutes)).isoformat()


async def award(http: httpx.AsyncClient, admin: dict[str, str], member: int, funder: int,
                points: int) -> int:
    r = await http.post("/admin/awards", headers=idem(**admin), json={
        "member_id": member, "points": points, "funder_id": funder, "reason": "test"})
    assert r.status_code == 201, r.text
    return int(r.json()["transfer_id"])


async def teleport(ctx: dict[str, Any], member: int, transfer_id: int, points: int,
                   minutes_ago: float = 0) -> int:
    """A check-in pair 78 km apart in 10 minutes; the second one awarded ``transfer_id``."""
    await run_event(ctx, "checkin.completed", {"lat": KORAT[0], "lon": KORAT[1],
                                               "accuracy_m": 9.0, "at": ago(minutes_ago + 20)},
                    member)
    await run_event(ctx, "checkin.completed", {
        "lat": PAK_CHONG[0], "lon": PAK_CHONG[1], "accuracy_m": 7.0, "at": ago(minutes_ago + 10),
        "points_awarded": points, "transfer_id": transfer_id, "decision": "inside"}, member)
    review = await ctx["pool"].fetchval(
        "select r.id from fraud_reviews r join fraud_alerts a on a.id = r.alert_id"
        " where r.member_id = $1 and a.rule = 'impossible_travel' and r.status = 'open'", member)
    assert review is not None
    return int(review)


async def pocket(pool: asyncpg.Pool, member: int) -> tuple[int, int]:
    row = await pool.fetchrow("select posted, reserved from member_balances where member_id = $1",
                              member)
    assert row is not None
    return row["posted"], row["reserved"]


async def test_rejecting_a_review_reverses_exactly_the_held_points(
        ctx: dict[str, Any], pool: asyncpg.Pool, http: httpx.AsyncClient, world: Any) -> None:
    admin, funder = await world.admin(), await world.funder()
    member, me = await world.member()
    await award(http, admin, member, funder, 40)
    suspicious = await award(http, admin, member, funder, 100)
    review = await teleport(ctx, member, suspicious, 100)
    assert await pocket(pool, member) == (140, 100)  # held as pending, not available
    assert (await http.get("/me", headers=me)).json()["status"] == "on_hold"
    alerts = (await http.get("/admin/fraud/alerts", headers=admin,
                             params={"member_id": member, "rule": "impossible_travel"})).json()
    assert [a["rule"] for a in alerts["items"]] == ["impossible_travel"]
    assert alerts["items"][0]["evidence"]["kmh"] > 150

    r = await http.post(f"/admin/fraud/reviews/{review}/reject", headers=admin,
                        json={"note": "GPS spoofing"})
    assert r.status_code == 200, r.text
    assert r.json()["reversed_points"] == 100 and r.json()["strikes"] == 1
    assert await pocket(pool, member) == (40, 0)
    assert await pool.fetchval("select amount from transfers where reverses_id = $1",
                               suspicious) == 100
    assert (await http.get("/me", headers=me)).json()["status"] == "active"
    again = await http.post(f"/admin/fraud/reviews/{review}/reject", headers=admin, json={})
    assert again.status_code == 409 and again.json()["code"] == "review_closed"
    await assert_ledger_ok(pool)


async def test_approving_a_review_releases_the_held_points(
        ctx: dict[str, Any], pool: asyncpg.Pool, http: httpx.AsyncClient, world: Any) -> None:
    admin, funder = await world.admin(), await world.funder()
    member, _ = await world.member()
    tid = await award(http, admin, member, funder, 70)
    review = await teleport(ctx, member, tid, 70)
    r = await http.post(f"/admin/fraud/reviews/{review}/approve", headers=admin, json={})
    assert r.status_code == 200, r.text
    assert await pocket(pool, member) == (70, 0)
    assert await pool.fetchval("select count(*) from transfers where reverses_id = $1", tid) == 0
    assert await pool.fetchval("select status from members where id = $1", member) == "active"
    await assert_ledger_ok(pool)


async def test_third_strike_bans_the_member(
        ctx: dict[str, Any], pool: asyncpg.Pool, http: httpx.AsyncClient, world: Any) -> None:
    admin, funder = await world.admin(), await world.funder()
    member, _ = await world.member()
    for strike in (1, 2, 3):
        tid = await award(http, admin, member, funder, 10)
        review = await teleport(ctx, member, tid, 10, minutes_ago=(3 - strike) * 60)
        r = await http.post(f"/admin/fraud/reviews/{review}/reject", headers=admin, json={})
        assert r.json()["strikes"] == strike
        expected = "banned" if strike == 3 else "active"
        assert await pool.fetchval("select status from members where id = $1", member) == expected
    listed = (await http.get("/admin/fraud/blacklist", headers=admin,
                             params={"kind": "member"})).json()["items"]
    assert str(member) in [e["value"] for e in listed]
    await assert_ledger_ok(pool)


async def test_a_held_member_is_refused_with_member_on_hold(
        http: httpx.AsyncClient, world: Any, pool: asyncpg.Pool) -> None:
    admin, funder = await world.admin(), await world.funder()
    member, me = await world.member()
    await award(http, admin, member, funder, 500)
    r = await http.post("/admin/merchants", headers=admin, json={
        "name": "OTOP Korat", "district_code": "3001", "lat": 14.97, "lon": 102.1,
        "category": "otop", "thb_per_point": "10", "funder_id": funder})
    assert r.status_code == 201, r.text
    reward = await http.post("/admin/rewards", headers=admin, json={
        "name": "Silk scarf", "cost_points": 100, "stock": 10,
        "merchant_ids": [r.json()["id"]]})
    assert reward.status_code == 201, reward.text
    body = {"reward_id": reward.json()["id"]}

    held = await http.post(f"/admin/members/{member}/hold", headers=admin,
                           json={"reason": "reported by merchant"})
    assert held.status_code == 200 and held.json()["status"] == "on_hold"
    refused = await http.post("/redemptions", headers=idem(**me), json=body)
    assert refused.status_code == 403
    assert refused.json()["code"] == "member_on_hold"
    assert refused.json()["message_th"]

    lifted = await http.delete(f"/admin/members/{member}/hold", headers=admin)
    assert lifted.status_code == 200 and lifted.json()["status"] == "active"
    ok = await http.post("/redemptions", headers=idem(**me), json=body)
    assert ok.status_code == 201, ok.text
    actions = [r["action"] for r in await pool.fetch(
        "select action from audit_log where subject = $1 order by id", f"member:{member}")]
    assert actions == ["member.hold", "member.hold_lifted"]
