"""Merchant scans: earn rule, tiers, refusals, offline batches, expiry, reports, settlement."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
import uuid

import asyncpg
import httpx

from kuekan.auth.tokens import Principal
from kuekan.kit.clock import bangkok_day
from kuekan.ledger import repository as ledger_repo
from kuekan.members import repository as members_repo
from kuekan.members.model import add_months
from kuekan.rewards import jobs
from tests.conftest import World, assert_ledger_ok, idem
from tests.integration.rewards.helpers import give, merchant, pocket, qr, reward, staff


async def test_purchase_scan_awards_by_earn_rule_from_the_merchants_funder(
        http: httpx.AsyncClient, world: World, pool: asyncpg.Pool) -> None:
    funder = await world.funder()
    shop = await merchant(http, world, funder=funder, thb_per_point=10, min_spend=50)
    counter = await staff(world, shop)
    mid, auth = await world.member()
    token = (await http.get("/me/qr", headers=auth)).json()["token"]
    low = await http.post("/merchant/scans", headers=counter | idem(),
                          json={"member_token": token, "purchase_thb": "40"})
    assert low.status_code == 409 and low.json()["code"] == "purchase_below_minimum"
    r = await http.post("/merchant/scans", headers=counter | idem(),
                        json={"member_token": token, "purchase_thb": "259.50"})
    assert r.status_code == 201, r.text
    assert r.json()["action"] == "award" and r.json()["points"] == 25
    assert r.json()["member_id"] == mid
    t = await pool.fetchrow("select funder_id, ref from transfers where id = $1",
                            r.json()["transfer_id"])
    assert t is not None
    assert t["funder_id"] == funder and t["ref"]["merchant_id"] == shop
    assert await pocket(pool, mid) == (25, 0)


async def test_token_refusals_self_award_hold_and_replay_elsewhere(
        http: httpx.AsyncClient, world: World, pool: asyncpg.Pool) -> None:
    shop_a, shop_b = await merchant(http, world), await merchant(http, world)
    mid, _ = await world.member()
    token = qr(world, mid)
    first = await http.post("/merchant/scans", headers=await staff(world, shop_a) | idem(),
                            json={"member_token": token, "purchase_thb": 100})
    assert first.status_code == 201
    elsewhere = await http.post("/merchant/scans", headers=await staff(world, shop_b) | idem(),
                                json={"member_token": token, "purchase_thb": 100})
    assert elsewhere.status_code == 409 and elsewhere.json()["code"] == "member_token_replayed"
    expired = qr(world, mid, at=time.time() - 3600)
    r = await http.post("/merchant/scans", headers=await staff(world, shop_a) | idem(),
                        json={"member_token": expired, "purchase_thb": 100})
    assert r.status_code == 403 and r.json()["code"] == "member_token_expired"
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    r = await http.post("/merchant/scans", headers=await staff(world, shop_a) | idem(),
                        json={"member_token": forged, "purchase_thb": 100})
    assert r.status_code == 403 and r.json()["code"] == "member_token_invalid"
    # Staff scanning their own member account (same LINE user) is refused.
    sub = f"Uself-{uuid.uuid4().hex[:10]}"
    self_id = (await members_repo.ensure_members(pool, [sub]))[sub]
    own = await staff(world, shop_a, line_sub=sub)
    r = await http.post("/merchant/scans", headers=own | idem(),
                        json={"member_token": qr(world, self_id), "purchase_thb": 100})
    assert r.status_code == 403 and r.json()["code"] == "self_award_forbidden"
    assert await pocket(pool, self_id) == (0, 0)
    await pool.execute("update members set status = 'on_hold' where id = $1", mid)
    r = await http.post("/merchant/scans", headers=await staff(world, shop_a) | idem(),
                        json={"member_token": qr(world, mid), "purchase_thb": 100})
    assert r.status_code == 403 and r.json()["code"] == "member_on_hold"
    assert await pocket(pool, mid) == (10, 0)


async def test_tier_upgrades_at_threshold_once_under_concurrency_and_multiplier_applies(
        http: httpx.AsyncClient, world: World, pool: asyncpg.Pool) -> None:
    threshold = await pool.fetchval("select threshold_points from tiers where code = 'vip'")
    funder = await world.funder()
    shop = await merchant(http, world, thb_per_point=10)
    mid, auth = await world.member()
    await give(pool, mid, funder, threshold - 30)
    assert (await http.get("/me", headers=auth)).json()["tier"] == "standard"
    counters = [await staff(world, shop) for _ in range(4)]
    scans = await asyncio.gather(*(
        http.post("/merchant/scans", headers=counters[i % 4] | idem(),
                  json={"member_token": qr(world, mid), "purchase_thb": 100})
        for i in range(10)))
    assert [s.status_code for s in scans] == [201] * 10
    # The multiplier is read when each scan starts, so racing scans earn 10 or 15, never more.
    points = [s.json()["points"] for s in scans]
    assert set(points) <= {10, 15} and points.count(10) >= 3
    assert (await http.get("/me", headers=auth)).json()["tier"] == "vip"
    assert (await http.get("/me/pocket", headers=auth)).json()["tier"] == "vip"
    changes = await pool.fetch("select from_tier, to_tier from tier_changes where member_id = $1",
                               mid)
    assert [(c["from_tier"], c["to_tier"]) for c in changes] == [("standard", "vip")]
    later = await http.post("/merchant/scans", headers=counters[0] | idem(),
                            json={"member_token": qr(world, mid), "purchase_thb": 100})
    assert later.json()["points"] == 15
    # The yearly review keeps a member who earned enough and downgrades one who did not.
    idle = (await world.member())[0]
    await pool.execute("update members set tier = 'vip' where id = $1", idle)
    changed = await jobs.tier_yearly_review({"pool": pool, "settings": world.settings})
    assert changed >= 1
    assert await pool.fetchval("select tier from members where id = $1", mid) == "vip"
    assert await pool.fetchval("select tier from members where id = $1", idle) == "standard"


async def test_expiry_moves_only_the_unspent_rest_of_old_lots_once_and_liability_reconciles(
        http: httpx.AsyncClient, world: World, pool: asyncpg.Pool) -> None:
    funder_a, funder_b, funder_c = (await world.funder(), await world.funder(),
                                    await world.funder())
    shop = await merchant(http, world, funder=funder_c)
    today = bangkok_day()
    old_a = add_months(today.replace(day=1), -14)
    old_b = add_months(today.replace(day=1), -13)
    mid, auth = await world.member()
    await give(pool, mid, funder_a, 100, old_a)
    await give(pool, mid, funder_b, 50, old_b)
    await give(pool, mid, funder_c, 30, today)
    # Spend 120: the oldest lot (A, 100) first, then 20 of B's lot.
    rid = await reward(http, world, [shop], cost=120)
    coupon = (await http.post("/redemptions", headers=auth | idem(),
                              json={"reward_id": rid})).json()
    scan = await http.post("/merchant/scans", headers=await staff(world, shop) | idem(),
                           json={"member_token": qr(world, mid),
                                 "coupon_code": coupon["coupon_code"]})
    assert scan.status_code == 201, scan.text
    ctx = {"pool": pool, "settings": world.settings}
    results = await asyncio.gather(jobs.expire_points(ctx), jobs.expire_points(ctx))
    assert sum(results) >= 30
    lots = {(r["funder_id"]): (r["earned"], r["spent"], r["expired"]) for r in await pool.fetch(
        "select funder_id, earned, spent, expired from lots where member_id = $1", mid)}
    assert lots == {funder_a: (100, 100, 0), funder_b: (50, 20, 30), funder_c: (30, 0, 0)}
    assert await jobs.expire_points(ctx) == 0  # nothing is ever expired twice
    assert await pocket(pool, mid) == (30, 0)
    expired = await pool.fetchval(
        "select sum(amount) from transfers where member_id = $1 and kind = 'expire'", mid)
    assert expired == 30
    liab = {f: (await ledger_repo.get_funder(pool, f))["liability_points"]  # type: ignore[index]
            for f in (funder_a, funder_b, funder_c)}
    assert liab == {funder_a: 100, funder_b: 20, funder_c: 30}
    admin = await world.admin()
    st = await http.get("/admin/settlement/daily", headers=admin)
    mine = {(r["funder_id"]): r["points"] for r in st.json()["items"]
            if r["merchant_id"] == shop}
    assert mine == {funder_a: 100, funder_b: 20}
    net = (await http.get("/admin/settlement/netting", headers=admin)).json()
    pairs = {(p["funder_id"], p["merchant_id"]): p["owed_points"] for p in net["pairs"]}
    assert pairs[(funder_a, shop)] == 100 and pairs[(funder_b, shop)] == 20
    xlsx = await http.get("/admin/settlement/daily", headers=admin, params={"format": "xlsx"})
    assert xlsx.status_code == 200 and xlsx.content[:2] == b"PK"
    csv = await http.get("/admin/settlement/netting", headers=admin, params={"format": "csv"})
    assert csv.status_code == 200 and b"owed_points" in csv.content
    await assert_ledger_ok(pool)


async def test_offline_batch_with_duplicates_expired_window_and_cap_and_replay_changes_nothing(
        http: httpx.AsyncClient, world: World, pool: asyncpg.Pool) -> None:
    shop = await merchant(http, world, cap=50, thb_per_point=10)
    counter = await staff(world, shop)
    mid, _ = await world.member()
    now = dt.datetime.now(dt.UTC)
    at = now - dt.timedelta(minutes=5)
    token = qr(world, mid, at=at.timestamp() - 10)
    # One member QR pays one award: the second and third purchases show fresh tokens.
    token2, token3 = (qr(world, mid, at=at.timestamp() - 5) for _ in range(2))
    stale_at = now - dt.timedelta(hours=80)

    def item(key: str, when: dt.datetime, tok: str, thb: int = 200) -> dict[str, object]:
        return {"idempotency_key": key, "member_token": tok, "purchase_thb": thb,
                "scanned_at": when.isoformat()}

    items = [
        item("k1", at, token), item("k1", at, token), item("k2", at, token2),
        item("k3", at, token3),
        item("k4", stale_at, qr(world, mid, at=stale_at.timestamp() - 5)),
        item("k5", at, qr(world, mid, at=at.timestamp() - 3600)),
    ]
    r = await http.post("/merchant/scans/batch", headers=counter, json={"items": items})
    assert r.status_code == 200, r.text
    got = [(i["idempotency_key"], i["status"], (i.get("problem") or {}).get("code"))
           for i in r.json()["items"]]
    assert got == [("k1", 201, None), ("k1", 201, None), ("k2", 201, None),
                   ("k3", 409, "merchant_daily_cap_reached"), ("k4", 409, "offline_window_expired"),
                   ("k5", 403, "member_token_expired")]
    first = r.json()["items"]
    assert first[1]["replayed"] is True and first[1]["result"] == first[0]["result"]
    assert await pocket(pool, mid) == (40, 0)
    before = await pool.fetchval("select count(*) from transfers where member_id = $1", mid)
    replay = await http.post("/merchant/scans/batch", headers=counter, json={"items": items})
    again = [(i["idempotency_key"], i["status"], (i.get("problem") or {}).get("code"))
             for i in replay.json()["items"]]
    assert again == got
    assert [i.get("result") for i in replay.json()["items"]] == [i.get("result") for i in first]
    assert await pocket(pool, mid) == (40, 0)
    assert await pool.fetchval("select count(*) from transfers where member_id = $1",
                               mid) == before
    assert await pool.fetchval("select points from merchant_daily where merchant_id = $1",
                               shop) == 40


async def test_merchant_daily_and_monthly_reports_in_json_and_xlsx(
        http: httpx.AsyncClient, world: World, pool: asyncpg.Pool) -> None:
    funder = await world.funder()
    shop = await merchant(http, world)
    counter = await staff(world, shop)
    rid = await reward(http, world, [shop], cost=10)
    members = [await world.member() for _ in range(3)]
    for mid, _ in members:
        r = await http.post("/merchant/scans", headers=counter | idem(),
                            json={"member_token": qr(world, mid), "purchase_thb": 100})
        assert r.status_code == 201
    mid, auth = members[0]
    await give(pool, mid, funder, 10)
    coupon = (await http.post("/redemptions", headers=auth | idem(),
                              json={"reward_id": rid})).json()
    r = await http.post("/merchant/scans", headers=counter | idem(),
                        json={"member_token": qr(world, mid), "coupon_code": coupon["coupon_code"]})
    assert r.status_code == 201
    rep = await http.get("/merchant/reports/daily", headers=counter)
    assert rep.status_code == 200, rep.text
    [day] = rep.json()["items"]
    assert (day["customers"], day["awards"], day["points_awarded"],
            day["coupons_redeemed"], day["points_redeemed"]) == (3, 3, 30, 1, 10)
    monthly = await http.get("/merchant/reports/monthly", headers=counter)
    assert monthly.json()["items"][0]["points_awarded"] == 30
    xlsx = await http.get("/merchant/reports/daily", headers=counter, params={"format": "xlsx"})
    assert xlsx.status_code == 200 and xlsx.content[:2] == b"PK"
    other = world.auth(Principal("member", mid, "x"))
    assert (await http.get("/merchant/reports/daily", headers=other)).status_code == 403


async def test_a_scan_completes_purchase_missions_in_its_one_round_trip(
        http: httpx.AsyncClient, world: World, pool: asyncpg.Pool) -> None:
    """kk_purchase_scan_idem: the award, the purchase mission it completes, the shop's report
    row and the stored response commit together; a replay answers the same body; a refused
    scan progresses nothing."""
    from tests.integration.missions.helpers import create_mission

    admin = await world.admin()
    funder = await world.funder()
    shop = await merchant(http, world, funder=funder, thb_per_point=10)
    mission = await create_mission(http, admin, funder, kind="purchase", points=30,
                                   min_spend_thb="100", merchant_ids=[shop],
                                   recurrence="daily")
    try:
        counter = await staff(world, shop)
        mid, _ = await world.member()
        token = qr(world, mid)
        key = idem()
        r = await http.post("/merchant/scans", headers=counter | key,
                            json={"member_token": token, "purchase_thb": "150"})
        assert r.status_code == 201, r.text
        body = r.json()
        assert body["points"] == 15
        assert [(d["mission_id"], d["points"]) for d in body["missions"]] == [(mission["id"], 30)]
        again = await http.post("/merchant/scans", headers=counter | key,
                                json={"member_token": token, "purchase_thb": "150"})
        assert again.status_code == 201 and again.json() == body
        assert again.headers.get("idempotent-replayed") == "true"
        # The same QR at another shop is refused: nothing of that scan is kept.
        other = await staff(world, await merchant(http, world, funder=funder))
        refused = await http.post("/merchant/scans", headers=other | idem(),
                                  json={"member_token": token, "purchase_thb": "500"})
        assert refused.status_code == 409 and refused.json()["code"] == "member_token_replayed"
        # A new QR, the same day: the daily mission is done already, the scan still awards.
        second = await http.post("/merchant/scans", headers=counter | idem(),
                                 json={"member_token": qr(world, mid), "purchase_thb": "150"})
        assert second.status_code == 201 and second.json()["missions"] == []
        assert await pocket(pool, mid) == (15 + 30 + 15, 0)
        rows = await pool.fetch("select mission_id, member_id, points from"
                                " merchant_mission_completions where merchant_id = $1", shop)
        assert [tuple(x) for x in rows] == [(mission["id"], mid, 30)]
        await assert_ledger_ok(pool)
    finally:
        await http.delete(f"/admin/missions/{mission['id']}", headers=admin)
