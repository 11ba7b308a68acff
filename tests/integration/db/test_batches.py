"""Batched deletes on real PostgreSQL: only matching rows, in bounded batches, bounded runs."""

from __future__ import annotations

import asyncpg

from kuekan.db.batches import delete_in_batches


async def test_deletes_only_matching_rows_in_batches_and_stops_at_the_batch_bound(
        pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        await conn.execute("create temp table kk_batch_probe (n int)")
        await conn.execute("insert into kk_batch_probe select g from generate_series(1, 250) g")
        # Two batches of 40 at most: 80 of the 200 matching rows go, the run ends.
        assert await delete_in_batches(conn, "kk_batch_probe", "n <= $1", 200,
                                       batch_rows=40, max_batches=2) == 80
        assert await conn.fetchval("select count(*) from kk_batch_probe") == 170
        # Unbounded enough: the rest of the matching rows go, the others stay.
        assert await delete_in_batches(conn, "kk_batch_probe", "n <= $1", 200,
                                       batch_rows=40, max_batches=100) == 120
        assert await conn.fetchval("select min(n) from kk_batch_probe") == 201
        assert await conn.fetchval("select count(*) from kk_batch_probe") == 50
