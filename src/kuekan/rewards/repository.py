"""The only caller of the rewards SQL (tables and the functions of migration 0005)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import asyncpg

from kuekan.db.batches import delete_in_batches
from kuekan.ledger.repository import call_json

Db = asyncpg.Pool | asyncpg.Connection


async def _json(conn: Db, sql: str, *args: Any) -> dict[str, Any]:
    """One jsonb-returning SQL function call; its refusals carry their catalogue texts."""
    res: dict[str, Any] = await call_json(conn, sql, *args)
    return res

REWARD_COLUMNS = """
select r.id, r.name_th, r.name_en, r.category, r.cost_points, r.stock, r.per_member_limit,
       r.coupon_valid_days, r.min_tier, r.funder_id, r.status,
       coalesce((select jsonb_agg(jsonb_build_object('id', m.id, 'name', m.name,
                 'district_code', m.district_code, 'category', m.category, 'lat', m.lat,
                 'lon', m.lon) order by m.id)
                   from reward_merchants rm join merchants m on m.id = rm.merchant_id
                  where rm.reward_id = r.id), '[]'::jsonb) as merchants
  from rewards r
"""


async def create_reward(conn: asyncpg.Connection, *, name_th: str, name_en: str, category: str,
                        cost_points: int, stock: int, per_member_limit: int | None,
                        coupon_valid_days: int, min_tier: str | None, funder_id: int | None,
                        merchant_ids: list[int]) -> int:
    async with conn.transaction():
        rid: int = await conn.fetchval(
            "insert into rewards (name_th, name_en, category, cost_points, stock,"
            " per_member_limit, coupon_valid_days, min_tier, funder_id)"
            " values ($1, $2, $3, $4, $5, $6, $7, $8, $9) returning id",
            name_th, name_en, category, cost_points, stock, per_member_limit, coupon_valid_days,
            min_tier, funder_id)
        await set_reward_merchants(conn, rid, merchant_ids)
    return rid


async def set_reward_merchants(conn: asyncpg.Connection, reward_id: int,
                               merchant_ids: list[int]) -> None:
    await conn.execute("delete from reward_merchants where reward_id = $1", reward_id)
    await conn.execute(
        "insert into reward_merchants (reward_id, merchant_id)"
        " select $1, unnest($2::bigint[]) on conflict do nothing", reward_id, merchant_ids)


async def update_reward(conn: asyncpg.Connection, reward_id: int, fields: dict[str, Any],
                        stock_delta: int | None) -> bool:
    """Apply a patch; the stock check constraint refuses a delta that would go below zero."""
    allowed = {"name_th", "name_en", "per_member_limit", "coupon_valid_days", "status"}
    sets = [f"{k} = ${i + 2}" for i, k in enumerate(fields) if k in allowed]
    args = [v for k, v in fields.items() if k in allowed]
    if stock_delta is not None:
        sets.append(f"stock = stock + ${len(args) + 2}")
        args.append(stock_delta)
    if not sets:
        return bool(await conn.fetchval("select true from rewards where id = $1", reward_id))
    # Column names come from the fixed ``allowed`` set above, never from the caller.
    status = await conn.execute(f"update rewards set {', '.join(sets)} where id = $1",  # noqa: S608
                                reward_id, *args)
    return status.endswith(" 1")


async def get_reward(db: Db, reward_id: int) -> asyncpg.Record | None:
    return await db.fetchrow(REWARD_COLUMNS + " where r.id = $1", reward_id)


async def list_rewards(db: Db, *, active_only: bool, merchant_id: int | None,
                       after_id: int | None, limit: int,
                       org: str | None = None) -> list[asyncpg.Record]:
    """Rewards by id; with ``org``, only that organisation's (a reward without a funder is
    the PAO's)."""
    return await db.fetch(
        REWARD_COLUMNS + " where ($1 = false or r.status = 'active')"  # noqa: S608
        " and ($2::bigint is null or exists (select 1 from reward_merchants x"
        "      where x.reward_id = r.id and x.merchant_id = $2))"
        " and ($3::bigint is null or r.id > $3)"
        " and ($5::text is null or $5 = coalesce((select f.org from funders f"
        "      where f.id = r.funder_id), 'pao'))"
        " order by r.id limit $4",
        active_only, merchant_id, after_id, limit, org)


async def known_merchants(db: Db, ids: list[int]) -> set[int]:
    rows = await db.fetch("select id from merchants where id = any($1::bigint[])", ids)
    return {r["id"] for r in rows}


async def known_tier(db: Db, code: str) -> bool:
    return bool(await db.fetchval("select true from tiers where code = $1", code))


async def redeem_reward(conn: asyncpg.Connection, member_id: int, reward_id: int,
                        codes: list[str], ref: dict[str, Any]) -> dict[str, Any]:
    return await _json(conn, "select kk_redeem_reward($1, $2, $3, $4)",
                       member_id, reward_id, codes, ref)


async def scan_coupon(conn: asyncpg.Connection, code: str, member_id: int, merchant_id: int,
                      jti: str | None, ref: dict[str, Any], slices: int) -> dict[str, Any]:
    return await _json(conn, "select kk_scan_coupon($1, $2, $3, $4, $5, $6)",
                       code, member_id, merchant_id, jti, ref, slices)


async def purchase_scan_idem(db: Db, *, scope: str, key: str, req_hash: str, member_id: int,
                             merchant_id: int, jti: str | None, points: int, day: dt.date,
                             member_cap: int, ref: dict[str, Any], slices: int, category: str,
                             amount_thb: Any) -> dict[str, Any]:
    """The whole purchase scan in one round trip (migration 0011): the durable key, the award,
    purchase-mission progress, the shop's completions, the stored response. Returns
    ``{status, body, hash, replay}``."""
    return await _json(
        db, "select kk_purchase_scan_idem($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12,"
        " $13)", scope, key, req_hash, member_id, merchant_id, jti, points, day, member_cap,
        ref, slices, category, amount_thb)


async def scan_context(db: Db, member_id: int, staff_id: int) -> asyncpg.Record | None:
    """What a purchase scan needs about the member: status, tier multiplier, and whether the
    scanning staff is this very member (same LINE account)."""
    return await db.fetchrow(
        "select m.status, m.tier, coalesce(t.multiplier, 1.0) as multiplier,"
        " exists (select 1 from staff s where s.id = $2 and s.line_sub = m.line_sub) as is_self"
        " from members m left join tiers t on t.code = m.tier where m.id = $1",
        member_id, staff_id)


async def merchant_earn_rule(db: Db, merchant_id: int) -> asyncpg.Record | None:
    return await db.fetchrow(
        "select id, category, thb_per_point, min_spend_thb, funder_id, daily_award_cap_points,"
        " status from merchants where id = $1", merchant_id)


async def member_coupons(db: Db, member_id: int, before_id: int | None,
                         limit: int) -> list[asyncpg.Record]:
    return await db.fetch(
        "select c.id, c.code, c.reward_id, r.name_th as reward_name, c.points, c.status,"
        " c.expires_at, c.created_at, c.redeemed_merchant_id,"
        " coalesce((select array_agg(merchant_id order by merchant_id) from reward_merchants x"
        "           where x.reward_id = c.reward_id), '{}') as merchant_ids"
        " from coupons c join rewards r on r.id = c.reward_id"
        " where c.member_id = $1 and ($2::bigint is null or c.id < $2)"
        " order by c.id desc limit $3", member_id, before_id, limit)


async def member_coupon(db: Db, member_id: int, coupon_id: int) -> asyncpg.Record | None:
    return await db.fetchrow(
        "select id, code, expires_at from coupons where id = $1 and member_id = $2",
        coupon_id, member_id)


async def expired_coupon_ids(db: Db, now: dt.datetime, limit: int) -> list[int]:
    rows = await db.fetch(
        "select id from coupons where status = 'issued' and expires_at <= $1"
        " order by expires_at limit $2", now, limit)
    return [r["id"] for r in rows]


async def void_coupon(db: Db, coupon_id: int, now: dt.datetime) -> bool:
    return bool(await db.fetchval("select kk_void_coupon($1, $2)", coupon_id, now))


async def tier_review(db: Db, today: dt.date, after_member: int,
                      limit: int) -> list[asyncpg.Record]:
    return await db.fetch("select * from kk_tier_review($1, $2, $3)", today, after_member, limit)


async def delete_old_qr_uses(db: Db, before: dt.datetime, *, batch_rows: int = 10_000,
                             max_batches: int = 1000) -> int:
    return await delete_in_batches(db, "qr_uses", "used_at < $1", before,
                                   batch_rows=batch_rows, max_batches=max_batches)
