"""Deleting old rows in bounded batches, the one way.

Each batch is one ``delete ... where ctid in (select ctid ... limit n)`` statement, so its own
short transaction: a cleanup never holds a long lock or writes one huge WAL record, and a
crash loses at most the batch in flight (the next run picks the rest up). The number of
batches is bounded too, so one run always ends.
"""

from __future__ import annotations

from typing import Any

import asyncpg


async def delete_in_batches(db: asyncpg.Pool | asyncpg.Connection, table: str, where: str,
                            *args: Any, batch_rows: int, max_batches: int) -> int:
    """Delete the rows of ``table`` matching ``where`` (SQL text of the caller's repository,
    with ``$1...`` for ``args``); returns how many were deleted."""
    assert batch_rows > 0
    assert max_batches > 0
    sql = (f"delete from {table} where ctid in"  # noqa: S608 - table/where are code, not input
           f" (select ctid from {table} where {where} limit {int(batch_rows)})")
    deleted = 0
    for _ in range(max_batches):
        status = await db.execute(sql, *args)
        n = int(status.split()[-1])
        deleted += n
        if n < batch_rows:
            break
    return deleted
