"""The audit log: hash chain verified by `python -m kuekan verify-audit`; append-only."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import asyncpg
import pytest

from kuekan import audit
from kuekan.audit.verify import verify_chain

REPO = Path(__file__).resolve().parents[3]


def verify_cli() -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "kuekan", "verify-audit"], cwd=REPO,
                          env=dict(os.environ), capture_output=True, text=True, timeout=60,
                          check=False)


async def five_rows(pool: asyncpg.Pool) -> list[int]:
    return [await audit.record(pool, "a:1", "reward.create", f"reward:{i}", {"i": i, "th": "ผ้าไหม"})
            for i in range(5)]


async def test_altering_a_middle_row_is_detected(pool: asyncpg.Pool) -> None:
    ids = await five_rows(pool)
    assert verify_cli().returncode == 0
    middle = ids[2]
    async with pool.acquire() as conn:
        await conn.execute("set session_replication_role = replica")  # bypass the trigger
        try:
            await conn.execute("update audit_log set details = '{\"i\": 999}' where id = $1",
                               middle)
            out = verify_cli()
            assert out.returncode == 1
            assert f"broken at id {middle}" in out.stdout and "altered" in out.stdout
            await conn.execute("update audit_log set details = $2 where id = $1",
                               middle, {"i": 2, "th": "ผ้าไหม"})
        finally:
            await conn.execute("set session_replication_role = origin")
    assert verify_cli().returncode == 0, verify_cli().stdout


async def test_deleting_a_middle_row_is_detected(pool: asyncpg.Pool) -> None:
    ids = await five_rows(pool)
    async with pool.acquire() as conn:
        row = await conn.fetchrow("select * from audit_log where id = $1", ids[2])
        assert row is not None
        await conn.execute("set session_replication_role = replica")
        try:
            await conn.execute("delete from audit_log where id = $1", ids[2])
            out = verify_cli()
            assert out.returncode == 1
            assert f"broken at id {ids[3]}" in out.stdout
            await conn.execute(
                "insert into audit_log (id, at, actor, action, subject, details, prev_hash, hash,"
                " key_id) values ($1,$2,$3,$4,$5,$6,$7,$8,$9)", *row.values())
        finally:
            await conn.execute("set session_replication_role = origin")
    assert (await verify_chain(pool)).broken is None


async def test_the_log_refuses_update_and_delete(pool: asyncpg.Pool) -> None:
    rid = (await five_rows(pool))[0]
    async with pool.acquire() as conn:
        with pytest.raises(asyncpg.PostgresError, match="append-only"):
            await conn.execute("update audit_log set actor = 'x' where id = $1", rid)
        with pytest.raises(asyncpg.PostgresError, match="append-only"):
            await conn.execute("delete from audit_log where id = $1", rid)


async def test_the_application_role_cannot_update_or_delete_audit_rows(pool: asyncpg.Pool) -> None:
    rid = (await five_rows(pool))[0]
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("set local role kuekan_app")
        # It can append (kk_audit_prepare and an INSERT) and read...
        await audit.record(conn, "a:1", "probe", "x", {})
        assert await conn.fetchval("select count(*) from audit_log where id = $1", rid) == 1
        # ...but has no UPDATE/DELETE privilege, before any trigger runs.
        for sql in ("update audit_log set actor = 'x' where id = $1",
                    "delete from audit_log where id = $1"):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                async with conn.transaction():
                    await conn.execute(sql, rid)
    assert (await verify_chain(pool)).broken is None
