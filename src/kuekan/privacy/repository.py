"""The only caller of the privacy tables' SQL (consents, erasures)."""

from __future__ import annotations

from typing import Any

import asyncpg
from asyncpg.pool import PoolConnectionProxy

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
