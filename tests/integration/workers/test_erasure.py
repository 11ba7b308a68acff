"""PDPA erasure is complete (issue #14 point 7): a member is seeded everywhere a personal value
can land (check-ins, fraud projections and alerts, outbox payloads, OTP, notification
recipients, LINE webhook events), then erased; every text and JSON column of every table is
scanned for their LINE id, phone, name and coordinates. Erasure is refused while on hold or
banned; the export has check-ins and coupons; processed outbox payloads lose personal keys."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import random
import uuid
from typing import Any

import asyncpg
import httpx

from kuekan.outbox.jobs import handle_outbox
from kuekan.privacy import jobs as privacy_jobs
from kuekan.settings import Settings
from tests.conftest import World, assert_ledger_ok, idem
from tests.integration.missions.helpers import box, create_fence, create_mission
from tests.integration.rewards.helpers import give, merchant, reward

TEXT_TYPES = ("text", "character varying", "json", "jsonb", "ARRAY")


async def _columns(pool: asyncpg.Pool, types: tuple[str, ...]) -> list[tuple[str, str]]:
    rows = await pool.fetch(
        "select c.table_name, c.column_name from information_schema.columns c"
        " join information_schema.tables t on t.table_schema = c.table_schema"
        "  and t.table_name = c.table_name and t.table_type = 'BASE TABLE'"
        " where c.table_schema = 'public' and c.data_type = any($1::text[])", list(types))
    return [(r["table_name"], r["column_name"]) for r in rows]


async def _where_found(pool: asyncpg.Pool, needles: dict[str, str]) -> list[tuple[str, ...]]:
    """(what, table, column) for every text/json column holding one of the needles."""
    found = []
    for table, column in await _columns(pool, TEXT_TYPES):
        for what, needle in needles.items():
            hit = await pool.fetchval(
                f'select exists (select 1 from "{table}" where "{column}"::text'  # noqa: S608
                " like '%' || $1 || '%')", needle)
            if hit:
                found.append((what, table, column))
    return found


async def _coordinates_found(pool: asyncpg.Pool, lat: float, lon: float) -> list[str]:
    found = []
    for table, column in await _columns(pool, ("double precision", "numeric")):
        value = lat if "lat" in column else lon if "lon" in column else None
        if value is not None and await pool.fetchval(
                f'select exists (select 1 from "{table}"'  # noqa: S608
                f' where abs("{column}" - $1) < 1e-9)', value):
            found.append(f"{table}.{column}")
    return found


def _signed(settings: Settings, body: dict[str, Any]) -> tuple[bytes, str]:
    raw = json.dumps(body).encode()
    sig = hmac.new(settings.line_channel_secret.encode(), raw, hashlib.sha256).digest()
    return raw, base64.b64encode(sig).decode()


async def test_erasure_leaves_no_line_id_phone_name_or_coordinates_in_any_table(
        http: httpx.AsyncClient, world: World, pool: asyncpg.Pool, settings: Settings,
        ctx: dict[str, Any]) -> None:
    mid, me = await world.member()
    sub = await pool.fetchval("select line_sub from members where id = $1", mid)
    name = f"สมศรี ทดสอบ{uuid.uuid4().hex[:6]}"
    await pool.execute("update members set display_name = $2 where id = $1", mid, name)
    # Distinctive coordinates inside a fresh fence (Korat city) and a fresh device id.
    lat = round(14.97 + random.uniform(0.0001, 0.0009), 7)
    lon = round(102.10 + random.uniform(0.0001, 0.0009), 7)
    device = f"dev-{uuid.uuid4().hex}"
    admin, funder = await world.admin(), await world.funder()

    # Phone: OTP requested (outbox + challenge) and verified (notification preferences).
    local = f"08{random.randint(10_000_000, 99_999_999)}"
    otp = await http.post("/me/phone/otp", headers=me, json={"phone": local})
    assert otp.status_code == 202, otp.text
    phone = await pool.fetchval("select phone from otp_challenges where id = $1",
                                uuid.UUID(otp.json()["challenge_id"]))
    code = await pool.fetchval("select payload->>'code' from outbox where topic ="
                               " 'otp.requested' and member_id = $1", mid)
    ok = await http.post("/me/phone/verify", headers=me,
                         json={"challenge_id": otp.json()["challenge_id"], "code": code})
    assert ok.status_code == 200, ok.text

    # A check-in with coordinates and a device id, projected by the fraud worker.
    fence = await create_fence(http, admin, f"erasure-{uuid.uuid4().hex[:6]}", box(lat, lon))
    mission = await create_mission(http, admin, funder, geofence_id=fence["id"])
    ci = await http.post("/checkins", headers=me | idem(), json={
        "mission_id": mission["id"], "lat": lat, "lon": lon, "accuracy_m": 8,
        "device_id": device})
    assert ci.status_code == 201, ci.text
    for oid in await pool.fetchval("select array_agg(id) from outbox where member_id = $1"
                                   " and topic = 'checkin.completed'", mid):
        await handle_outbox(ctx, oid)
    assert await pool.fetchval("select count(*) from fraud_checkins where member_id = $1"
                               " and device_id = $2", mid, device) == 1
    # A coupon (for the export), a LINE follow event, sends, and fraud evidence.
    shop = await merchant(http, world, funder=funder)
    await give(pool, mid, funder, 50)
    red = await http.post("/redemptions", headers=me | idem(),
                          json={"reward_id": await reward(http, world, [shop], cost=10)})
    assert red.status_code == 201, red.text
    raw, sig = _signed(settings, {"destination": "Ubot", "events": [{
        "type": "follow", "webhookEventId": uuid.uuid4().hex, "timestamp": 1,
        "mode": "active", "source": {"type": "user", "userId": sub},
        "deliveryContext": {"isRedelivery": False}}]})
    hook = await http.post("/line/webhook", content=raw, headers={
        "x-line-signature": sig, "content-type": "application/json"})
    assert hook.status_code == 200 and hook.json()["handled"] == 1, hook.text
    # The member's own push and SMS (texts may name them), and a multicast to many.
    for member_id, recipients, text in ((mid, [sub], f"สวัสดี {name}"),
                                        (mid, [phone], f"รหัส {code}"),
                                        (None, [sub, "Uother", phone], "ประกาศ")):
        await pool.execute(
            "insert into notify_messages (dedup_key, kind, channel, endpoint, member_id,"
            " recipients, messages, retry_key) values ($1, 'digest', 'line', 'push', $2, $3,"
            " $4, $5)", uuid.uuid4().hex, member_id, recipients,
            [{"type": "text", "text": text}], uuid.uuid4())
    await pool.execute(
        "insert into fraud_alerts (rule, reason_code, severity, member_id, device_id, evidence)"
        " values ('device_many_accounts', 'test', 'low', $1, $2, $3)", mid, device,
        {"device_id": device, "lat": lat, "lon": lon, "line_sub": sub})

    export = (await http.get("/me/export", headers=me)).json()
    assert [(c["lat"], c["device_id"]) for c in export["checkins"]] == [(lat, device)]
    assert [c["code"] for c in export["coupons"]] == [red.json()["coupon_code"]]

    needles = {"line_id": sub, "phone": phone, "phone_local": local[1:], "name": name,
               "lat": repr(lat), "lon": repr(lon), "device": device}
    before = {w for w, _, _ in await _where_found(pool, needles)}
    assert before == set(needles), before  # the seed really put every value somewhere

    # Not an escape hatch: refused while on hold (or banned).
    await pool.execute("update members set status = 'on_hold' where id = $1", mid)
    held = await http.post("/me/erasure", headers=me, json={"confirm": True})
    assert held.status_code == 403 and held.json()["code"] == "erasure_refused_on_hold"
    assert await pool.fetchval("select line_sub from members where id = $1", mid) == sub
    await pool.execute("update members set status = 'active' where id = $1", mid)

    erased = await http.post("/me/erasure", headers=me, json={"confirm": True})
    assert erased.status_code == 200, erased.text
    assert await _where_found(pool, needles) == []
    assert await _coordinates_found(pool, lat, lon) == []
    # The ledger is whole under the pseudonym.
    assert await pool.fetchval("select posted from member_balances where member_id = $1",
                               mid) > 0
    await assert_ledger_ok(pool)


async def test_processed_outbox_payloads_lose_personal_keys_after_the_retention(
        pool: asyncpg.Pool, ctx: dict[str, Any]) -> None:
    oid = await pool.fetchval(
        "insert into outbox (topic, member_id, payload) values ('test.personal', null, $1)"
        " returning id", {"lat": 14.1, "lon": 102.2, "phone": "+66800000000", "points": 5})
    fresh = await pool.fetchval(
        "insert into outbox (topic, member_id, payload) values ('test.personal', null, $1)"
        " returning id", {"lat": 14.1, "device_id": "d", "points": 6})
    await pool.execute("insert into outbox_processed (outbox_id, processed_at) values"
                       " ($1, now() - interval '2 days'), ($2, now())", oid, fresh)
    assert await privacy_jobs.purge_outbox_personal(ctx) >= 1
    assert await pool.fetchval("select payload from outbox where id = $1", oid) == {"points": 5}
    # Processed moments ago: its handlers' neighbours (analytics) may still read it.
    assert (await pool.fetchval("select payload from outbox where id = $1", fresh))["lat"]
    now = dt.datetime.now(dt.UTC) + dt.timedelta(days=2)
    await privacy_jobs.purge_outbox_personal(ctx, now=now)
    assert await pool.fetchval("select payload from outbox where id = $1", fresh) == {"points": 6}
