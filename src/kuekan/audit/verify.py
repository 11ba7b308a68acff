"""Re-walk the audit hash chain and report the first broken link."""

from __future__ import annotations

import argparse
import asyncio
import hashlib

import asyncpg
import msgspec
from asyncpg.pool import PoolConnectionProxy

from kuekan.settings import get_settings

Conn = asyncpg.Connection | PoolConnectionProxy

GENESIS = "0" * 64
PAGE_ROWS = 5000
ROWS_SQL = """
select id, prev_hash, hash, actor, action, subject, details::text as details_text,
       to_char(at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') as at_text
  from audit_log where id > $1 order by id limit $2
"""


class Broken(msgspec.Struct, frozen=True):
    id: int
    reason: str


class Verdict(msgspec.Struct, frozen=True):
    rows: int
    broken: Broken | None


def material(prev: str, row_id: int, at_text: str, actor: str, action: str, subject: str,
             details_text: str) -> str:
    """The same length-prefixed text the database hashes in kk_audit_material."""
    fields = [prev, str(row_id), at_text, actor, action, subject, details_text]
    return "|".join(f"{len(f)}:{f}" for f in fields)


def row_hash(prev: str, row: asyncpg.Record) -> str:
    text = material(prev, row["id"], row["at_text"], row["actor"], row["action"],
                    row["subject"], row["details_text"])
    return hashlib.sha256(text.encode()).hexdigest()


async def verify_chain(conn: Conn | asyncpg.Pool) -> Verdict:
    """Check every row links to the one before it and hashes to what it claims."""
    expected_prev, last_id, rows = GENESIS, 0, 0
    while True:
        page = await conn.fetch(ROWS_SQL, last_id, PAGE_ROWS)
        for row in page:
            rows += 1
            if row["prev_hash"] != expected_prev:
                return Verdict(rows, Broken(row["id"], "prev_hash does not match the previous"
                                            " row (a row before it was deleted or altered)"))
            if row_hash(expected_prev, row) != row["hash"]:
                return Verdict(rows, Broken(row["id"], "row content does not match its hash"
                                            " (the row was altered)"))
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
