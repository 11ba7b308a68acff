"""PDPA: consent with time and version, export, erasure with the ledger intact."""

from __future__ import annotations

from typing import Any

import asyncpg
import httpx

from tests.conftest import assert_ledger_ok, idem


async def test_consent_export_and_erasure_keep_the_ledger_balanced(
        http: httpx.AsyncClient, world: Any, pool: asyncpg.Pool) -> None:
    admin, funder = await world.admin(), await world.funder()
    member, me = await world.member()
    sub = await pool.fetchval("select line_sub from members where id = $1", member)
    r = await http.post("/admin/awards", headers=idem(**admin), json={
        "member_id": member, "points": 120, "funder_id": funder, "reason": "welcome"})
    assert r.status_code == 201
    c = await http.post("/me/consents", headers=me, json={
        "purpose": "marketing", "version": "2025-01", "granted": True})
    assert c.status_code == 201 and c.json()["version"] == "2025-01" and c.json()["at"]

    export = (await http.get("/me/export", headers=me)).json()
    assert export["member"]["line_sub"] == sub
    assert [t["amount"] for t in export["transfers"]] == [120]
    assert export["consents"][0]["purpose"] == "marketing"

    refused = await http.post("/me/erasure", headers=me, json={"confirm": False})
    assert refused.status_code == 422
    erased = await http.post("/me/erasure", headers=me, json={"confirm": True})
    assert erased.status_code == 200, erased.text
    row = await pool.fetchrow("select line_sub, display_name, status from members where id = $1",
                              member)
    assert row is not None
    assert row["line_sub"] != sub and row["line_sub"].startswith("erased-")
    assert row["status"] == "erased"
    assert await pool.fetchval("select posted from member_balances where member_id = $1",
                               member) == 120
    assert await pool.fetchval("select count(*) from transfers where member_id = $1", member) == 1
    assert await pool.fetchval("select count(*) from audit_log where action = 'member.erasure'"
                               " and subject = $1", f"member:{member}") == 1
    await assert_ledger_ok(pool)
