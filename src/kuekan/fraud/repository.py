"""The only caller of the fraud tables' SQL (and the ledger functions reviews call)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from kuekan.fraud.model import Checkin, Finding

Conn = asyncpg.Connection | PoolConnectionProxy

Db = asyncpg.Pool | Conn


async def mission_context(conn: Conn, mission_id: int | None,
                          at: dt.datetime) -> tuple[int | None, bool]:
    """(geofence id, whether ``at`` is inside that mission's scheduled event window)."""
    if mission_id is None:
        return None, False
    row = await conn.fetchrow(
        "select geofence_id, kind = 'event' and $2 between starts_at and ends_at as live_event"
        " from missions where id = $1", mission_id, at)
    if row is None:
        return None, False
    return row["geofence_id"], bool(row["live_event"])


async def insert_checkin(conn: Conn, outbox_id: int, c: Checkin,
                         mission_id: int | None) -> None:
    await conn.execute(
        "insert into fraud_checkins (outbox_id, member_id, at, lat, lon, accuracy_m, device_id,"
        " geofence_id, mission_id, is_event) values ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10)"
        " on conflict do nothing",
        outbox_id, c.member_id, c.at, c.lat, c.lon, c.accuracy_m, c.device_id, c.geofence_id,
        mission_id, c.is_event)


async def checkin_stats(conn: Conn, outbox_id: int, c: Checkin, velocity_s: int,
                        burst_s: int, device_days: int, burst_max: int) -> asyncpg.Record:
    """Counts for the check-in rules, each bounded by what its rule can use.

    ``at_geofence`` feeds a rule that only asks "is this exactly check-in max+1 of the window",
    so it counts at most max+2 rows, and not at all for an event check-in at its own fence (the
    rule exempts those). Counting every row in the window made each of 10,000 event check-ins
    scan the thousands before it: 20 % of PostgreSQL's active time in an event flood.
    """
    burst_fence = None if c.is_event else c.geofence_id
    row = await conn.fetchrow(
        """
        select
          (select count(*) from fraud_checkins where member_id = $2
             and at > $3::timestamptz - make_interval(secs => $4) and at <= $3) as in_window,
          (select count(distinct member_id) from fraud_checkins where device_id = $5
             and at > $3::timestamptz - make_interval(days => $8)) as device_accounts,
          (select count(*) from (select 1 from fraud_checkins where geofence_id = $6
             and at > $3::timestamptz - make_interval(secs => $7) and at <= $3
             limit $11) w) as at_geofence,
          (select count(*) from fraud_checkins where member_id = $2 and outbox_id <> $1
             and round(lat::numeric, 6) = round($9::numeric, 6)
             and round(lon::numeric, 6) = round($10::numeric, 6)) as same_coords
        """,
        outbox_id, c.member_id, c.at, velocity_s, c.device_id, burst_fence, burst_s,
        device_days, c.lat, c.lon, burst_max + 2)
    assert row is not None
    return row


async def previous_checkin(conn: Conn, outbox_id: int,
                           c: Checkin) -> Checkin | None:
    row = await conn.fetchrow(
        "select member_id, at, lat, lon from fraud_checkins where member_id = $1"
        " and outbox_id <> $2 and at <= $3 and lat is not null order by at desc limit 1",
        c.member_id, outbox_id, c.at)
    if row is None:
        return None
    return Checkin(member_id=row["member_id"], at=row["at"], lat=row["lat"], lon=row["lon"])


async def insert_award(conn: Conn, outbox_id: int, kind: str,
                       member_id: int | None, merchant_id: int | None, staff_id: int | None,
                       points: int, transfer_id: int | None, at: dt.datetime) -> bool:
    status = await conn.execute(
        "insert into fraud_awards (outbox_id, kind, member_id, merchant_id, staff_id, points,"
        " transfer_id, at) values ($1,$2,$3,$4,$5,$6,$7,$8) on conflict do nothing",
        outbox_id, kind, member_id, merchant_id, staff_id, points, transfer_id, at)
    return bool(status.endswith(" 1"))


async def merchant_counts(conn: Conn, merchant_id: int, at: dt.datetime,
                          window_s: int, baseline_days: int) -> tuple[int, int]:
    row = await conn.fetchrow(
        "select count(*) filter (where at > $2::timestamptz - make_interval(secs => $3)) as recent,"
        " count(*) filter (where at <= $2::timestamptz - make_interval(secs => $3)) as baseline"
        " from fraud_awards where merchant_id = $1 and kind = 'award'"
        " and at > $2::timestamptz - make_interval(secs => $3) - make_interval(days => $4)"
        " and at <= $2",
        merchant_id, at, window_s, baseline_days)
    assert row is not None
    return int(row["recent"]), int(row["baseline"])


async def loop_counts(conn: Conn, member_id: int, merchant_id: int,
                      at: dt.datetime, window_h: int) -> tuple[int, int]:
    row = await conn.fetchrow(
        "select count(*) filter (where kind = 'award') as awards,"
        " count(*) filter (where kind = 'redeem') as redeems from fraud_awards"
        " where member_id = $1 and merchant_id = $2"
        " and at > $3::timestamptz - make_interval(hours => $4) and at <= $3",
        member_id, merchant_id, at, window_h)
    assert row is not None
    return int(row["awards"]), int(row["redeems"])


async def line_subs(conn: Conn, staff_id: int,
                    member_id: int) -> tuple[str | None, str | None]:
    row = await conn.fetchrow(
        "select (select line_sub from staff where id = $1) as staff_sub,"
        " (select line_sub from members where id = $2) as member_sub", staff_id, member_id)
    assert row is not None
    return row["staff_sub"], row["member_sub"]


async def blacklisted(db: Db, kind: str, value: str | int | None) -> bool:
    if value is None:
        return False
    return bool(await db.fetchval(
        "select exists (select 1 from fraud_blacklist where kind = $1 and value = $2"
        " and lifted_at is null)", kind, str(value)))


async def insert_alert(conn: Conn, f: Finding, outbox_id: int | None) -> int | None:
    return await conn.fetchval(  # type: ignore[no-any-return]
        "insert into fraud_alerts (rule, reason_code, severity, member_id, merchant_id,"
        " device_id, outbox_id, evidence) values ($1,$2,$3,$4,$5,$6,$7,$8)"
        " on conflict (rule, outbox_id) do nothing returning id",
        f.rule, f.reason_code, f.severity, f.member_id, f.merchant_id, f.device_id, outbox_id,
        f.evidence)


async def available(conn: Conn, member_id: int) -> int:
    return int(await conn.fetchval(
        "select coalesce((select posted - reserved from member_balances where member_id = $1), 0)",
        member_id))


async def reserve_hold(conn: Conn, member_id: int, points: int,
                       ref: dict[str, Any]) -> int:
    """Hold points as pending with no expiry: only a review decision releases them."""
    return int(await conn.fetchval(
        "select pending_id from kk_reserve($1, $2, 'infinity'::timestamptz, $3, false)",
        member_id, points, ref))


async def insert_review(conn: Conn, alert_id: int, f: Finding, holds_member: bool,
                        held: list[dict[str, Any]]) -> int:
    return int(await conn.fetchval(
        "insert into fraud_reviews (alert_id, member_id, merchant_id, holds_member, held)"
        " values ($1,$2,$3,$4,$5) returning id",
        alert_id, f.member_id, f.merchant_id, holds_member, held))


async def hold_member(conn: Conn, member_id: int, reason: str) -> bool:
    status = await conn.execute(
        "update members set status = 'on_hold', hold_reason = $2 where id = $1"
        " and status in ('active', 'on_hold')", member_id, reason)
    return bool(status.endswith(" 1"))


async def release_member(conn: Conn, member_id: int, fraud_only: bool) -> bool:
    status = await conn.execute(
        "update members set status = 'active', hold_reason = null where id = $1"
        " and status = 'on_hold' and (not $2 or coalesce(hold_reason, '') like 'fraud:%')",
        member_id, fraud_only)
    return bool(status.endswith(" 1"))


async def member_status(db: Db, member_id: int) -> str | None:
    return await db.fetchval(  # type: ignore[no-any-return]
        "select status from members where id = $1", member_id)


async def list_alerts(db: Db, member_id: int | None, rule: str | None, before_id: int | None,
                      limit: int) -> list[asyncpg.Record]:
    return await db.fetch(
        "select id, rule, reason_code, severity, member_id, merchant_id, device_id, outbox_id,"
        " evidence, created_at from fraud_alerts"
        " where ($1::bigint is null or member_id = $1) and ($2::text is null or rule = $2)"
        " and ($3::bigint is null or id < $3) order by id desc limit $4",
        member_id, rule, before_id, limit)


REVIEW_COLUMNS = ("select r.id, r.alert_id, r.member_id, r.merchant_id, r.holds_member, r.held,"
                  " r.status, r.decided_by, r.decided_at, r.note, r.created_at, a.rule,"
                  " a.reason_code, a.severity from fraud_reviews r"
                  " join fraud_alerts a on a.id = r.alert_id")


async def list_reviews(db: Db, status: str | None, before_id: int | None,
                       limit: int) -> list[asyncpg.Record]:
    return await db.fetch(
        REVIEW_COLUMNS + " where ($1::text is null or r.status = $1)"
        " and ($2::bigint is null or r.id < $2) order by r.id desc limit $3",
        status, before_id, limit)


async def lock_review(conn: Conn, review_id: int) -> asyncpg.Record | None:
    return await conn.fetchrow("select * from fraud_reviews where id = $1 for update", review_id)


async def get_review(db: Db, review_id: int) -> asyncpg.Record | None:
    return await db.fetchrow(REVIEW_COLUMNS + " where r.id = $1", review_id)


async def close_review(conn: Conn, review_id: int, status: str, by: str,
                       note: str | None) -> None:
    await conn.execute(
        "update fraud_reviews set status = $2, decided_by = $3, decided_at = now(), note = $4"
        " where id = $1", review_id, status, by, note)


async def other_open_holding_reviews(conn: Conn, member_id: int,
                                     review_id: int) -> int:
    return int(await conn.fetchval(
        "select count(*) from fraud_reviews where member_id = $1 and id <> $2"
        " and status = 'open' and holds_member", member_id, review_id))


async def add_strike(conn: Conn, member_id: int, review_id: int) -> int:
    await conn.execute(
        "insert into fraud_strikes (member_id, review_id) values ($1, $2) on conflict do nothing",
        member_id, review_id)
    return int(await conn.fetchval(
        "select count(*) from fraud_strikes where member_id = $1", member_id))


async def ban_member(conn: Conn, member_id: int, reason: str) -> None:
    await conn.execute(
        "update members set status = 'banned', hold_reason = $2 where id = $1"
        " and status <> 'erased'", member_id, reason)


async def transfer_amount(conn: Conn, transfer_id: int) -> int | None:
    return await conn.fetchval(  # type: ignore[no-any-return]
        "select amount from transfers where id = $1", transfer_id)


async def add_blacklist(conn: Conn, kind: str, value: str, reason: str,
                        by: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "insert into fraud_blacklist (kind, value, reason, created_by) values ($1,$2,$3,$4)"
        " on conflict (kind, value) where lifted_at is null do nothing returning *",
        kind, value, reason, by)


async def lift_blacklist(conn: Conn, entry_id: int,
                         by: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "update fraud_blacklist set lifted_at = now(), lifted_by = $2 where id = $1"
        " and lifted_at is null returning *", entry_id, by)


async def list_blacklist(db: Db, kind: str | None, limit: int) -> list[asyncpg.Record]:
    return await db.fetch(
        "select * from fraud_blacklist where lifted_at is null and ($1::text is null or kind = $1)"
        " order by id desc limit $2", kind, limit)


async def set_merchant_status(conn: Conn, merchant_id: int, status: str) -> None:
    await conn.execute("update merchants set status = $2 where id = $1", merchant_id, status)


async def transfer_member(conn: Conn, transfer_id: int) -> int:
    return int(await conn.fetchval("select member_id from transfers where id = $1", transfer_id))


# PDPA: what the fraud checks kept of a member ---------------------------------------------------
async def checkins_for_export(db: Db, member_id: int) -> list[dict[str, Any]]:
    rows = await db.fetch("select at, lat, lon, accuracy_m, device_id from fraud_checkins"
                          " where member_id = $1 order by at", member_id)
    return [dict(r) for r in rows]


async def erase_checkins(conn: Conn, member_id: int) -> None:
    await conn.execute("update fraud_checkins set lat = null, lon = null, device_id = null"
                       " where member_id = $1", member_id)
