"""Offline scans bounded by the member QR's validity, one award and one redemption per QR, the
merchant's offline cap (issue #14 point 4), and suspended merchants and held members stopped
on every route that moves points (point 5)."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

import asyncpg
import httpx
import pytest

from kuekan.errors import DomainError, known
from kuekan.kit.clock import bangkok_day
from tests.conftest import World, assert_ledger_ok, idem
from tests.integration.rewards.helpers import give, merchant, pocket, qr, reward, staff

QR_TTL_S = 60


def _item(key: str, when: dt.datetime, tok: str, **action: Any) -> dict[str, Any]:
    return {"idempotency_key": key, "member_token": tok, "scanned_at": when.isoformat(),
            **action}


def _codes(r: httpx.Response) -> list[tuple[int, str | None]]:
    assert r.status_code == 200, r.text
    return [(i["status"], (i.get("problem") or {}).get("code")) for i in r.json()["items"]]


async def _coupon(http: httpx.AsyncClient, world: World, pool: asyncpg.Pool, shop: int,
                  mid: int, auth: dict[str, str], funder: int) -> str:
    rid = await reward(http, world, [shop], cost=10)
    await give(pool, mid, funder, 10)
    r = await http.post("/redemptions", headers=auth | idem(), json={"reward_id": rid})
    assert r.status_code == 201, r.text
    return str(r.json()["coupon_code"])


async def test_a_backdated_offline_scan_is_refused_and_one_qr_pays_one_award_and_one_redemption(
        http: httpx.AsyncClient, world: World, pool: asyncpg.Pool) -> None:
    funder = await world.funder()
    shop = await merchant(http, world, funder=funder, thb_per_point=10)
    counter = await staff(world, shop)
    mid, auth = await world.member()
    first = await _coupon(http, world, pool, shop, mid, auth, funder)
    second = await _coupon(http, world, pool, shop, mid, auth, funder)
    issued = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=10)
    token = qr(world, mid, at=issued.timestamp())
    later = issued + dt.timedelta(seconds=20)
    items = [
        # Before the QR existed: the old attack spread one QR over 72 h of backdated items.
        _item("b1", issued - dt.timedelta(hours=5), token, purchase_thb=200),
        _item("b2", later, token, purchase_thb=200),
        _item("b3", later + dt.timedelta(seconds=5), token, purchase_thb=300),
        _item("b4", later, token, coupon_code=first),
        _item("b5", later, token, coupon_code=second),
        _item("b6", issued + dt.timedelta(seconds=QR_TTL_S + 30), token, purchase_thb=200),
    ]
    r = await http.post("/merchant/scans/batch", headers=counter, json={"items": items})
    assert _codes(r) == [(409, "scan_time_before_token"), (201, None),
                         (409, "member_token_used"), (201, None), (409, "member_token_used"),
                         (403, "member_token_expired")]
    # 20 awarded; 10 + 10 given and 10 spent on the one posted coupon, 10 still reserved.
    assert await pocket(pool, mid) == (30, 10)
    # Online too: a second purchase with the same QR needs a fresh one.
    fresh = qr(world, mid)
    ok = await http.post("/merchant/scans", headers=counter | idem(),
                         json={"member_token": fresh, "purchase_thb": 100})
    assert ok.status_code == 201, ok.text
    again = await http.post("/merchant/scans", headers=counter | idem(),
                            json={"member_token": fresh, "purchase_thb": 100})
    assert again.status_code == 409 and again.json()["code"] == "member_token_used"
    await assert_ledger_ok(pool)


async def test_the_database_itself_refuses_a_scan_outside_the_tokens_validity(
        pool: asyncpg.Pool, http: httpx.AsyncClient, world: World) -> None:
    """Whatever the API sends, kk_purchase_scan checks iat - skew <= scanned_at <= exp."""
    shop = await merchant(http, world)
    mid, _ = await world.member()
    iat = int(time.time()) - 3600
    call = ("select kk_purchase_scan($1, $2, $3, 5, $4, 1000, $5::jsonb, 16)")
    cases = {
        "member_token_invalid": {"merchant_id": shop},  # no token validity given at all
        "scan_time_before_token": {"qr": {"iat": iat, "exp": iat + 60, "skew_s": 300},
                                   "scanned_at": dt.datetime.fromtimestamp(
                                       iat - 3600, dt.UTC).isoformat()},
        "member_token_expired": {"qr": {"iat": iat, "exp": iat + 60, "skew_s": 300},
                                 "scanned_at": dt.datetime.fromtimestamp(
                                     iat + 61, dt.UTC).isoformat()},
    }
    for i, (code, ref) in enumerate(cases.items()):
        with pytest.raises(asyncpg.PostgresError) as exc:
            await pool.fetchval(call, mid, shop, f"jti-db-{mid}-{i}", bangkok_day(), ref)
        assert str(exc.value) == code
    assert await pocket(pool, mid) == (0, 0)


async def test_offline_awards_stop_at_the_merchants_offline_daily_cap(
        http: httpx.AsyncClient, world: World, pool: asyncpg.Pool) -> None:
    admin = await world.admin()
    r = await http.post("/admin/merchants", headers=admin, json={
        "name": "ร้านออฟไลน์", "district_code": "3001", "lat": 14.97, "lon": 102.1,
        "category": "food", "thb_per_point": 10, "funder_id": await world.funder(),
        "offline_daily_cap_points": 50})
    assert r.status_code == 201 and r.json()["offline_daily_cap_points"] == 50
    shop = r.json()["id"]
    counter = await staff(world, shop)
    at = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=3)
    members = [await world.member() for _ in range(3)]
    items = [_item(f"c{i}", at, qr(world, m, at=at.timestamp() - 5), purchase_thb=200)
             for i, (m, _) in enumerate(members)]
    assert _codes(await http.post("/merchant/scans/batch", headers=counter,
                                  json={"items": items})) == [
        (201, None), (201, None), (409, "merchant_offline_cap_reached")]
    assert await pool.fetchval("select points from merchant_offline_daily where merchant_id = $1",
                               shop) == 40
    assert await pocket(pool, members[2][0]) == (0, 0)
    # The online counter is not the offline one: a live scan still awards.
    live = await http.post("/merchant/scans", headers=counter | idem(),
                           json={"member_token": qr(world, members[2][0]), "purchase_thb": 200})
    assert live.status_code == 201, live.text


async def test_a_suspended_merchant_can_neither_award_nor_redeem_online_or_offline(
        http: httpx.AsyncClient, world: World, pool: asyncpg.Pool) -> None:
    funder = await world.funder()
    shop = await merchant(http, world, funder=funder)
    counter = await staff(world, shop)
    mid, auth = await world.member()
    code = await _coupon(http, world, pool, shop, mid, auth, funder)
    pao = await world.admin("pao")
    r = await http.post("/admin/fraud/blacklist", headers=pao,
                        json={"kind": "merchant", "value": str(shop), "reason": "test"})
    assert r.status_code == 201, r.text
    routes = {
        # Reports of new activity stop too: the staff check refuses every merchant route.
        "daily report": lambda: http.get("/merchant/reports/daily", headers=counter),
        "monthly report": lambda: http.get("/merchant/reports/monthly", headers=counter),
        "shop analytics": lambda: http.get("/merchant/analytics/daily", headers=counter),
        "scan purchase": lambda: http.post(
            "/merchant/scans", headers=counter | idem(),
            json={"member_token": qr(world, mid), "purchase_thb": 100}),
        "scan coupon": lambda: http.post(
            "/merchant/scans", headers=counter | idem(),
            json={"member_token": qr(world, mid), "coupon_code": code}),
    }
    for name, call in routes.items():
        res = await call()
        assert res.status_code == 403 and res.json()["code"] == "merchant_suspended", (name,
                                                                                       res.text)
    at = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
    batch = await http.post("/merchant/scans/batch", headers=counter, json={"items": [
        _item("s1", at, qr(world, mid, at=at.timestamp() - 5), purchase_thb=100),
        _item("s2", at, qr(world, mid, at=at.timestamp() - 5), coupon_code=code)]})
    # The whole upload is refused at the door (the staff check), before any item.
    assert batch.status_code == 403 and batch.json()["code"] == "merchant_suspended"
    # Nothing moved: the coupon is still issued, the points still reserved, no award.
    assert await pocket(pool, mid) == (10, 10)
    assert await pool.fetchval("select status from coupons where code = $1", code) == "issued"


async def test_the_database_refuses_a_coupon_at_a_suspended_merchant(
        http: httpx.AsyncClient, world: World, pool: asyncpg.Pool) -> None:
    funder = await world.funder()
    shop = await merchant(http, world, funder=funder)
    mid, auth = await world.member()
    code = await _coupon(http, world, pool, shop, mid, auth, funder)
    await pool.execute("update merchants set status = 'suspended' where id = $1", shop)
    now = int(time.time())
    with pytest.raises(asyncpg.PostgresError) as exc:
        await pool.fetchval("select kk_scan_coupon($1, $2, $3, $4, $5::jsonb, 16)", code, mid,
                            shop, f"jti-susp-{mid}", {"qr": {"iat": now, "exp": now + 60}})
    assert str(exc.value) == "merchant_suspended"


async def test_a_held_or_banned_member_is_refused_on_every_route_that_moves_points(
        http: httpx.AsyncClient, world: World, pool: asyncpg.Pool) -> None:
    funder = await world.funder()
    shop = await merchant(http, world, funder=funder)
    counter = await staff(world, shop)
    rid = await reward(http, world, [shop], cost=10)
    for status in ("on_hold", "banned"):
        mid, auth = await world.member()
        code = await _coupon(http, world, pool, shop, mid, auth, funder)
        await give(pool, mid, funder, 50)
        await pool.execute("update members set status = $2 where id = $1", mid, status)
        at = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
        calls = {
            "POST /redemptions": http.post("/redemptions", headers=auth | idem(),
                                           json={"reward_id": rid}),
            "POST /merchant/scans purchase": http.post(
                "/merchant/scans", headers=counter | idem(),
                json={"member_token": qr(world, mid), "purchase_thb": 100}),
            "POST /merchant/scans coupon": http.post(
                "/merchant/scans", headers=counter | idem(),
                json={"member_token": qr(world, mid), "coupon_code": code}),
        }
        for name, call in calls.items():
            res = await call
            assert res.status_code == 403 and res.json()["code"] == "member_on_hold", (
                status, name, res.text)
        batch = await http.post("/merchant/scans/batch", headers=counter, json={"items": [
            _item(f"h1-{status}", at, qr(world, mid, at=at.timestamp() - 5), purchase_thb=100),
            _item(f"h2-{status}", at, qr(world, mid, at=at.timestamp() - 5), coupon_code=code)]})
        assert _codes(batch) == [(403, "member_on_hold")] * 2, status
        assert await pocket(pool, mid) == (60, 10), status
    await assert_ledger_ok(pool)


def test_refusal_codes_of_this_point_have_thai_and_english_texts() -> None:
    from kuekan.rewards.refusals import REFUSALS

    for code in ("member_token_used", "scan_time_before_token", "merchant_suspended",
                 "merchant_offline_cap_reached"):
        e = known(code)
        assert isinstance(e, DomainError) and code in REFUSALS and e.message_th
