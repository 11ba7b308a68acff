"""Migrations: versioned files for tables, repeatable files for function bodies.

``sql/migrations/NNNN_name.sql`` are applied in order, once each, and their checksums are kept:
an applied file that changed afterwards stops the run (it would mean two databases built from
"the same" migration differ). ``sql/functions/<name>.sql`` hold the current body of every SQL
function; each is re-applied, after the versioned files, whenever its checksum differs from the
one recorded. So a function's body lives in exactly one file, and a body change is an edit of
that file; a signature change (arguments, return type) needs a versioned migration that drops the
old function first. Everything runs under ``pg_advisory_lock`` so concurrent starters wait.

Hand-written (under a hundred lines) instead of a tool: the rules are these few, and a tool would
add a dependency without removing code.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from kuekan.kit.resources import functions_dir, migrations_dir

_LOCK_ID = 0x6B75656B616E  # "kuekan"


class MigrationError(RuntimeError):
    """The migration files or the database's record of them cannot be trusted: nothing ran."""


@dataclass(frozen=True, slots=True)
class SqlFile:
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


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


def read_sql(directory: Path) -> list[SqlFile]:
    """The ``*.sql`` files of ``directory`` in name order; none at all is an error."""
    files = [SqlFile(p.stem, p.read_text(encoding="utf-8"))
             for p in sorted(directory.glob("*.sql"))]
    if not files:
        raise MigrationError(f"no *.sql files in {directory}: refusing to call the schema current")
    return files


async def _recorded(conn: asyncpg.Connection[asyncpg.Record], table: str) -> dict[str, str]:
    query = {"schema_migrations": "select version, checksum from schema_migrations",
             "schema_functions": "select version, checksum from schema_functions"}[table]
    return {r["version"]: r["checksum"] for r in await conn.fetch(query)}


async def migrate(dsn: str, directory: Path | None = None,
                  functions: Path | None = None, app_url: str | None = None) -> list[str]:
    """Apply pending migrations, then changed function files; return what was applied now.

    ``app_url``: when its login differs from ``dsn``'s (the owner's), that login is made a
    member of ``kuekan_app``, the role migrations grant to (and revoke the audit log from)."""
    versioned = read_sql(directory or migrations_dir())
    repeatable = read_sql(functions or functions_dir())
    await ensure_database(dsn)
    conn = await asyncpg.connect(dsn)
    applied_now: list[str] = []
    try:
        await conn.execute("select pg_advisory_lock($1)", _LOCK_ID)
        for table in ("schema_migrations", "schema_functions"):
            await conn.execute(
                f"create table if not exists {table} (version text primary key,"
                " checksum text not null, applied_at timestamptz not null default now())")
        done = await _recorded(conn, "schema_migrations")
        changed = [f.name for f in versioned if f.name in done and done[f.name] != f.checksum]
        if changed:
            raise MigrationError(
                f"applied migration(s) {', '.join(changed)} changed since they ran (checksum "
                "differs): restore the file(s) and put the change in a new migration")
        for f in versioned:
            if f.name not in done:
                async with conn.transaction():
                    await conn.execute(f.sql)
                    await conn.execute(
                        "insert into schema_migrations (version, checksum) values ($1, $2)",
                        f.name, f.checksum)
                applied_now.append(f.name)
        current = await _recorded(conn, "schema_functions")
        for f in repeatable:
            if current.get(f.name) != f.checksum:
                async with conn.transaction():
                    await conn.execute(f.sql)
                    await conn.execute(
                        "insert into schema_functions (version, checksum) values ($1, $2)"
                        " on conflict (version) do update set checksum = excluded.checksum,"
                        " applied_at = now()", f.name, f.checksum)
                applied_now.append(f"functions/{f.name}")
        app_login = urlsplit(app_url).username if app_url else None
        if app_login and app_login != urlsplit(dsn).username:
            await conn.execute(f'grant kuekan_app to "{app_login}"')
    finally:
        await conn.execute("select pg_advisory_unlock($1)", _LOCK_ID)
        await conn.close()
    return applied_now
