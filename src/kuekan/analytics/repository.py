"""The only caller of the analytics tables' SQL (rollups, cursor, webhook deliveries)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from kuekan.analytics.model import Deltas, webhook_body
from kuekan.analytics.model import Event as AnalyticsEvent

Db = asyncpg.Pool | asyncpg.Connection
Conn = asyncpg.Connection | PoolConnectionProxy

CURSOR = "outbox"


TRANSFERS = "transfers"


async def lock_cursor(conn: Conn, name: str = CURSOR) -> int:
    """The cursor, locked for this transaction: two consumers never fold the same rows."""
    last: int = await conn.fetchval(
        "select last_id from analytics_cursor where name = $1 for update", name)
    return last


async def advance_cursor(conn: Conn, last_id: int, name: str = CURSOR) -> None:
    await conn.execute("update analytics_cursor set last_id = $2, updated_at = now()"
                       " where name = $1", name, last_id)


async def fetch_transfers(conn: Conn, after_id: int, limit: int) -> list[asyncpg.Record]:
    return await conn.fetch(
        "select id, kind, funder_id, amount, created_at from transfers where id > $1"
        " order by id limit $2", after_id, limit)


async def add_daily(conn: Conn, daily: dict[tuple[dt.date, str, str], int]
                    ) -> list[asyncpg.Record]:
    if not daily:
        return []
    keys = list(daily)
    return await conn.fetch(
        "insert into analytics_daily as a (day, metric, dim, value)"
        " select * from unnest($1::date[], $2::text[], $3::text[], $4::bigint[])"
        " on conflict (day, metric, dim) do update set value = a.value + excluded.value"
        " returning day, metric, dim, value",
        [k[0] for k in keys], [k[1] for k in keys], [k[2] for k in keys],
        [daily[k] for k in keys])


async def cursor_lag(db: Db) -> tuple[int, float]:
    """(outbox rows not yet folded, age in seconds of the oldest of them)."""
    row = await db.fetchrow(
        "select count(*) as n, extract(epoch from now() - min(o.created_at)) as age"
        " from outbox o, analytics_cursor c where c.name = $1 and o.id > c.last_id", CURSOR)
    assert row is not None
    return int(row["n"]), float(row["age"] or 0.0)


async def fetch_outbox(conn: Conn, after_id: int,
                       limit: int) -> list[asyncpg.Record]:
    return await conn.fetch(
        "select id, topic, member_id, payload, created_at from outbox where id > $1"
        " order by id limit $2", after_id, limit)


async def apply_deltas(conn: Conn, d: Deltas) -> list[asyncpg.Record]:
    """Add the deltas to every rollup; return the new totals of the daily counters touched."""
    totals = await add_daily(conn, d.daily)
    if d.activity:
        keys2 = list(d.activity)
        await conn.execute(
            "insert into daily_member_activity as a (member_id, day, events)"
            " select * from unnest($1::bigint[], $2::date[], $3::int[])"
            " on conflict (member_id, day) do update set events = a.events + excluded.events",
            [k[0] for k in keys2], [k[1] for k in keys2], [d.activity[k] for k in keys2])
    if d.checkins:
        keys3 = list(d.checkins)
        vals = [d.checkins[k] for k in keys3]
        await conn.execute(
            "insert into checkins_daily as c (day, geofence_id, district_code, checkins, lat_sum,"
            " lon_sum, located) select * from unnest($1::date[], $2::bigint[], $3::text[],"
            " $4::bigint[], $5::float8[], $6::float8[], $7::bigint[])"
            " on conflict (day, geofence_id, district_code) do update set"
            " checkins = c.checkins + excluded.checkins, lat_sum = c.lat_sum + excluded.lat_sum,"
            " lon_sum = c.lon_sum + excluded.lon_sum, located = c.located + excluded.located",
            [k[0] for k in keys3], [k[1] for k in keys3], [k[2] for k in keys3],
            [int(v[0]) for v in vals], [v[1] for v in vals], [v[2] for v in vals],
            [int(v[3]) for v in vals])
    if d.member_checkins:
        await conn.executemany(
            "insert into member_checkins (outbox_id, member_id, at, mission_id, geofence_id,"
            " district_code) values ($1, $2, $3, $4, $5, $6) on conflict do nothing",
            d.member_checkins)
    if d.campaigns:
        keys4 = list(d.campaigns)
        cv = [d.campaigns[k] for k in keys4]
        await conn.execute(
            "insert into campaign_daily as c (day, campaign, points_cost, spend_thb, scans)"
            " select * from unnest($1::date[], $2::text[], $3::bigint[], $4::numeric[],"
            " $5::bigint[]) on conflict (day, campaign) do update set"
            " points_cost = c.points_cost + excluded.points_cost,"
            " spend_thb = c.spend_thb + excluded.spend_thb, scans = c.scans + excluded.scans",
            [k[0] for k in keys4], [k[1] for k in keys4], [int(v[0]) for v in cv],
            [v[1] for v in cv], [int(v[2]) for v in cv])
    return totals


async def enqueue_webhooks(conn: Conn, events: list[AnalyticsEvent]) -> int:
    """One pending delivery per (active webhook subscribed to the event, outbox row)."""
    items = [(e.outbox_id, webhook_body(e)) for e in events]
    if not items:
        return 0
    status = await conn.execute(
        "insert into webhook_deliveries (webhook_id, outbox_id, topic, payload)"
        " select w.id, x.oid, x.body->>'event', x.body"
        " from unnest($1::bigint[], $2::jsonb[]) as x (oid, body)"
        " join agency_webhooks w on w.active and (x.body->>'event') = any (w.topics)"
        " join agency_keys k on k.id = w.agency_key_id and k.revoked_at is null"
        " on conflict do nothing",
        [i[0] for i in items], [i[1] for i in items])
    return int(status.split()[-1])


# Reads for the dashboard cache ----------------------------------------------------------------

async def day_counters(db: Db, day: dt.date) -> list[asyncpg.Record]:
    return await db.fetch("select metric, dim, value from analytics_daily where day = $1", day)


async def day_member_ids(db: Db, day: dt.date) -> list[int]:
    rows = await db.fetch("select member_id from daily_member_activity where day = $1", day)
    return [r["member_id"] for r in rows]


async def points_in_circulation(db: Db) -> int:
    """Sum of all member pockets, read off the small sliced non-member accounts: the ledger
    sums to zero (DESIGN.md §3 invariant 1), so members hold minus everything else."""
    value = await db.fetchval("select coalesce(-sum(posted), 0)::bigint from account_slices")
    return int(value)


# Analytics queries (each on a rollup table or an index) -----------------------------------------

async def engagement(db: Db, day: dt.date, prev_start: dt.date, cur_start: dt.date
                     ) -> asyncpg.Record:
    row = await db.fetchrow(
        "select (select count(*) from daily_member_activity where day = $1) as dau,"
        " (select count(distinct member_id) from daily_member_activity"
        "   where day between $3 and $1) as mau,"
        " (select count(*) from (select distinct member_id from daily_member_activity"
        "   where day >= $2 and day < $3) p) as previous,"
        " (select count(*) from (select distinct member_id from daily_member_activity p"
        "   where p.day >= $2 and p.day < $3 and exists (select 1 from daily_member_activity c"
        "   where c.member_id = p.member_id and c.day between $3 and $1)) r) as returned",
        day, prev_start, cur_start)
    assert row is not None
    return row


async def dau_series(db: Db, start: dt.date, end: dt.date) -> list[asyncpg.Record]:
    return await db.fetch(
        "select day, count(*) as dau from daily_member_activity where day between $1 and $2"
        " group by day order by day", start, end)


async def daily_totals(db: Db, start: dt.date, end: dt.date) -> list[asyncpg.Record]:
    return await db.fetch(
        "select day, metric, value from analytics_daily where dim = '' and day between $1 and $2"
        " order by day, metric", start, end)


async def cohort_sizes(db: Db, start: dt.date, end: dt.date) -> list[asyncpg.Record]:
    return await db.fetch(
        "select (date_trunc('week', created_at at time zone 'Asia/Bangkok'))::date as week,"
        " count(*) as size from members"
        " where created_at >= ($1::date)::timestamp at time zone 'Asia/Bangkok'"
        "   and created_at < ($2::date)::timestamp at time zone 'Asia/Bangkok'"
        " group by 1 order by 1", start, end)


async def cohort_active(db: Db, start: dt.date, end: dt.date, weeks: int
                        ) -> list[asyncpg.Record]:
    return await db.fetch(
        "with c as (select id, (date_trunc('week', created_at at time zone 'Asia/Bangkok'))::date"
        "   as week from members"
        "  where created_at >= ($1::date)::timestamp at time zone 'Asia/Bangkok'"
        "    and created_at < ($2::date)::timestamp at time zone 'Asia/Bangkok')"
        " select c.week, (a.day - c.week) / 7 as k, count(distinct a.member_id) as n"
        " from c join daily_member_activity a on a.member_id = c.id"
        "  and a.day >= c.week and a.day < c.week + 7 * $3::int"
        " group by 1, 2", start, end, weeks)


async def checkins_by_district(db: Db, start: dt.date, end: dt.date) -> list[asyncpg.Record]:
    return await db.fetch(
        "select district_code, sum(checkins)::bigint as checkins from checkins_daily"
        " where day between $1 and $2 and district_code <> '' group by 1", start, end)


async def checkins_by_geofence(db: Db, start: dt.date, end: dt.date,
                               limit: int) -> list[asyncpg.Record]:
    return await db.fetch(
        "select geofence_id, sum(checkins)::bigint as checkins,"
        " sum(lat_sum) / nullif(sum(located), 0) as lat,"
        " sum(lon_sum) / nullif(sum(located), 0) as lon,"
        " min(district_code) filter (where district_code <> '') as district_code"
        " from checkins_daily where day between $1 and $2 and geofence_id <> 0"
        " group by 1 order by 2 desc limit $3", start, end, limit)


async def journey(db: Db, geofence_id: int | None, mission_id: int | None,
                  start: dt.datetime, end: dt.datetime, within_h: int,
                  limit: int) -> tuple[int, list[asyncpg.Record]]:
    """Attendees of a place/mission in [start, end) and, per next place, how many checked in
    there next (within ``within_h`` hours of their first check-in at the event)."""
    firsts = (  # constant SQL text, no input is interpolated
        "with firsts as (select distinct on (member_id) member_id, at from member_checkins"
        " where (geofence_id = $1 or mission_id = $2) and at >= $3 and at < $4"
        " order by member_id, at)")
    attendees: int = await db.fetchval(firsts + " select count(*) from firsts",  # noqa: S608
                                       geofence_id, mission_id, start, end)
    rows = await db.fetch(
        firsts  # noqa: S608 - constant SQL text
        + " select n.geofence_id, n.mission_id, n.district_code, count(*) as members"
        " from firsts f cross join lateral (select m.geofence_id, m.mission_id, m.district_code"
        "  from member_checkins m where m.member_id = f.member_id and m.at > f.at"
        "   and m.at <= f.at + make_interval(hours => $5)"
        "   and not (m.geofence_id is not distinct from $1::bigint and $1::bigint is not null)"
        "   and not (m.mission_id is not distinct from $2::bigint and $2::bigint is not null)"
        "  order by m.at limit 1) n"
        " group by 1, 2, 3 order by members desc, 1 limit $6",
        geofence_id, mission_id, start, end, within_h, limit)
    return attendees, rows


async def campaigns(db: Db, start: dt.date, end: dt.date, campaign: str | None,
                    limit: int) -> list[asyncpg.Record]:
    return await db.fetch(
        "select campaign, sum(points_cost)::bigint as points_cost,"
        " sum(spend_thb) as spend_thb, sum(scans)::bigint as scans from campaign_daily"
        " where day between $1 and $2 and ($3::text is null or campaign = $3)"
        " group by 1 order by 2 desc, 1 limit $4", start, end, campaign, limit)


async def segments(db: Db, start: dt.date, end: dt.date) -> list[asyncpg.Record]:
    return await db.fetch(
        "select s.segment,"
        " (select count(distinct a.member_id) from daily_member_activity a join members m"
        "   on m.id = a.member_id where m.segment = s.segment and a.day between $1 and $2)"
        "   as active,"
        " (select count(*) from members m where m.segment = s.segment"
        "   and m.created_at >= ($1::date)::timestamp at time zone 'Asia/Bangkok'"
        "   and m.created_at < ($2::date + 1)::timestamp at time zone 'Asia/Bangkok') as signups"
        " from (values ('resident'), ('tourist')) as s (segment)", start, end)


async def top_members(db: Db, start: dt.date, end: dt.date, limit: int) -> list[dict[str, Any]]:
    rows = await db.fetch(
        "select a.member_id, sum(a.events)::bigint as events, count(*) as active_days,"
        " m.segment, m.district_code, m.display_name, m.line_sub"
        " from daily_member_activity a join members m on m.id = a.member_id"
        " where a.day between $1 and $2 group by a.member_id, m.id"
        " order by events desc, a.member_id limit $3", start, end, limit)
    return [dict(r) for r in rows]


async def merchant_daily(db: Db, merchant_id: int, start: dt.date,
                         end: dt.date) -> list[asyncpg.Record]:
    return await db.fetch(
        "select day, metric, value from analytics_daily where dim = $1"
        " and metric in ('merchant', 'merchant_points', 'merchant_spend_satang',"
        " 'merchant_redeemed') and day between $2 and $3 order by day",
        str(merchant_id), start, end)


def as_decimal(value: Any) -> Decimal:
    return value if isinstance(value, Decimal) else Decimal(str(value or 0))
