"""The audit chain is keyed: rewriting a row and re-hashing the chain after it is detected.

Before the key, the chain was plain SHA-256: whoever could write to the database could alter
a row, recompute every hash after it, and verify-audit passed. This test does exactly that, in
a database of its own (the suite's chain is shared by every test), with every way of
re-hashing an attacker without the key has.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from kuekan import audit
from kuekan.db.migrate import database_name, migrate, with_database
from kuekan.settings import Settings

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture
async def chain_db(settings: Settings) -> AsyncIterator[str]:
    dsn = with_database(settings.database_url, f"kuekan_test_{os.getpid()}_audit")
    admin = await asyncpg.connect(with_database(settings.database_url, "postgres"))
    name = database_name(dsn)
    try:
        await admin.execute(f'drop database if exists "{name}"')
        await admin.execute(f'create database "{name}"')
        await migrate(dsn)
        yield dsn
    finally:
        await admin.execute(f'drop database if exists "{name}" with (force)')
        await admin.close()


def verify_cli(dsn: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "kuekan", "verify-audit"], cwd=REPO,
                          env={**os.environ, "KUEKAN_DATABASE_URL": dsn, **env},
                          capture_output=True, text=True, timeout=60, check=False)


async def rehash_from(conn: asyncpg.Connection, first_id: int, key: str | None,
                      claimed_key_id: str | None) -> None:
    """What a writer to the database does to hide an edit: recompute every hash from the
    altered row on, with SHA-256 (key None) or an HMAC under a key of its own."""
    rows = await conn.fetch(
        "select id, prev_hash, actor, action, subject, details::text as details_text,"
        " to_char(at at time zone 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') as at_text"
        " from audit_log where id >= $1 order by id", first_id)
    prev = rows[0]["prev_hash"]
    for r in rows:
        text = audit.material(prev, r["id"], r["at_text"], r["actor"], r["action"],
                              r["subject"], r["details_text"])
        new = (hashlib.sha256(text.encode()).hexdigest() if key is None
               else audit.seal(key, text))
        await conn.execute("update audit_log set prev_hash = $2, hash = $3, key_id = $4"
                           " where id = $1", r["id"], prev, new, claimed_key_id)
        prev = new


async def test_rewriting_a_row_and_rehashing_the_chain_is_detected(
        chain_db: str, settings: Settings) -> None:
    conn = await asyncpg.connect(chain_db)
    try:
        ids = [await audit.record(conn, "a:1", "award.adjust", f"member:{i}", {"points": i})
               for i in range(1, 5)]
        assert verify_cli(chain_db).returncode == 0
        target = ids[1]
        await conn.execute("set session_replication_role = replica")  # past the trigger
        await conn.execute("update audit_log set details = '{\"points\": 100000}'"
                           " where id = $1", target)
        real_kid = audit.key_id(settings.audit_hmac_key)
        attempts = [
            (None, None, "not sealed with the audit key"),  # the old, unkeyed scheme
            ("guessed-key", audit.key_id("guessed-key"), "unknown key"),
            ("guessed-key", real_kid, "does not match its seal"),  # claiming the real key
        ]
        for key, kid, reason in attempts:
            await rehash_from(conn, target, key, kid)
            out = verify_cli(chain_db)
            assert out.returncode == 1, (key, kid, out.stdout)
            assert f"broken at id {target}" in out.stdout and reason in out.stdout, out.stdout
        # The re-hash itself is right: with the real key the forged chain would pass. So what
        # catches the attacker above is only that the key is missing.
        await rehash_from(conn, target, settings.audit_hmac_key, real_kid)
        assert verify_cli(chain_db).returncode == 0
        # Unkeyed rows pass only up to audit_legacy_max_id (rows older than the key).
        await rehash_from(conn, target, None, None)
        assert verify_cli(chain_db, KUEKAN_AUDIT_LEGACY_MAX_ID=str(ids[-1])).returncode == 0
        assert verify_cli(chain_db, KUEKAN_AUDIT_LEGACY_MAX_ID=str(ids[-2])).returncode == 1
    finally:
        await conn.close()


async def test_rows_sealed_with_a_retired_key_still_verify_after_a_rotation(
        chain_db: str, settings: Settings) -> None:
    conn = await asyncpg.connect(chain_db)
    try:
        async with conn.transaction():
            await audit.append(conn, [("a:1", "before.rotation", "x", {}),
                                      ("a:1", "before.rotation", "y", {})], "the-old-key")
        await audit.record(conn, "a:1", "after.rotation", "z", {})  # the active key
        out = verify_cli(chain_db)
        assert out.returncode == 1 and "unknown key" in out.stdout
        assert verify_cli(chain_db, KUEKAN_AUDIT_HMAC_RETIRED_KEYS="the-old-key").returncode == 0
    finally:
        await conn.close()
