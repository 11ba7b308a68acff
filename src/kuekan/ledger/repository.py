"""The only caller of the ledger's SQL functions and tables."""

from __future__ import annotations

import datetime as dt
from typing import Any

import asyncpg

from kuekan.db.pool import map_db_error


async def call_json(conn: asyncpg.Pool | asyncpg.Connection, sql: str, *args: Any) -> Any:
    """Run a statement returning one jsonb value, mapping ledger refusals to DomainErrors."""
    try:
        return await conn.fetchval(sql, *args)
    except asyncpg.PostgresError as exc:
        err = map_db_error(exc)
        if err is None:
            raise
        raise err from None


async def call_row(conn: asyncpg.Pool | asyncpg.Connection, sql: str,
                   *args: Any) -> asyncpg.Record | None:
    try:
        return await conn.fetchrow(sql, *args)
    except asyncpg.PostgresError as exc:
        err = map_db_error(exc)
        if err is None:
            raise
        raise err from None


AWARD_IDEM = """
select kk_award_idem($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
"""


async def award_idem(
    db: asyncpg.Pool | asyncpg.Connection, *, scope: str, key: str, req_hash: str,
    member_id: int, funder_id: int, points: int, kind: str, day: dt.date,
    member_cap: int | None, merchant_id: int | None, budget_keys: list[str],
    ref: dict[str, Any], check_hold: bool, slices: int, extra: dict[str, Any],
    outbox_topic: str | None,
) -> dict[str, Any]:
    """Idempotent award in one round trip; returns {status, body, hash, replay}."""
    res: dict[str, Any] = await call_json(
        db, AWARD_IDEM, scope, key, req_hash, member_id, funder_id, points, kind, day,
        member_cap, merchant_id, budget_keys, ref, check_hold, slices, extra, outbox_topic,
    )
    return res


async def store_refusal(db: asyncpg.Pool | asyncpg.Connection, scope: str, key: str,
                        req_hash: str, status: int, body: dict[str, Any]) -> None:
    """Record a business refusal so the same key replays it; a concurrent winner is kept."""
    await db.execute(
        "insert into idempotency_keys (scope, key, request_hash, status_code, body)"
        " values ($1, $2, $3, $4, $5) on conflict do nothing",
        scope, key, req_hash, status, body,
    )


async def stored_idem(db: asyncpg.Pool | asyncpg.Connection, scope: str,
                      key: str) -> dict[str, Any] | None:
    row = await db.fetchrow(
        "select request_hash as hash, status_code as status, body from idempotency_keys"
        " where scope = $1 and key = $2", scope, key)
    return dict(row) if row else None


async def adjust_down(db: asyncpg.Connection, member_id: int, points: int, ref: dict[str, Any],
                      slices: int) -> asyncpg.Record:
    row = await call_row(db, "select * from kk_adjust_down($1, $2, $3, $4)",
                         member_id, points, ref, slices)
    assert row is not None
    return row


async def reverse(db: asyncpg.Pool | asyncpg.Connection, transfer_id: int, ref: dict[str, Any],
                  slices: int) -> asyncpg.Record:
    row = await call_row(db, "select * from kk_reverse($1, $2, $3)", transfer_id, ref, slices)
    assert row is not None
    return row


async def reserve(db: asyncpg.Pool | asyncpg.Connection, member_id: int, points: int,
                  expires_at: dt.datetime, ref: dict[str, Any],
                  check_hold: bool = True) -> asyncpg.Record:
    row = await call_row(db, "select * from kk_reserve($1, $2, $3, $4, $5)",
                         member_id, points, expires_at, ref, check_hold)
    assert row is not None
    return row


async def post(db: asyncpg.Pool | asyncpg.Connection, pending_id: int, credit_account_id: int,
               ref: dict[str, Any], slices: int) -> asyncpg.Record:
    row = await call_row(db, "select * from kk_post($1, $2, $3, $4)",
                         pending_id, credit_account_id, ref, slices)
    assert row is not None
    return row


async def void(db: asyncpg.Pool | asyncpg.Connection, pending_id: int) -> asyncpg.Record:
    row = await call_row(db, "select * from kk_void($1)", pending_id)
    assert row is not None
    return row


async def expire_lots(db: asyncpg.Pool | asyncpg.Connection, before_month: dt.date, limit: int,
                      slices: int) -> list[asyncpg.Record]:
    return await db.fetch("select * from kk_expire_lots($1, $2, $3)", before_month, limit, slices)


async def create_funder(db: asyncpg.Connection, code: str, name: str, org: str | None,
                        budget_points: int | None, slices: int) -> asyncpg.Record:
    """Create a funder with its funding account and sliced budget, in one transaction."""
    async with db.transaction():
        funder = await db.fetchrow(CREATE_FUNDER, code, name, org, budget_points)
        assert funder is not None
        await db.execute("select kk_budget_set($1, $2, $3)", f"funder:{funder['id']}",
                         budget_points, slices)
        return funder


CREATE_FUNDER = """
with fid as (select nextval(pg_get_serial_sequence('funders', 'id')) as id),
acct as (insert into accounts (kind, owner_id) select 'funding', id from fid returning id, owner_id)
insert into funders (id, code, name, org, account_id, budget_points) overriding system value
select acct.owner_id, $1, $2, $3, acct.id, $4 from acct
returning *
"""


FUNDER_VIEW = """
select f.id, f.code, f.name, f.org, f.budget_points,
       (coalesce(-(select sum(posted) from account_slices s where s.account_id = f.account_id), 0)
         - coalesce((select sum(t.amount) from transfers t
                      where t.funder_id = f.id and t.kind = 'expire'), 0)
         - coalesce((select sum(tl.amount) from transfer_lots tl
                       join transfers t on t.id = tl.transfer_id
                      where tl.funder_id = f.id and t.kind = 'adjust'), 0)
       )::bigint as liability_points,
       kk_budget_remaining('funder:' || f.id) as budget_remaining_points
  from funders f
"""


async def funder_budget(db: asyncpg.Pool | asyncpg.Connection, funder_id: int) -> int | None:
    """The funder's budget (None: no cap, or no such funder) without the liability sums."""
    budget: int | None = await db.fetchval("select budget_points from funders where id = $1",
                                           funder_id)
    return budget


async def get_funder(db: asyncpg.Pool | asyncpg.Connection,
                     funder_id: int) -> asyncpg.Record | None:
    return await db.fetchrow(FUNDER_VIEW + " where f.id = $1", funder_id)


async def list_funders(db: asyncpg.Pool | asyncpg.Connection,
                       org: str | None = None) -> list[asyncpg.Record]:
    """Every funder, or only ``org``'s (an admin's organisation scope)."""
    return await db.fetch(FUNDER_VIEW + " where ($1::text is null or f.org = $1) order by f.id",
                          org)



# PDPA: the member's own ledger, as their data export shows it ----------------------------------
async def member_pocket(db: Any, member_id: int) -> dict[str, Any] | None:
    row = await db.fetchrow("select posted as balance, reserved from member_balances"
                            " where member_id = $1", member_id)
    return dict(row) if row is not None else None


async def member_transfers(db: Any, member_id: int, limit: int) -> list[dict[str, Any]]:
    rows = await db.fetch("select id, kind, amount, funder_id, ref, created_at from transfers"
                          " where member_id = $1 order by id limit $2", member_id, limit)
    return [dict(r) for r in rows]
