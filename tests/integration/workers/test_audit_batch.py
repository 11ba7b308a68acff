"""Buffered HTTP audit rows: one per request under a flood, chained, and drained on shutdown."""

from __future__ import annotations

import asyncio

import asyncpg
import httpx

from kuekan.audit.verify import verify_chain
from tests.conftest import World, idem, start_server, stop_server


async def test_50_concurrent_admin_requests_leave_50_chained_rows_even_across_a_shutdown(
        world: World, pool: asyncpg.Pool) -> None:
    proc, base = start_server()
    admin = await world.admin()
    funder = await world.funder()
    members = await world.members(50)
    start = int(await pool.fetchval("select coalesce(max(id), 0) from audit_log"))
    try:
        async with httpx.AsyncClient(base_url=f"{base}/api/v1", timeout=30) as c:
            responses = await asyncio.gather(*(
                c.post("/admin/awards", headers=admin | idem(), json={
                    "member_id": m, "points": 1, "funder_id": funder, "reason": "audit"})
                for m, _ in members))
        assert [r.status_code for r in responses] == [201] * 50
    finally:
        stop_server(proc)  # SIGTERM right away: the buffer must drain before the pool closes
    keys = {r.request.headers["idempotency-key"] for r in responses}
    rows = await pool.fetch("select details from audit_log where id > $1 and action = 'http.post'"
                            " and subject = '/api/v1/admin/awards'", start)
    assert {row["details"]["idempotency_key"] for row in rows} >= keys
    assert len([r for r in rows if r["details"]["idempotency_key"] in keys]) == 50
    verdict = await verify_chain(pool)
    assert verdict.broken is None, verdict
