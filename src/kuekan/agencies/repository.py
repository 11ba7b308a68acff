"""The only caller of the agency tables' SQL."""

from __future__ import annotations

import datetime as dt

import asyncpg
from asyncpg.pool import PoolConnectionProxy

Db = asyncpg.Pool | asyncpg.Connection


async def create_key(db: Db, agency: str, prefix: str, key_hash: str, scopes: list[str],
                     created_by: str) -> asyncpg.Record:
    row = await db.fetchrow(
        "insert into agency_keys (agency, prefix, key_hash, scopes, created_by)"
        " values ($1, $2, $3, $4, $5) returning id, agency, prefix, scopes, created_at,"
        " revoked_at", agency, prefix, key_hash, scopes, created_by)
    assert row is not None
    return row


async def key_by_hash(db: Db, key_hash: str) -> asyncpg.Record | None:
    return await db.fetchrow(
        "select id, agency, scopes from agency_keys where key_hash = $1 and revoked_at is null",
        key_hash)


async def list_keys(db: Db) -> list[asyncpg.Record]:
    return await db.fetch("select id, agency, prefix, scopes, created_at, revoked_at"
                          " from agency_keys order by id limit 1000")


async def revoke_key(db: Db, key_id: int) -> bool:
    status = await db.execute("update agency_keys set revoked_at = now()"
                              " where id = $1 and revoked_at is null", key_id)
    return status.endswith(" 1")


async def get_key(db: Db, key_id: int) -> asyncpg.Record | None:
    return await db.fetchrow("select id, agency, scopes, revoked_at from agency_keys"
                             " where id = $1", key_id)


async def create_webhook(db: Db, key_id: int, url: str, secret: str,
                         topics: list[str]) -> asyncpg.Record:
    row = await db.fetchrow(
        "insert into agency_webhooks (agency_key_id, url, secret, topics)"
        " values ($1, $2, $3, $4) returning id, agency_key_id, url, topics, active, created_at",
        key_id, url, secret, topics)
    assert row is not None
    return row


async def deliveries(db: Db, webhook_id: int, limit: int) -> list[asyncpg.Record]:
    return await db.fetch(
        "select id, outbox_id, topic, status, attempts, last_status, last_error, delivered_at,"
        " next_attempt_at from webhook_deliveries where webhook_id = $1 order by id desc"
        " limit $2", webhook_id, limit)


async def claim_due(conn: asyncpg.Connection | PoolConnectionProxy, limit: int, lease_s: float
                    ) -> list[asyncpg.Record]:
    """Take due deliveries and push their next attempt past a lease, so a second worker does
    not send them at the same time; a crash mid-send only delays them by the lease."""
    return await conn.fetch(
        "with due as (select d.id from webhook_deliveries d where d.status = 'pending'"
        "  and d.next_attempt_at <= now() order by d.next_attempt_at limit $1"
        "  for update skip locked)"
        " update webhook_deliveries d set attempts = d.attempts + 1,"
        "  next_attempt_at = now() + make_interval(secs => $2)"
        " from due, agency_webhooks w where d.id = due.id and w.id = d.webhook_id"
        " returning d.id, d.outbox_id, d.topic, d.payload, d.attempts, w.url, w.secret",
        limit, lease_s)


async def mark(db: Db, delivery_id: int, *, ok: bool, status: int | None, error: str | None,
               give_up: bool, retry_at: dt.datetime) -> None:
    await db.execute(
        "update webhook_deliveries set status = case when $2 then 'delivered'"
        "  when $5 then 'failed' else 'pending' end,"
        " last_status = $3, last_error = $4, next_attempt_at = $6,"
        " delivered_at = case when $2 then now() end where id = $1",
        delivery_id, ok, status, error, give_up, retry_at)
