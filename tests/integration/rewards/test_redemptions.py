"""Two-phase redemption under concurrency: stock, balance, single use, void at expiry."""

from __future__ import annotations

import asyncio
import datetime as dt

import asyncpg
import httpx

from kuekan.rewards import jobs
from tests.conftest import World, assert_ledger_ok, idem
from tests.integration.rewards.helpers import give, merchant, pocket, qr, reward, staff


async def test_100_concurrent_redemptions_of_stock_10_issue_exactly_10_coupons(
        http: httpx.AsyncClient, world: World, pool: asyncpg.Pool) -> None:
    funder = await world.funder()
    shop = await merchant(http, world)
    rid = await reward(http, world, [shop], cost=20, stock=10)
    members = await world.members(100)
    for mid, _ in members:
        await give(pool, mid, funder, 50)
    responses = await asyncio.gather(*(
        http.post("/redemptions", headers=auth | idem(), json={"reward_id": rid})
        for _, auth in members))
    ok = [r for r in responses if r.status_code == 201]
    refused = [r for r in responses if r.status_code != 201]
    assert len(ok) == 10
    assert {r.status_code for r in refused} == {409}
    assert {r.json()["code"] for r in refused} == {"out_of_stock"}
    assert await pool.fetchval("select stock from rewards where id = $1", rid) == 0
    assert await pool.fetchval("select count(*) from coupons where reward_id = $1", rid) == 10
    codes = {r.json()["coupon_code"] for r in ok}
    assert len(codes) == 10
    assert all(set(c.replace("-", "")) <= set("ABCDEFGHJKMNPQRTUVWXY3467890") for c in codes)
    # Only the ten winners hold reserved points; the others were never charged.
    reserved = await pool.fetchval(
        "select sum(reserved) from member_balances where member_id = any($1::bigint[])",
        [m for m, _ in members])
    assert reserved == 200
    await assert_ledger_ok(pool)


async def test_five_parallel_redemptions_of_20_with_50_points_at_most_two_succeed(
        http: httpx.AsyncClient, world: World, pool: asyncpg.Pool) -> None:
    funder = await world.funder()
    shop = await merchant(http, world)
    rid = await reward(http, world, [shop], cost=20, stock=100)
    mid, auth = await world.member()
    await give(pool, mid, funder, 50)
    responses = await asyncio.gather(*(
        http.post("/redemptions", headers=auth | idem(), json={"reward_id": rid})
        for _ in range(5)))
    codes = sorted(r.status_code for r in responses)
    assert codes == [201, 201, 409, 409, 409]
    assert {r.json()["code"] for r in responses if r.status_code == 409} == {
        "insufficient_points"}
    posted, reserved = await pocket(pool, mid)
    assert (posted, reserved) == (50, 40)
    assert posted - reserved >= 0
    assert await pool.fetchval("select stock from rewards where id = $1", rid) == 98


async def test_redemption_replay_returns_the_same_coupon_and_per_member_limit_holds(
        http: httpx.AsyncClient, world: World, pool: asyncpg.Pool) -> None:
    funder = await world.funder()
    shop = await merchant(http, world)
    rid = await reward(http, world, [shop], cost=10, stock=100, per_member_limit=2)
    mid, auth = await world.member()
    await give(pool, mid, funder, 100)
    headers = auth | idem()
    first = await http.post("/redemptions", headers=headers, json={"reward_id": rid})
    again = await http.post("/redemptions", headers=headers, json={"reward_id": rid})
    assert first.status_code == again.status_code == 201
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json()["coupon_code"] == first.json()["coupon_code"]
    assert first.json()["coupon_qr"].startswith("KKC1.")
    second = await http.post("/redemptions", headers=auth | idem(), json={"reward_id": rid})
    third = await http.post("/redemptions", headers=auth | idem(), json={"reward_id": rid})
    assert second.status_code == 201
    assert third.status_code == 409 and third.json()["code"] == "reward_limit_reached"
    assert third.json()["message_th"]
    assert await pocket(pool, mid) == (100, 20)
    mine = await http.get("/me/coupons", headers=auth)
    assert [c["status"] for c in mine.json()["items"]] == ["issued", "issued"]
    img = await http.get(f"/me/coupons/{mine.json()['items'][0]['id']}/qr", headers=auth)
    assert img.status_code == 200 and img.headers["content-type"].startswith("image/svg")


async def test_coupon_scanned_twice_concurrently_at_two_counters_posts_once(
        http: httpx.AsyncClient, world: World, pool: asyncpg.Pool) -> None:
    funder = await world.funder()
    shop = await merchant(http, world)
    rid = await reward(http, world, [shop], cost=30)
    mid, auth = await world.member()
    await give(pool, mid, funder, 100)
    coupon = (await http.post("/redemptions", headers=auth | idem(),
                              json={"reward_id": rid})).json()
    counters = [await staff(world, shop), await staff(world, shop)]
    # A fresh member QR per scan: one token pays one redemption only (kk_qr_claim), and this
    # test is about the coupon's single use.
    scans = await asyncio.gather(*(
        http.post("/merchant/scans", headers=c | idem(),
                  json={"member_token": qr(world, mid), "coupon_code": coupon["coupon_qr"]})
        for c in counters for _ in range(3)))
    ok = [s for s in scans if s.status_code == 201]
    assert len(ok) == 1, [s.text for s in scans]
    assert ok[0].json()["action"] == "redeem" and ok[0].json()["points"] == 30
    assert {s.json()["code"] for s in scans if s.status_code != 201} == {"coupon_already_used"}
    assert await pocket(pool, mid) == (70, 0)
    acct = await pool.fetchval("select redemption_account_id from merchants where id = $1", shop)
    assert await pool.fetchval(
        "select sum(posted) from account_slices where account_id = $1", acct) == 30
    assert await pool.fetchval(
        "select count(*) from transfers where kind = 'redeem' and credit_account_id = $1",
        acct) == 1
    await assert_ledger_ok(pool)


async def test_coupon_is_refused_at_a_merchant_where_it_is_not_valid_and_typed_codes_work(
        http: httpx.AsyncClient, world: World, pool: asyncpg.Pool) -> None:
    funder = await world.funder()
    shop, other = await merchant(http, world), await merchant(http, world)
    rid = await reward(http, world, [shop], cost=10)
    mid, auth = await world.member()
    await give(pool, mid, funder, 10)
    coupon = (await http.post("/redemptions", headers=auth | idem(),
                              json={"reward_id": rid})).json()
    wrong = await http.post("/merchant/scans", headers=await staff(world, other) | idem(),
                            json={"member_token": qr(world, mid),
                                  "coupon_code": coupon["coupon_code"]})
    assert wrong.status_code == 403 and wrong.json()["code"] == "coupon_wrong_merchant"
    forged = coupon["coupon_qr"][:-3] + "AAA"
    bad = await http.post("/merchant/scans", headers=await staff(world, shop) | idem(),
                          json={"member_token": qr(world, mid), "coupon_code": forged})
    assert bad.status_code == 403 and bad.json()["code"] == "coupon_qr_invalid"
    typed = coupon["coupon_code"].lower().replace("-", " ")
    ok = await http.post("/merchant/scans", headers=await staff(world, shop) | idem(),
                         json={"member_token": qr(world, mid), "coupon_code": typed})
    assert ok.status_code == 201, ok.text
    assert await pocket(pool, mid) == (0, 0)


async def test_void_at_expiry_returns_points_and_stock_exactly_once(
        http: httpx.AsyncClient, world: World, pool: asyncpg.Pool) -> None:
    funder = await world.funder()
    shop = await merchant(http, world)
    rid = await reward(http, world, [shop], cost=25, stock=5, per_member_limit=1)
    mid, auth = await world.member()
    await give(pool, mid, funder, 40)
    coupon = (await http.post("/redemptions", headers=auth | idem(),
                              json={"reward_id": rid})).json()
    assert await pocket(pool, mid) == (40, 25)
    past = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
    await pool.execute("update coupons set expires_at = $2 where id = $1",
                       coupon["redemption_id"], past)
    await pool.execute("update pending_transfers set expires_at = $2 where id ="
                       " (select pending_id from coupons where id = $1)",
                       coupon["redemption_id"], past)
    ctx = {"pool": pool, "settings": world.settings}
    counts = await asyncio.gather(*(jobs.void_expired_coupons(ctx) for _ in range(4)))
    mine = await pool.fetchval("select count(*) from coupons where id = $1 and status = 'voided'",
                               coupon["redemption_id"])
    assert mine == 1
    assert sum(counts) >= 1
    assert await pocket(pool, mid) == (40, 0)
    assert await pool.fetchval("select stock from rewards where id = $1", rid) == 5
    assert await jobs.void_expired_coupons(ctx) == 0
    assert await pocket(pool, mid) == (40, 0)
    late = await http.post("/merchant/scans", headers=await staff(world, shop) | idem(),
                           json={"member_token": qr(world, mid),
                                 "coupon_code": coupon["coupon_code"]})
    assert late.status_code == 409 and late.json()["code"] == "coupon_void"
    # The limit came back with the coupon: the member may redeem again.
    again = await http.post("/redemptions", headers=auth | idem(), json={"reward_id": rid})
    assert again.status_code == 201
    await assert_ledger_ok(pool)


async def test_member_on_hold_cannot_redeem_and_catalogue_lists_merchant_pins(
        http: httpx.AsyncClient, world: World, pool: asyncpg.Pool) -> None:
    funder = await world.funder()
    shop = await merchant(http, world)
    rid = await reward(http, world, [shop], cost=5)
    mid, auth = await world.member()
    await give(pool, mid, funder, 10)
    await pool.execute("update members set status = 'on_hold' where id = $1", mid)
    r = await http.post("/redemptions", headers=auth | idem(), json={"reward_id": rid})
    assert r.status_code == 403 and r.json()["code"] == "member_on_hold"
    assert await pocket(pool, mid) == (10, 0)
    cat = await http.get("/rewards", headers=auth, params={"merchant_id": shop})
    item = next(i for i in cat.json()["items"] if i["id"] == rid)
    assert item["merchants"][0]["id"] == shop
    assert {"lat", "lon", "district_code"} <= set(item["merchants"][0])
    missing = await http.post("/redemptions", headers=auth, json={"reward_id": rid})
    assert missing.status_code == 400
