"""The audit middleware through the real API server: admin and merchant writes are recorded
once with actor and action, member reads are not, and the chain still verifies."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import asyncpg
import httpx

from kuekan.audit.verify import verify_chain
from tests.conftest import World, idem
from tests.integration.rewards.helpers import merchant, qr, staff
from tests.integration.workers.test_audit import verify_cli


def actor(world: World, headers: dict[str, str]) -> str:
    return world.tokens.principal(headers["Authorization"].split()[1]).scope


async def rows_for(pool: asyncpg.Pool, path: str, after_id: int) -> list[asyncpg.Record]:
    return await pool.fetch("select * from audit_log where id > $1 and subject = $2"
                            " and action like 'http.%' order by id", after_id, path)


async def settle(pool: asyncpg.Pool, path: str, after_id: int, n: int) -> list[asyncpg.Record]:
    """The row is written just after the response; give it a moment, then read again."""
    deadline = time.monotonic() + 5
    rows = await rows_for(pool, path, after_id)
    while len(rows) < n and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
        rows = await rows_for(pool, path, after_id)
    await asyncio.sleep(0.3)  # room for a (wrong) second row
    return await rows_for(pool, path, after_id)


async def test_admin_and_merchant_writes_are_audited_once_member_reads_are_not(
        pool: asyncpg.Pool, http: httpx.AsyncClient, world: World) -> None:
    start = int(await pool.fetchval("select coalesce(max(id), 0) from audit_log"))
    admin = await world.admin()
    funder = await world.funder()
    member, me = await world.member()
    body: dict[str, Any] = {"member_id": member, "points": 25, "funder_id": funder,
                            "reason": "audit test"}
    headers = idem(**admin)
    r = await http.post("/admin/awards", headers=headers, json=body)
    assert r.status_code == 201, r.text
    (row,) = await settle(pool, "/api/v1/admin/awards", start, 1)
    assert row["action"] == "http.post" and row["actor"] == actor(world, admin)
    assert row["details"]["status"] == 201
    assert row["details"]["idempotency_key"] == headers["Idempotency-Key"]
    assert row["details"]["org"] == "pao"

    shop = await merchant(http, world)
    cashier = await staff(world, shop)
    r = await http.post("/merchant/scans", headers=idem(**cashier),
                        json={"member_token": qr(world, member), "purchase_thb": 100})
    assert r.status_code == 201, r.text
    (mrow,) = await settle(pool, "/api/v1/merchant/scans", start, 1)
    assert mrow["action"] == "http.post" and mrow["actor"] == actor(world, cashier)
    assert mrow["details"]["merchant_id"] == shop

    # A member's reads and writes are not admin/merchant actions.
    before = int(await pool.fetchval("select max(id) from audit_log"))
    assert (await http.get("/me/pocket", headers=me)).status_code == 200
    assert (await http.get("/me/history", headers=me)).status_code == 200
    assert (await http.post("/me/consents", headers=me, json={
        "purpose": "marketing", "version": "v1", "granted": True})).status_code == 201
    await asyncio.sleep(0.5)
    assert await pool.fetchval("select count(*) from audit_log where id > $1"
                               " and action like 'http.%'", before) == 0
    assert (await verify_chain(pool)).broken is None
    assert verify_cli().returncode == 0


async def test_tampering_with_middleware_rows_is_detected_with_the_trigger_disabled(
        pool: asyncpg.Pool, http: httpx.AsyncClient, world: World) -> None:
    start = int(await pool.fetchval("select coalesce(max(id), 0) from audit_log"))
    admin, funder = await world.admin(), await world.funder()
    member, _ = await world.member()
    for points in (1, 2, 3):
        r = await http.post("/admin/awards", headers=idem(**admin), json={
            "member_id": member, "points": points, "funder_id": funder, "reason": "t"})
        assert r.status_code == 201
    rows = await settle(pool, "/api/v1/admin/awards", start, 3)
    middle = rows[1]
    async with pool.acquire() as conn:
        await conn.execute("alter table audit_log disable trigger audit_log_append_only")
        try:
            await conn.execute("update audit_log set actor = 'admin:someone-else' where id = $1",
                               middle["id"])
            out = verify_cli()
            assert out.returncode == 1 and f"broken at id {middle['id']}" in out.stdout
            await conn.execute("update audit_log set actor = $2 where id = $1", middle["id"],
                               middle["actor"])
            assert verify_cli().returncode == 0
        finally:
            await conn.execute("alter table audit_log enable trigger audit_log_append_only")
        # The trigger is back: the application cannot change a row.
        try:
            await conn.execute("update audit_log set actor = 'x' where id = $1", middle["id"])
        except asyncpg.PostgresError as exc:
            assert "append-only" in str(exc)
        else:
            raise AssertionError("the append-only trigger did not come back")
