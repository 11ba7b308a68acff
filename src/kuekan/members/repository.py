"""The only caller of the members' SQL."""

from __future__ import annotations

from typing import Any

import asyncpg
from asyncpg.pool import PoolConnectionProxy

Db = asyncpg.Pool | asyncpg.Connection
Conn = asyncpg.Connection | PoolConnectionProxy


async def ensure_members(db: Db, line_subs: list[str]) -> dict[str, int]:
    """Create members (with their pocket) that do not exist yet; return line_sub -> id."""
    rows = await db.fetch("select * from kk_ensure_members($1::text[])", line_subs)
    return {r["line_sub"]: r["member_id"] for r in rows}


async def ensure_staff(db: Db, line_sub: str, role: str, merchant_id: int | None,
                       org: str | None) -> int:
    staff_id: int = await db.fetchval("select kk_ensure_staff($1, $2, $3, $4)",
                                      line_sub, role, merchant_id, org)
    return staff_id


async def get_member(db: Db, member_id: int) -> asyncpg.Record | None:
    return await db.fetchrow(
        "select id, line_sub, display_name, tier, status, segment, district_code, created_at"
        " from members where id = $1", member_id)


async def set_display_name(db: Db, member_id: int, name: str) -> None:
    await db.execute("update members set display_name = $2 where id = $1 and display_name = ''",
                     member_id, name)


async def pocket(db: Db, member_id: int) -> asyncpg.Record | None:
    """Balance, reserved, tier and, per month, the points still in the pocket (reserved
    included: they return on a void) — one round trip."""
    return await db.fetchrow(
        "select b.posted as balance, b.reserved, b.posted - b.reserved as available, m.tier,"
        " coalesce((select json_agg(json_build_object('month', x.month, 'points', x.points)"
        "                           order by x.month)"
        "   from (select month, sum(earned - spent - expired)::bigint as points from lots"
        "          where member_id = $1 and earned > spent + expired group by month) x),"
        "  '[]'::json) as lots"
        " from member_balances b join members m on m.id = b.member_id where b.member_id = $1",
        member_id)


async def history(db: Db, member_id: int, before_id: int | None,
                  limit: int) -> list[dict[str, Any]]:
    rows = await db.fetch(
        "select t.id, t.kind, t.amount, t.funder_id, t.ref, t.created_at,"
        " t.credit_account_id = b.account_id as incoming"
        " from transfers t join member_balances b on b.member_id = t.member_id"
        " where t.member_id = $1 and ($2::bigint is null or t.id < $2)"
        " order by t.id desc limit $3", member_id, before_id, limit)
    return [
        {"id": r["id"], "kind": r["kind"],
         "points": r["amount"] if r["incoming"] else -r["amount"],
         "funder_id": r["funder_id"], "ref": r["ref"], "created_at": r["created_at"]}
        for r in rows
    ]


# PDPA -----------------------------------------------------------------------------------------
async def personal_data(db: Db | Conn, member_id: int) -> dict[str, Any] | None:
    """The member row as the member's data export shows it."""
    row = await db.fetchrow(
        "select id, line_sub, display_name, tier, status, segment, district_code, created_at"
        " from members where id = $1", member_id)
    return dict(row) if row is not None else None


async def pseudonymise(conn: Conn, member_id: int, alias: str) -> None:
    """Replace the member's identity with ``alias``; the id, and so the ledger, stays."""
    await conn.execute(
        "update members set line_sub = $2, display_name = '', district_code = null,"
        " hold_reason = null, status = 'erased' where id = $1", member_id, alias)
