"""Forward-only migrations: numbered plain-SQL files applied under an advisory lock.

Hand-written (about forty lines) instead of a tool: the rules are three — apply files in order,
once each, under ``pg_advisory_lock`` so concurrent starters wait — and a tool would add a
dependency without removing code.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg

MIGRATIONS_DIR = Path(__file__).resolve().parents[3] / "sql" / "migrations"
_LOCK_ID = 0x6B75656B616E  # "kuekan"


def with_database(dsn: str, name: str) -> str:
    """The same server URL with another database name (query string, e.g. a socket, kept)."""
    parts = urlsplit(dsn)
    return urlunsplit(parts._replace(path=f"/{name}"))


def database_name(dsn: str) -> str:
    return urlsplit(dsn).path.lstrip("/") or "postgres"


async def ensure_database(dsn: str) -> None:
    """Create the target database when the server is reachable but the database is not there."""
    try:
        conn = await asyncpg.connect(dsn)
    except asyncpg.InvalidCatalogNameError:
        name = database_name(dsn)
        admin = await asyncpg.connect(with_database(dsn, "postgres"))
        try:
            await admin.execute(f'create database "{name}"')
        finally:
            await admin.close()
    else:
        await conn.close()


def _read_migrations(directory: Path) -> list[tuple[str, str]]:
    return [(p.stem, p.read_text(encoding="utf-8")) for p in sorted(directory.glob("*.sql"))]


async def migrate(dsn: str, directory: Path = MIGRATIONS_DIR) -> list[str]:
    """Apply pending migrations; return the versions applied now."""
    await ensure_database(dsn)
    conn = await asyncpg.connect(dsn)
    applied_now: list[str] = []
    try:
        await conn.execute("select pg_advisory_lock($1)", _LOCK_ID)
        await conn.execute(
            "create table if not exists schema_migrations (version text primary key,"
            " checksum text not null, applied_at timestamptz not null default now())"
        )
        done = {r["version"] for r in await conn.fetch("select version from schema_migrations")}
        for version, sql in _read_migrations(directory):
            if version in done:
                continue
            async with conn.transaction():
                await conn.execute(sql)
                await conn.execute(
                    "insert into schema_migrations (version, checksum) values ($1, $2)",
                    version, hashlib.sha256(sql.encode()).hexdigest(),
                )
            applied_now.append(version)
    finally:
        await conn.execute("select pg_advisory_unlock($1)", _LOCK_ID)
        await conn.close()
    return applied_now
