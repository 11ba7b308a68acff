"""The migrated schema where two migrations define one thing: the table is the first one's."""

from __future__ import annotations

import asyncpg


async def test_tiers_is_the_table_of_migration_0004(pool: asyncpg.Pool) -> None:
    # 0005 repeats `create table if not exists tiers` with numeric(4, 2) and no defaults, under
    # a comment saying "whichever migration runs first makes the table": wrong, 0004 always
    # does, so 0005's definition and insert are no-ops. The file stays byte for byte as
    # applied (kuekan.db.migrate refuses an applied file whose checksum changed, comments
    # included), so the correction lives here and in docs/ARCHITECTURE.md.
    cols = {r["column_name"]: r for r in await pool.fetch(
        "select column_name, data_type, numeric_precision, numeric_scale, column_default"
        " from information_schema.columns where table_name = 'tiers'")}
    assert set(cols) == {"code", "multiplier", "threshold_points"}
    m = cols["multiplier"]
    assert (m["data_type"], m["numeric_precision"], m["numeric_scale"]) == ("numeric", 6, 3)
    assert m["column_default"] is not None and cols["threshold_points"]["column_default"] == "0"
    checks = await pool.fetch(
        "select pg_get_constraintdef(oid) d from pg_constraint"
        " where conrelid = 'tiers'::regclass and contype = 'c'")
    assert any("multiplier > " in r["d"] for r in checks), checks
    seeded = await pool.fetch("select code from tiers where code in ('standard', 'vip')")
    assert {r["code"] for r in seeded} == {"standard", "vip"}
