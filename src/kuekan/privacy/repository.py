"""The only caller of the privacy tables' SQL (consents, erasures)."""

from __future__ import annotations

from typing import Any

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from kuekan.db.pool import map_db_error

Conn = asyncpg.Connection | PoolConnectionProxy
Db = asyncpg.Pool | Conn


async def add_consent(db: Db, member_id: int, purpose: str, version: str,
                      granted: bool) -> dict[str, Any]:
    row = await db.fetchrow(
        "insert into consents (member_id, purpose, version, granted) values ($1, $2, $3, $4)"
        " returning purpose, version, granted, at", member_id, purpose, version, granted)
    assert row is not None
    return dict(row)


async def current_consents(db: Db, member_id: int) -> list[dict[str, Any]]:
    """The latest answer per purpose."""
    rows = await db.fetch(
        "select distinct on (purpose) purpose, version, granted, at from consents"
        " where member_id = $1 order by purpose, id desc", member_id)
    return [dict(r) for r in rows]


async def all_consents(db: Db, member_id: int) -> list[dict[str, Any]]:
    rows = await db.fetch("select purpose, version, granted, at from consents"
                          " where member_id = $1 order by id", member_id)
    return [dict(r) for r in rows]


async def record_erasure(conn: Conn, member_id: int, alias: str) -> None:
    await conn.execute("insert into erasures (member_id, pseudonym) values ($1, $2)"
                       " on conflict do nothing", member_id, alias)


async def erase_member(conn: Conn, member_id: int, alias: str) -> None:
    """Every personal value of the member, in one statement (sql/functions/kk_erase_member.sql;
    refuses with erasure_refused_on_hold while the member is on hold or banned)."""
    try:
        await conn.execute("select kk_erase_member($1, $2)", member_id, alias)
    except asyncpg.PostgresError as exc:
        mapped = map_db_error(exc)
        if mapped is None:
            raise
        raise mapped from None


async def checkins_for_export(conn: Conn, member_id: int, limit: int) -> list[dict[str, Any]]:
    return [dict(r) for r in await conn.fetch(
        "select id, mission_id, geofence_id, lat, lon, accuracy_m, distance_to_edge_m,"
        " decision, device_id, status, refusal_code, points, created_at from checkins"
        " where member_id = $1 order by id limit $2", member_id, limit)]


async def coupons_for_export(conn: Conn, member_id: int, limit: int) -> list[dict[str, Any]]:
    return [dict(r) for r in await conn.fetch(
        "select c.id, c.code, c.reward_id, r.name_th as reward_name, c.points, c.status,"
        " c.expires_at, c.created_at, c.resolved_at, c.redeemed_merchant_id from coupons c"
        " join rewards r on r.id = c.reward_id where c.member_id = $1 order by c.id"
        " limit $2", member_id, limit)]
