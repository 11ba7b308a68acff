"""Re-walk the audit hash chain and report the first broken link.

Each row must link to the previous row's hash and carry the HMAC of its own fields under the
key its ``key_id`` names: the active ``audit_hmac_key`` or one of ``audit_hmac_retired_keys``.
Rows from before the chain was keyed (``key_id`` NULL, plain SHA-256) pass only up to
``audit_legacy_max_id``; anywhere else an unkeyed row is a rewrite by someone without the key.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac

import asyncpg
import msgspec
from asyncpg.pool import PoolConnectionProxy

from kuekan.audit import key_id, material, seal
from kuekan.settings import Settings, get_settings

Conn = asyncpg.Connection | PoolConnectionProxy

GENESIS = "0" * 64
PAGE_ROWS = 5000
ROWS_SQL = """
select id, prev_hash, hash, key_id, actor, action, subject, details::text as details_text,
       to_char(at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') as at_text
  from audit_log where id > $1 order by id limit $2
"""


class Broken(msgspec.Struct, frozen=True):
    id: int
    reason: str


class Verdict(msgspec.Struct, frozen=True):
    rows: int
    broken: Broken | None


def _material(prev: str, row: asyncpg.Record) -> str:
    return material(prev, row["id"], row["at_text"], row["actor"], row["action"],
                    row["subject"], row["details_text"])


def _check_seal(prev: str, row: asyncpg.Record, keys: dict[str, str],
                legacy_max_id: int) -> str | None:
    """Why the row's own hash is wrong, or None."""
    if row["key_id"] is None:
        if row["id"] > legacy_max_id:
            return ("row is not sealed with the audit key (rewritten by someone without it,"
                    " or audit_legacy_max_id is too low)")
        if hashlib.sha256(_material(prev, row).encode()).hexdigest() != row["hash"]:
            return "row content does not match its hash (the row was altered)"
        return None
    key = keys.get(row["key_id"])
    if key is None:
        return f"row is sealed with an unknown key {row['key_id']} (not configured)"
    if not hmac.compare_digest(seal(key, _material(prev, row)), row["hash"]):
        return "row content does not match its seal (the row was altered)"
    return None


async def verify_chain(conn: Conn | asyncpg.Pool, settings: Settings | None = None) -> Verdict:
    """Check every row links to the one before it and carries the seal of its content."""
    settings = settings or get_settings()
    keys = {key_id(k): k for k in [settings.audit_hmac_key, *settings.audit_hmac_retired_keys]}
    expected_prev, last_id, rows = GENESIS, 0, 0
    while True:
        page = await conn.fetch(ROWS_SQL, last_id, PAGE_ROWS)
        for row in page:
            rows += 1
            if row["prev_hash"] != expected_prev:
                return Verdict(rows, Broken(row["id"], "prev_hash does not match the previous"
                                            " row (a row before it was deleted or altered)"))
            reason = _check_seal(expected_prev, row, keys, settings.audit_legacy_max_id)
            if reason is not None:
                return Verdict(rows, Broken(row["id"], reason))
            expected_prev, last_id = row["hash"], row["id"]
        if len(page) < PAGE_ROWS:
            return Verdict(rows, None)


def verify_audit_command(_: argparse.Namespace) -> int:
    """verify the audit log's hash chain (exit 1 at the first broken link)"""
    async def run() -> Verdict:
        conn = await asyncpg.connect(get_settings().database_url)
        try:
            return await verify_chain(conn)
        finally:
            await conn.close()

    verdict = asyncio.run(run())
    if verdict.broken is None:
        print(f"PASS  audit chain: {verdict.rows} rows verified")  # noqa: T201
        return 0
    print(f"FAIL  audit chain broken at id {verdict.broken.id}: "  # noqa: T201
          f"{verdict.broken.reason} ({verdict.rows} rows read)")
    return 1
