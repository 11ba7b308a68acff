"""Migrations: versioned files for tables, repeatable files for function bodies.

``sql/migrations/NNNN_name.sql`` are applied in order, once each, and their checksums are kept:
an applied file that changed afterwards stops the run (it would mean two databases built from
"the same" migration differ). ``sql/functions/<name>.sql`` hold the current body of the function
``<name>``, and nowhere else does: a body change is an edit of that one file. A run has three
steps, all under ``pg_advisory_lock`` so concurrent starters wait:

1. functions that do not exist yet are created (bodies unchecked), so that triggers and data
   changes in the versioned files can name them;
2. pending versioned files run in order;
3. every function file whose checksum differs from the one recorded is applied again.

A signature change (arguments, return type) is a versioned migration that drops the old
function; step 3 then creates the new one.

Hand-written (under a hundred lines) instead of a tool: the rules are these few, and a tool would
add a dependency without removing code.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from kuekan.kit.resources import functions_dir, migrations_dir

_LOCK_ID = 0x6B75656B616E  # "kuekan"

# Versioned files whose function bodies moved to sql/functions (a one-time change of files that
# had run): a database that recorded exactly these checksums is current, and its record is
# updated. Any other difference still stops the run.
REBASELINED = {
    "0001_ledger": "45991e575dac138d958c6f454329ef077214037c73701997b050544c5f411c6a",
    "0002_ledger_functions": "5cf0fcb3a16b9aac3abed352c298c3e0744c6ef7c54dfebc3c775a1b5c428a65",
    "0003_identity": "1853489439bb36caac0dd986a21d0c703355cf6811b20e0cc59de2942ee67bde",
    "0004_missions": "92db597de68c9d4d765ba85ac998050dccccee359bd12331f73ec24f8ab50ffb",
    "0005_rewards": "9fe17f371d0359056091afa8354c09deb36bee2f373e8fcc86bebe1a25151026",
    "0006_workers": "66658ba26452972c57e7dd5cd7b4816dad164de2d4236b9404e830f2adc86680",
    "0008_audit_batch": "b2d7bdb501e74659c82be8d90fd4d0626b4fc13d4d80319815d663f8e6834d6a",
    "0010_checkin_batch": "6764c2cac6df6cdf5ab0a1869b1d217c04670d76c3f516574c2366a8112a3961",
    "0011_scan_idem": "ec5c77f2fcbbdb3a10da1ef8779bde25204b3f663d51bdc0d37c11589fb044f0",
}


class MigrationError(RuntimeError):
    """The migration files or the database's record of them cannot be trusted: nothing ran."""


@dataclass(frozen=True, slots=True)
class SqlFile:
    name: str
    sql: str

    @property
    def has_statements(self) -> bool:
        return bool(re.sub(r"--[^\n]*", "", self.sql).strip())

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


async def _apply_function(conn: asyncpg.Connection[asyncpg.Record], f: SqlFile) -> None:
    await conn.execute(f.sql)
    await conn.execute(
        "insert into schema_functions (version, checksum) values ($1, $2)"
        " on conflict (version) do update set checksum = excluded.checksum, applied_at = now()",
        f.name, f.checksum)


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
        for f in versioned:
            if f.name in done and done[f.name] != f.checksum and \
                    REBASELINED.get(f.name) == done[f.name]:
                await conn.execute("update schema_migrations set checksum = $2 where version = $1",
                                   f.name, f.checksum)
                done[f.name] = f.checksum
        changed = [f.name for f in versioned if f.name in done and done[f.name] != f.checksum]
        if changed:
            raise MigrationError(
                f"applied migration(s) {', '.join(changed)} changed since they ran (checksum "
                "differs): restore the file(s) and put the change in a new migration")
        current = await _recorded(conn, "schema_functions")
        existing = {r["proname"] for r in await conn.fetch(
            "select p.proname from pg_proc p join pg_namespace n on n.oid = p.pronamespace"
            " where n.nspname = current_schema()")}
        for f in repeatable:
            if f.name not in existing:
                async with conn.transaction():
                    await conn.execute("set local check_function_bodies = off")
                    await _apply_function(conn, f)
                current[f.name] = f.checksum
                applied_now.append(f"functions/{f.name}")
        for f in versioned:
            if f.name not in done:
                async with conn.transaction():
                    if f.has_statements:  # a file that only points elsewhere is recorded
                        await conn.execute(f.sql)
                    await conn.execute(
                        "insert into schema_migrations (version, checksum) values ($1, $2)",
                        f.name, f.checksum)
                applied_now.append(f.name)
        for f in repeatable:
            if current.get(f.name) != f.checksum:
                async with conn.transaction():
                    await _apply_function(conn, f)
                applied_now.append(f"functions/{f.name}")
        app_login = urlsplit(app_url).username if app_url else None
        if app_login and app_login != urlsplit(dsn).username:
            await conn.execute(f'grant kuekan_app to "{app_login}"')
    finally:
        await conn.execute("select pg_advisory_unlock($1)", _LOCK_ID)
        await conn.close()
    return applied_now
