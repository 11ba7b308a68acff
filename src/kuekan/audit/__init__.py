"""Append-only, hash-chained audit log of admin and merchant actions, sealed with a key.

``record(conn, actor, action, subject, details)`` appends a row in the caller's transaction
(so the entry commits or rolls back with the action); :mod:`kuekan.audit.verify` re-walks the
chain (``python -m kuekan verify-audit``); :mod:`kuekan.audit.middleware` records every
state-changing admin/merchant HTTP request.

Each row's hash is HMAC-SHA256, keyed with the setting ``audit_hmac_key``, over the row's
fields and the previous row's hash (``seal``). Without the key, someone who can write to the
database can still change a row, but can no longer recompute the chain after it: verify-audit
finds the first row whose seal does not match. The key stays in the application: PostgreSQL
(``kk_audit_prepare``, sql/migrations/0110_audit_hmac.sql) only hands out the previous hash,
ids and timestamps under the chain lock.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from typing import Any

import asyncpg
import msgspec
from asyncpg.pool import PoolConnectionProxy

from kuekan.settings import get_settings

Conn = asyncpg.Connection | PoolConnectionProxy
Row = tuple[str, str, str, dict[str, Any]]  # actor, action, subject, details

INSERT_SQL = """
insert into audit_log (id, at, actor, action, subject, details, prev_hash, hash, key_id)
select r.id, r.at, r.actor, r.action, r.subject, r.details::jsonb, r.prev, r.hash, $9
  from unnest($1::bigint[], $2::timestamptz[], $3::text[], $4::text[], $5::text[], $6::text[],
              $7::text[], $8::text[]) as r(id, at, actor, action, subject, details, prev, hash)
"""


def material(prev: str, row_id: int, at_text: str, actor: str, action: str, subject: str,
             details_text: str) -> str:
    """The sealed text: every field length-prefixed, so no two rows share a material."""
    fields = [prev, str(row_id), at_text, actor, action, subject, details_text]
    return "|".join(f"{len(f)}:{f}" for f in fields)


def key_id(key: str) -> str:
    """A short public name for a key, stored on each row so rotation knows which key to use."""
    return hashlib.sha256(b"kuekan-audit-key-id:" + key.encode()).hexdigest()[:16]


def seal(key: str, material_text: str) -> str:
    return hmac.new(key.encode(), material_text.encode(), hashlib.sha256).hexdigest()


async def append(conn: Conn, rows: Sequence[Row], key: str) -> int:
    """Append rows in order under the chain lock (the caller's transaction); returns the
    last id. Two round trips whatever the number of rows."""
    assert rows
    assert key
    assert conn.is_in_transaction(), "the chain lock must be held to the end of a transaction"
    prepared = await conn.fetch(
        "select * from kk_audit_prepare($1::text[])",
        [msgspec.json.encode(details).decode() for *_, details in rows])
    prev = prepared[0]["prev_hash"]
    prevs, hashes = [], []
    for (actor, action, subject, _), p in zip(rows, prepared, strict=True):
        prevs.append(prev)
        prev = seal(key, material(prev, p["id"], p["at_text"], actor, action, subject,
                                  p["details_text"]))
        hashes.append(prev)
    ids = [p["id"] for p in prepared]
    await conn.execute(INSERT_SQL, ids, [p["at"] for p in prepared], [r[0] for r in rows],
                       [r[1] for r in rows], [r[2] for r in rows],
                       [p["details_text"] for p in prepared], prevs, hashes, key_id(key))
    return int(ids[-1])


async def record(conn: asyncpg.Pool | Conn, actor: str, action: str,
                 subject: str, details: dict[str, Any] | None = None) -> int:
    """Append one audit row; returns its id. The chain lock is held to the end of the
    caller's transaction, so call it last in a transaction, not first. Given a pool or a
    connection outside a transaction, the row gets a transaction of its own."""
    row: Row = (actor, action, subject, details or {})
    key = get_settings().audit_hmac_key
    if isinstance(conn, asyncpg.Pool):
        async with conn.acquire() as own, own.transaction():
            return await append(own, [row], key)
    if not conn.is_in_transaction():
        async with conn.transaction():
            return await append(conn, [row], key)
    return await append(conn, [row], key)


__all__ = ["append", "key_id", "material", "record", "seal"]
