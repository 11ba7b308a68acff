"""Shared by the fault tests: terminate a database's PostgreSQL backends."""

from __future__ import annotations

import asyncio

import asyncpg


async def terminate_backends(dsn: str, first_running: str | None = None) -> int:
    """Terminate every backend of ``dsn``'s database but our own; returns how many.

    With ``first_running`` (a text the query contains), first wait up to a second for backends
    running such a query and terminate those, so the fault lands mid-statement.
    """
    base, _, name = dsn.rpartition("/")
    admin = await asyncpg.connect(f"{base}/postgres")
    try:
        in_flight: list[asyncpg.Record] = []
        for _ in range(100 if first_running else 0):
            in_flight = await admin.fetch(
                "select pg_terminate_backend(pid) from pg_stat_activity where datname = $1"
                " and state = 'active' and strpos(query, $2) > 0", name, first_running)
            if in_flight:
                break
            await asyncio.sleep(0.01)
        rest = await admin.fetch(
            "select pg_terminate_backend(pid) from pg_stat_activity"
            " where datname = $1 and pid <> pg_backend_pid()", name)
    finally:
        await admin.close()
    return len(in_flight) + len(rest)
