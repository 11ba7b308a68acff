"""Notification jobs end to end on real PostgreSQL and the fake LINE server over HTTP: the
points digest, coupon and points expiry reminders, new missions near a member's district, the
narrowcast path and the monthly quota."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import asyncpg
import httpx

from kuekan.kit.clock import BANGKOK, bangkok_day
from kuekan.members.model import add_months
from kuekan.notify import jobs as notify_jobs
from kuekan.notify.line import LineClient
from kuekan.outbox.jobs import handle_outbox
from tests.conftest import World, idem
from tests.fakes.line_server import FakeLineServer
from tests.integration.missions.helpers import box, create_fence, create_mission, inside_point
from tests.integration.rewards.helpers import give, merchant, qr, reward, staff
from tests.integration.workers.conftest import add_outbox

PUSH = "/v2/bot/message/push"


async def sub_of(pool: asyncpg.Pool, member: int) -> str:
    return str(await pool.fetchval("select line_sub from members where id = $1", member))


async def opt_out(pool: asyncpg.Pool, member: int) -> None:
    await pool.execute("insert into notify_prefs (member_id, line_opt_in) values ($1, false)",
                       member)


async def process_member_events(ctx: dict[str, Any], pool: asyncpg.Pool, member: int) -> int:
    ids = [r["id"] for r in await pool.fetch(
        "select id from outbox o where member_id = $1 and not exists"
        " (select 1 from outbox_processed p where p.outbox_id = o.id) order by id", member)]
    for oid in ids:
        assert await handle_outbox(ctx, oid) == "done"
    return len(ids)


async def deliver_all(ctx: dict[str, Any], pool: asyncpg.Pool, where: str,
                      *args: Any) -> list[str]:
    ids = [r["id"] for r in await pool.fetch(
        f"select id from notify_messages where {where} order by id", *args)]  # noqa: S608
    return [await notify_jobs.deliver_message(ctx, i) for i in ids]


def pushes_to(server: FakeLineServer, sub: str) -> list[Any]:
    return [d for d in server.deliveries if d.endpoint == "push" and d.to == [sub]]


# Points digest --------------------------------------------------------------------------------
async def test_digest_is_one_push_per_member_day_with_the_total(
        ctx: dict[str, Any], pool: asyncpg.Pool, http: httpx.AsyncClient, world: World,
        line: LineClient, line_server: FakeLineServer) -> None:
    ctx = {**ctx, "line": line}
    shop = await merchant(http, world, thb_per_point=10)
    cashier = await staff(world, shop)
    member, _ = await world.member()
    quiet, _ = await world.member()  # unfollowed the account: no digest
    await opt_out(pool, quiet)
    for m, thb in ((member, 100), (member, 200), (member, 300), (quiet, 400)):
        r = await http.post("/merchant/scans", headers=idem(**cashier), json={
            "member_token": qr(world, m), "purchase_thb": thb})
        assert r.status_code == 201, r.text
    now = dt.datetime.now(dt.UTC).isoformat()
    for _ in range(2):  # two check-ins during the event, as kk_checkin_idem writes them
        await add_outbox(pool, "checkin.completed", {"member_id": member, "points_awarded": 5,
                                                     "at": now}, member)
    assert await process_member_events(ctx, pool, member) == 5
    assert await process_member_events(ctx, pool, quiet) == 1
    day = bangkok_day()
    row = await pool.fetchrow("select points, checkins from notify_digest where member_id = $1"
                              " and day = $2", member, day)
    assert row is not None and (row["points"], row["checkins"]) == (70, 2)

    await notify_jobs.send_points_digests(ctx, day)
    msg = await pool.fetchrow("select * from notify_messages where dedup_key = $1",
                              f"digest:{member}:{day}:0")
    assert msg is not None and msg["status"] == "pending" and msg["attempts"] == 0
    stored_key = str(msg["retry_key"])  # committed before any attempt
    line_server.fail_next(1, 429, path=PUSH, retry_after=0)
    assert await notify_jobs.deliver_message(ctx, msg["id"]) == "sent"

    sub = await sub_of(pool, member)
    sent = pushes_to(line_server, sub)
    assert len(sent) == 1, sent
    assert "70" in sent[0].messages[0]["text"] and "2" in sent[0].messages[0]["text"]
    attempts = [r for r in line_server.requests_to(PUSH) if r.json["to"] == sub]
    assert len(attempts) == 2  # the 429, then the accepted retry
    assert {r.headers["x-line-retry-key"] for r in attempts} == {stored_key}
    # The opted-out member: planned or not, never pushed.
    await deliver_all(ctx, pool, "dedup_key = $1", f"digest:{quiet}:{day}:0")
    assert pushes_to(line_server, await sub_of(pool, quiet)) == []

    # A rerun of the cron, and of the delivery job, sends nothing more.
    await notify_jobs.send_points_digests(ctx, day)
    assert await pool.fetchval("select count(*) from notify_messages where dedup_key like $1",
                               f"digest:{member}:%") == 1
    assert await notify_jobs.deliver_message(ctx, msg["id"]) == "sent"
    assert len(pushes_to(line_server, sub)) == 1

    # Points that arrive after the digest went out: the next run reports only those, once.
    await add_outbox(pool, "checkin.completed", {"member_id": member, "points_awarded": 15,
                                                 "at": now}, member)
    assert await process_member_events(ctx, pool, member) == 1
    await notify_jobs.send_points_digests(ctx, day)
    late = await pool.fetchrow("select * from notify_messages where dedup_key = $1",
                               f"digest:{member}:{day}:70")
    assert late is not None
    assert await notify_jobs.deliver_message(ctx, late["id"]) == "sent"
    sent = pushes_to(line_server, sub)
    assert len(sent) == 2 and "15" in sent[1].messages[0]["text"]
    assert "70" not in sent[1].messages[0]["text"]
    await notify_jobs.send_points_digests(ctx, day)
    assert await pool.fetchval("select count(*) from notify_messages where dedup_key like $1",
                               f"digest:{member}:%") == 2


async def test_digest_days_follow_asia_bangkok_midnight(
        ctx: dict[str, Any], pool: asyncpg.Pool, world: World) -> None:
    member, _ = await world.member()
    before = dt.datetime(2025, 3, 10, 23, 59, tzinfo=BANGKOK)  # 16:59 UTC
    after = dt.datetime(2025, 3, 11, 0, 1, tzinfo=BANGKOK)  # 17:01 UTC, the same UTC day
    for at, pts in ((before, 7), (after, 9)):
        await add_outbox(pool, "checkin.completed",
                         {"points_awarded": pts, "at": at.astimezone(dt.UTC).isoformat()}, member)
    await process_member_events(ctx, pool, member)
    rows = await pool.fetch("select day, points from notify_digest where member_id = $1"
                            " order by day", member)
    assert [(r["day"], r["points"]) for r in rows] == [(dt.date(2025, 3, 10), 7),
                                                       (dt.date(2025, 3, 11), 9)]


# Coupon and points expiry ---------------------------------------------------------------------
async def redeem(http: httpx.AsyncClient, me: dict[str, str], reward_id: int) -> None:
    r = await http.post("/redemptions", headers=idem(**me), json={"reward_id": reward_id})
    assert r.status_code == 201, r.text


async def test_coupon_expiring_in_three_days_is_pushed_once_to_the_right_members(
        ctx: dict[str, Any], pool: asyncpg.Pool, http: httpx.AsyncClient, world: World,
        line: LineClient, line_server: FakeLineServer) -> None:
    ctx = {**ctx, "line": line}
    funder = await world.funder()
    shop = await merchant(http, world, funder=funder)
    in3, in4 = (await reward(http, world, [shop], valid_days=3),
                await reward(http, world, [shop], valid_days=4))
    due, later, quiet, used = [await world.member() for _ in range(4)]
    for m, _ in (due, later, quiet, used):
        await give(pool, m, funder, 100)
    await redeem(http, due[1], in3)
    await redeem(http, later[1], in4)
    await opt_out(pool, quiet[0])
    await redeem(http, quiet[1], in3)
    await redeem(http, used[1], in3)
    # A coupon already used is not reminded (status no longer 'issued').
    await pool.execute("update coupons set status = 'voided', resolved_at = now()"
                       " where member_id = $1", used[0])
    mine = [due[0], later[0], quiet[0], used[0]]

    await notify_jobs.notify_coupons_expiring(ctx, bangkok_day())
    planned = await pool.fetch("select member_id from notify_messages where kind ="
                               " 'coupon_expiring' and member_id = any($1::bigint[])", mine)
    assert [r["member_id"] for r in planned] == [due[0]]
    await deliver_all(ctx, pool, "kind = 'coupon_expiring' and member_id = $1", due[0])
    (push,) = pushes_to(line_server, await sub_of(pool, due[0]))
    assert "คูปองทดสอบ" in push.messages[0]["text"] and "3" in push.messages[0]["text"]
    # Tomorrow's run sees the 4-day coupon; today's rerun sends nothing more.
    await notify_jobs.notify_coupons_expiring(ctx, bangkok_day())
    await deliver_all(ctx, pool, "kind = 'coupon_expiring' and member_id = any($1::bigint[])",
                      mine)
    assert len(line_server.deliveries) == 1
    await notify_jobs.notify_coupons_expiring(ctx, bangkok_day() + dt.timedelta(days=1))
    assert await pool.fetchval("select array_agg(member_id order by id) from notify_messages"
                               " where kind = 'coupon_expiring'"
                               " and member_id = any($1::bigint[])", mine) == [due[0], later[0]]


async def test_points_expiring_this_month_picks_the_lots_that_expire_this_month(
        ctx: dict[str, Any], pool: asyncpg.Pool, world: World, line: LineClient,
        line_server: FakeLineServer) -> None:
    ctx = {**ctx, "line": line}
    months = ctx["settings"].points_expiry_months
    first = bangkok_day().replace(day=1)
    expiring_lot = add_months(first, -months) + dt.timedelta(days=4)
    next_month_lot = add_months(first, -months + 1) + dt.timedelta(days=4)
    funder = await world.funder()
    due, later, quiet = [(await world.member())[0] for _ in range(3)]
    await give(pool, due, funder, 50, expiring_lot)
    await give(pool, due, funder, 11, next_month_lot)  # not this month's: not in the total
    await give(pool, later, funder, 60, next_month_lot)
    await give(pool, quiet, funder, 70, expiring_lot)
    await opt_out(pool, quiet)
    mine = [due, later, quiet]

    assert await notify_jobs.notify_points_expiring(ctx, first + dt.timedelta(days=1)) == 0
    await notify_jobs.notify_points_expiring(ctx, first)
    planned = await pool.fetch("select member_id from notify_messages where kind ="
                               " 'points_expiring' and member_id = any($1::bigint[])", mine)
    assert [r["member_id"] for r in planned] == [due]
    await deliver_all(ctx, pool, "kind = 'points_expiring' and member_id = $1", due)
    (push,) = pushes_to(line_server, await sub_of(pool, due))
    assert "50 แต้ม" in push.messages[0]["text"]
    await notify_jobs.notify_points_expiring(ctx, first)  # rerun
    await deliver_all(ctx, pool, "kind = 'points_expiring' and member_id = any($1::bigint[])",
                      mine)
    assert len(line_server.deliveries) == 1


# New mission near the member's district -------------------------------------------------------
async def test_a_new_mission_is_announced_once_to_its_district_only(
        ctx: dict[str, Any], pool: asyncpg.Pool, http: httpx.AsyncClient, world: World,
        line: LineClient, line_server: FakeLineServer) -> None:
    ctx = {**ctx, "line": line}
    admin, funder = await world.admin(), await world.funder()
    district, elsewhere = "3019", "3002"
    near_th, near_en, far, quiet = [(await world.member())[0] for _ in range(4)]
    await pool.execute("update members set district_code = $1 where id = any($2::bigint[])",
                       district, [near_th, near_en, quiet])
    await pool.execute("update members set district_code = $1 where id = $2", elsewhere, far)
    await pool.execute("insert into notify_prefs (member_id, lang) values ($1, 'en')", near_en)
    await opt_out(pool, quiet)
    lat, lon = inside_point(district)
    fence = await create_fence(http, admin, f"venue {uuid.uuid4().hex[:6]}", box(lat, lon))
    title = f"ไหว้พระ {uuid.uuid4().hex[:6]}"
    mission = await create_mission(http, admin, funder, geofence_id=fence["id"],
                                   title_th=title, title_en="Temple walk")

    await notify_jobs.notify_new_missions(ctx)
    msgs = await pool.fetch("select id, recipients, messages from notify_messages"
                            " where dedup_key like $1 order by dedup_key",
                            f"mission_nearby:{mission['id']}:%")
    subs = {m: await sub_of(pool, m) for m in (near_th, near_en, far, quiet)}
    by_text = {m["messages"][0]["text"]: set(m["recipients"]) for m in msgs}
    th_text = next(t for t in by_text if title in t)
    en_text = next(t for t in by_text if "Temple walk" in t)
    assert subs[near_th] in by_text[th_text] and subs[near_en] in by_text[en_text]
    everyone = set().union(*by_text.values())
    assert subs[far] not in everyone and subs[quiet] not in everyone
    for m in msgs:
        assert await notify_jobs.deliver_message(ctx, m["id"]) == "sent"
    calls = len(line_server.deliveries)
    # The next cron run (every 5 minutes) announces nothing again.
    await notify_jobs.notify_new_missions(ctx)
    assert await pool.fetchval("select count(*) from notify_messages where dedup_key like $1",
                               f"mission_nearby:{mission['id']}:%") == len(msgs)
    assert len(line_server.deliveries) == calls == len(msgs)


# Province broadcast: narrowcast to district audiences, and the monthly quota -----------------
async def broadcast(http: httpx.AsyncClient, world: World, pool: asyncpg.Pool,
                    ctx: dict[str, Any], districts: list[str]) -> list[int]:
    r = await http.post("/admin/broadcasts", headers=await world.admin(), json={
        "title": "น้ำท่วม", "body": "ขึ้นที่สูง", "kind": "disaster", "district_codes": districts})
    assert r.status_code == 202, r.text
    oid = await pool.fetchval("select id from outbox where topic = 'broadcast.requested'"
                              " and payload ->> 'broadcast_id' = $1", str(r.json()["id"]))
    assert await handle_outbox(ctx, oid) == "done"
    return [r["id"] for r in await pool.fetch(
        "select id from notify_messages where outbox_id = $1 order by id", oid)]


async def test_districts_with_line_audiences_get_one_narrowcast(
        ctx: dict[str, Any], pool: asyncpg.Pool, http: httpx.AsyncClient, world: World,
        line: LineClient, line_server: FakeLineServer) -> None:
    import msgspec

    d1, d2 = f"N{uuid.uuid4().hex[:6]}", f"N{uuid.uuid4().hex[:6]}"
    settings = msgspec.structs.replace(ctx["settings"],
                                       line_district_audiences={d1: 111, d2: 222})
    ctx = {**ctx, "line": line, "settings": settings}
    members = [m for m, _ in await world.members(3)]
    await pool.execute("update members set district_code = $1 where id = any($2::bigint[])",
                       d1, members)
    (mid,) = await broadcast(http, world, pool, ctx, [d1, d2])
    assert await notify_jobs.deliver_message(ctx, mid) == "sent"
    (call,) = line_server.deliveries
    assert call.endpoint == "narrowcast"
    sent = line_server.requests_to("/v2/bot/message/narrowcast")[0].json
    assert sent["recipient"] == {"type": "operator", "or": [
        {"type": "audience", "audienceGroupId": 111},
        {"type": "audience", "audienceGroupId": 222}]}
    assert await pool.fetchval("select options -> 'audience_size' from notify_messages"
                               " where id = $1", mid) == 3


async def test_a_campaign_that_would_exceed_the_monthly_quota_is_refused(
        ctx: dict[str, Any], pool: asyncpg.Pool, http: httpx.AsyncClient,
        world: World) -> None:
    district = f"Q{uuid.uuid4().hex[:6]}"
    members = [m for m, _ in await world.members(30)]
    await pool.execute("update members set district_code = $1 where id = any($2::bigint[])",
                       district, members)
    # 1,000 a month, 980 used: 30 recipients do not fit, so nothing is sent at all.
    with FakeLineServer(quota_limit=1000, usage=980) as server:
        async with LineClient(server.base_url, server.channel_access_token, max_retries=1,
                              backoff_base_s=0.001, backoff_max_s=0.01) as client:
            (mid,) = await broadcast(http, world, pool, {**ctx, "line": client}, [district])
            assert await notify_jobs.deliver_message({**ctx, "line": client}, mid) == "skipped"
            assert server.deliveries == []
            assert [r.path for r in server.requests] == ["/v2/bot/message/quota",
                                                         "/v2/bot/message/quota/consumption"]
        row = await pool.fetchrow("select status, error from notify_messages where id = $1", mid)
        assert row is not None and (row["status"], row["error"]) == ("skipped", "monthly_quota")
        # Within the quota the same kind of campaign goes out.
        server.usage = 970
        async with LineClient(server.base_url, server.channel_access_token) as client:
            (ok,) = await broadcast(http, world, pool, {**ctx, "line": client}, [district])
            assert await notify_jobs.deliver_message({**ctx, "line": client}, ok) == "sent"
        assert [len(d.to) for d in server.deliveries] == [30]
