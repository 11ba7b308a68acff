"""The only caller of the merchants', reports' and settlement SQL."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import asyncpg

Db = asyncpg.Pool | asyncpg.Connection

MERCHANT_COLUMNS = (
    "select id, name, district_code, lat, lon, category, thb_per_point, min_spend_thb,"
    " funder_id, daily_award_cap_points, redemption_account_id, status,"
    " offline_daily_cap_points from merchants")

CREATE_MERCHANT = """
with a as (insert into accounts (kind, owner_id)
           values ('merchant_redemption', nextval(pg_get_serial_sequence('merchants', 'id')))
           returning id, owner_id)
insert into merchants (id, name, district_code, lat, lon, category, thb_per_point,
                       min_spend_thb, funder_id, daily_award_cap_points, redemption_account_id)
overriding system value
select a.owner_id, $1, $2, $3, $4, $5, $6, $7, $8, $9, a.id from a
returning id
"""


async def create_merchant(db: Db, *, name: str, district_code: str, lat: float, lon: float,
                          category: str, thb_per_point: Decimal, min_spend_thb: Decimal,
                          funder_id: int, daily_award_cap_points: int | None,
                          offline_daily_cap_points: int | None = None) -> int:
    """A merchant and its redemption account, in one statement."""
    mid: int = await db.fetchval(CREATE_MERCHANT, name, district_code, lat, lon, category,
                                 thb_per_point, min_spend_thb, funder_id, daily_award_cap_points)
    if offline_daily_cap_points is not None:
        await db.execute("update merchants set offline_daily_cap_points = $2 where id = $1",
                         mid, offline_daily_cap_points)
    return mid


async def get_merchant(db: Db, merchant_id: int) -> asyncpg.Record | None:
    return await db.fetchrow(MERCHANT_COLUMNS + " where id = $1", merchant_id)


async def list_merchants(db: Db, after_id: int | None, limit: int,
                         org: str | None = None) -> list[asyncpg.Record]:
    """Merchants by id; with ``org``, only those funded by that organisation's funders."""
    sql = (MERCHANT_COLUMNS + " where ($1::bigint is null or id > $1)"  # noqa: S608
           " and ($3::text is null or funder_id in (select f.id from funders f where f.org = $3))"
           " order by id limit $2")
    return await db.fetch(sql, after_id, limit, org)


async def funder_exists(db: Db, funder_id: int) -> bool:
    return bool(await db.fetchval("select true from funders where id = $1", funder_id))


DAILY_REPORT = """
with days as (select generate_series($2::date, $3::date, interval '1 day')::date as day),
awards as (
    select (t.created_at at time zone 'Asia/Bangkok')::date as day, count(*) as awards,
           sum(t.amount) as points, array_agg(distinct t.member_id) as members
      from transfers t
     where (t.ref ->> 'merchant_id')::bigint = $1 and t.ref ? 'merchant_id' and t.kind = 'award'
       and t.created_at >= ($2::date::timestamp at time zone 'Asia/Bangkok')
       and t.created_at < (($3::date + 1)::timestamp at time zone 'Asia/Bangkok')
     group by 1),
redeems as (
    select (c.resolved_at at time zone 'Asia/Bangkok')::date as day, count(*) as coupons,
           sum(c.points) as points, array_agg(distinct c.member_id) as members
      from coupons c
     where c.redeemed_merchant_id = $1 and c.status = 'redeemed'
       and c.resolved_at >= ($2::date::timestamp at time zone 'Asia/Bangkok')
       and c.resolved_at < (($3::date + 1)::timestamp at time zone 'Asia/Bangkok')
     group by 1)
select d.day,
       (select count(*) from (select unnest(coalesce(a.members, '{}'))
                              union select unnest(coalesce(r.members, '{}'))) u) as customers,
       coalesce(a.awards, 0) as awards, coalesce(a.points, 0)::bigint as points_awarded,
       coalesce(r.coupons, 0) as coupons_redeemed, coalesce(r.points, 0)::bigint as points_redeemed
  from days d left join awards a using (day) left join redeems r using (day)
 order by d.day
"""


async def daily_report(db: Db, merchant_id: int, first: dt.date,
                       last: dt.date) -> list[dict[str, Any]]:
    return [dict(r) for r in await db.fetch(DAILY_REPORT, merchant_id, first, last)]


async def top_missions(db: Db, merchant_id: int, first: dt.date, last: dt.date,
                       limit: int = 10) -> list[dict[str, Any]]:
    rows = await db.fetch(
        "select mission_id, mission_code, count(*) as completions, sum(points)::bigint as points"
        " from merchant_mission_completions where merchant_id = $1 and day between $2 and $3"
        " group by 1, 2 order by completions desc, mission_id limit $4",
        merchant_id, first, last, limit)
    return [dict(r) for r in rows]


SETTLEMENT = """
select (t.created_at at time zone 'Asia/Bangkok')::date as day, m.id as merchant_id,
       m.name as merchant_name, m.funder_id as merchant_funder_id, tl.funder_id,
       f.code as funder_code, sum(tl.amount)::bigint as points, count(distinct t.id) as redemptions
  from transfers t
  join merchants m on m.redemption_account_id = t.credit_account_id
  join transfer_lots tl on tl.transfer_id = t.id
  join funders f on f.id = tl.funder_id
 where t.kind = 'redeem'
   and t.created_at >= ($1::date::timestamp at time zone 'Asia/Bangkok')
   and t.created_at < (($2::date + 1)::timestamp at time zone 'Asia/Bangkok')
   -- An organisation sees the rows it pays (its funders' lots) or receives (its merchants).
   and ($3::text is null or f.org = $3
        or exists (select 1 from funders mf where mf.id = m.funder_id and mf.org = $3))
 group by 1, 2, 3, 4, 5, 6
 order by 1, 2, 5
"""


async def settlement(db: Db, first: dt.date, last: dt.date,
                     org: str | None = None) -> list[dict[str, Any]]:
    """Points redeemed per day at each merchant, split by the funders whose lots were spent;
    with ``org``, only the rows that organisation pays or receives."""
    return [dict(r) for r in await db.fetch(SETTLEMENT, first, last, org)]
