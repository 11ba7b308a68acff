"""The only caller of the outbox tables' SQL."""

from __future__ import annotations

from typing import Any

import asyncpg
from asyncpg.pool import PoolConnectionProxy

Conn = asyncpg.Connection | PoolConnectionProxy

Db = asyncpg.Pool | Conn
# Advisory-lock key space of outbox handlers: (namespace << 40) | outbox id. A worker holds the
# key while it runs a row's handlers, so "nobody holds it" proves no live worker runs the row.
_LOCK_NAMESPACE = 0x6B6F << 40


async def emit(conn: Conn, topic: str, payload: dict[str, Any],
               member_id: int | None = None) -> int:
    """Write an outbox row in the caller's transaction (the effect and its event commit
    together); returns its id. The one way Python emits an event; SQL functions that emit do
    the same insert inside their own statement."""
    return int(await conn.fetchval(
        "insert into outbox (topic, member_id, payload) values ($1, $2, $3) returning id",
        topic, member_id, payload))


def lock_key(outbox_id: int) -> int:
    return _LOCK_NAMESPACE | outbox_id


async def claim_unrelayed(conn: Conn, limit: int) -> list[asyncpg.Record]:
    """Lock up to ``limit`` unrelayed rows other relays are not holding (caller's transaction)."""
    return await conn.fetch(
        "select id, redrives from outbox where relayed_at is null order by id limit $1"
        " for update skip locked", limit)


async def mark_relayed(conn: Conn, ids: list[int]) -> None:
    await conn.execute("update outbox set relayed_at = now() where id = any($1::bigint[])", ids)


async def lock_row(conn: Conn, outbox_id: int) -> None:
    await conn.execute("select pg_advisory_xact_lock($1)", lock_key(outbox_id))


async def try_lock_row(conn: Conn, outbox_id: int) -> bool:
    return bool(await conn.fetchval("select pg_try_advisory_xact_lock($1)", lock_key(outbox_id)))


async def get_row(db: Db, outbox_id: int) -> asyncpg.Record | None:
    return await db.fetchrow(
        "select id, topic, member_id, payload, created_at, redrives from outbox where id = $1",
        outbox_id)


async def mark_processed(conn: Conn, outbox_id: int) -> bool:
    """True when this call recorded the row as processed (the first, and only, time)."""
    status = await conn.execute(
        "insert into outbox_processed (outbox_id) values ($1) on conflict do nothing", outbox_id)
    return bool(status.endswith(" 1"))


async def dead_letter(db: Db, outbox_id: int, topic: str, error: str, attempts: int) -> None:
    await db.execute(
        "insert into outbox_dead (outbox_id, topic, error, attempts) values ($1, $2, $3, $4)"
        " on conflict (outbox_id) do update set status = 'dead', error = excluded.error,"
        " attempts = outbox_dead.attempts + excluded.attempts, created_at = now()",
        outbox_id, topic, error[:2000], attempts)


async def orphans(db: Db, older_than_s: float, limit: int) -> list[asyncpg.Record]:
    """Relayed rows whose handlers never committed and that are not dead-lettered."""
    return await db.fetch(
        "select o.id, o.redrives from outbox o"
        " where o.relayed_at is not null"
        "   and o.relayed_at < now() - make_interval(secs => $1)"
        "   and not exists (select 1 from outbox_processed p where p.outbox_id = o.id)"
        "   and not exists (select 1 from outbox_dead d where d.outbox_id = o.id"
        "                   and d.status = 'dead')"
        " order by o.id limit $2", older_than_s, limit)


async def backlog(db: Db) -> asyncpg.Record:
    row = await db.fetchrow(
        "select count(*) as pending,"
        " coalesce(extract(epoch from now() - min(created_at)), 0)::float8 as lag_s"
        " from outbox where relayed_at is null")
    assert row is not None
    return row


async def list_dead(db: Db, status: str | None, before_id: int | None,
                    limit: int) -> list[dict[str, Any]]:
    rows = await db.fetch(
        "select d.outbox_id, d.topic, d.error, d.attempts, d.status, d.created_at,"
        " d.redriven_at, d.redriven_by, o.payload from outbox_dead d"
        " join outbox o on o.id = d.outbox_id"
        " where ($1::text is null or d.status = $1) and ($2::bigint is null or d.outbox_id < $2)"
        " order by d.outbox_id desc limit $3", status, before_id, limit)
    return [dict(r) for r in rows]


async def redrive(conn: Conn, outbox_id: int, by: str) -> bool:
    """Send a dead row through the relay again under a fresh job id."""
    status = await conn.execute(
        "update outbox_dead set status = 'redriven', redriven_at = now(), redriven_by = $2"
        " where outbox_id = $1 and status = 'dead'", outbox_id, by)
    if not status.endswith(" 1"):
        return False
    await conn.execute(
        "update outbox set relayed_at = null, redrives = redrives + 1 where id = $1", outbox_id)
    return True
