"""The migration runner: versioned files once each and frozen, function bodies in one place."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from kuekan.db.migrate import (
    REBASELINED,
    MigrationError,
    migrate,
    read_sql,
    with_database,
)
from kuekan.kit.resources import functions_dir, migrations_dir
from tests.conftest import _drop_database


@pytest.fixture
async def scratch_db(database: str) -> AsyncIterator[str]:
    dsn = with_database(database, f"kuekan_scratch_{uuid.uuid4().hex[:10]}")
    yield dsn
    await _drop_database(dsn)


def _write(folder: Path, files: dict[str, str]) -> Path:
    folder.mkdir(exist_ok=True)
    for name, sql in files.items():
        (folder / f"{name}.sql").write_text(sql, encoding="utf-8")
    return folder


FN_V1 = "create or replace function kk_probe() returns int language sql as 'select 1';"
FN_V2 = "create or replace function kk_probe() returns int language sql as 'select 2';"


async def test_no_migration_files_is_an_error_not_up_to_date(
        scratch_db: str, tmp_path: Path) -> None:
    empty = tmp_path / "none"
    empty.mkdir()
    fns = _write(tmp_path / "fns", {"kk_probe": FN_V1})
    with pytest.raises(MigrationError, match=r"no \*\.sql files"):
        await migrate(scratch_db, empty, fns)


async def test_a_changed_applied_migration_stops_the_run_and_applies_nothing(
        scratch_db: str, tmp_path: Path) -> None:
    versioned = _write(tmp_path / "m", {"0001_a": "create table a (id int);"})
    fns = _write(tmp_path / "fns", {"kk_probe": FN_V1})
    assert await migrate(scratch_db, versioned, fns) == ["functions/kk_probe", "0001_a"]
    _write(versioned, {"0001_a": "create table a (id bigint);",  # edited after it ran
                       "0002_b": "create table b (id int);"})
    with pytest.raises(MigrationError, match="0001_a changed"):
        await migrate(scratch_db, versioned, fns)
    conn = await asyncpg.connect(scratch_db)
    try:
        assert await conn.fetchval("select to_regclass('b')") is None
    finally:
        await conn.close()


async def test_function_files_are_reapplied_only_when_they_change(
        scratch_db: str, tmp_path: Path) -> None:
    versioned = _write(tmp_path / "m", {"0001_a": "create table a (id int);"})
    fns = _write(tmp_path / "fns", {"kk_probe": FN_V1})
    await migrate(scratch_db, versioned, fns)
    assert await migrate(scratch_db, versioned, fns) == []
    _write(fns, {"kk_probe": FN_V2})
    assert await migrate(scratch_db, versioned, fns) == ["functions/kk_probe"]
    conn = await asyncpg.connect(scratch_db)
    try:
        assert await conn.fetchval("select kk_probe()") == 2
    finally:
        await conn.close()


async def test_every_function_in_the_database_is_its_file_in_sql_functions(
        database: str) -> None:
    """Applying any file of sql/functions to the migrated database changes nothing (its body
    is the one there), and every kk_* function has its file: the body lives in one place."""
    conn = await asyncpg.connect(database)
    snapshot = ("select p.oid::regprocedure::text, pg_get_functiondef(p.oid) from pg_proc p"
                " join pg_namespace n on n.oid = p.pronamespace where n.nspname = 'public'"
                " and p.prokind = 'f' order by 1")
    try:
        names = {r[0] for r in await conn.fetch(
            "select proname from pg_proc p join pg_namespace n on n.oid = p.pronamespace"
            " where n.nspname = 'public' and proname like 'kk\\_%'")}
        files = {p.stem: p.read_text(encoding="utf-8")
                 for p in sorted(functions_dir().glob("*.sql"))}
        assert names - files.keys() == set(), "functions without a file in sql/functions"
        assert files.keys() - names == set(), "files in sql/functions the database lacks"
        before = await conn.fetch(snapshot)
        for name, sql in files.items():
            tx = conn.transaction()
            await tx.start()
            try:
                await conn.execute(sql)
                assert await conn.fetch(snapshot) == before, f"sql/functions/{name}.sql differs"
            finally:
                await tx.rollback()
    finally:
        await conn.close()


async def test_functions_exist_before_the_versioned_files_that_name_them(
        scratch_db: str, tmp_path: Path) -> None:
    """A trigger in a versioned file can name a function whose body lives in sql/functions."""
    trigger_fn = ("create or replace function kk_stamp() returns trigger language plpgsql as "
                  "$$ begin new.at := 'epoch'; return new; end $$;")
    versioned = _write(tmp_path / "m", {"0001_a": (
        "create table a (id int, at timestamptz);"
        " create trigger a_stamp before insert on a for each row execute function kk_stamp();")})
    fns = _write(tmp_path / "fns", {"kk_stamp": trigger_fn})
    await migrate(scratch_db, versioned, fns)
    conn = await asyncpg.connect(scratch_db)
    try:
        await conn.execute("insert into a (id) values (1)")
        assert (await conn.fetchval("select extract(epoch from at) from a")) == 0
    finally:
        await conn.close()


async def test_a_database_migrated_before_the_bodies_moved_is_current(scratch_db: str) -> None:
    """Databases that recorded the checksums of the files as they were before the function
    bodies moved to sql/functions are re-baselined, not refused."""
    await migrate(scratch_db)
    conn = await asyncpg.connect(scratch_db)
    try:
        for version, old in REBASELINED.items():
            await conn.execute("update schema_migrations set checksum = $2 where version = $1",
                               version, old)
        await conn.execute("update schema_migrations set checksum = 'x' where version ="
                           " '0007_analytics'")  # not a re-baselined file: must still stop
        with pytest.raises(MigrationError, match="0007_analytics changed"):
            await migrate(scratch_db)
        await conn.execute("update schema_migrations set checksum = $1 where version ="
                           " '0007_analytics'", _sha("0007_analytics"))
        assert await migrate(scratch_db) == []
        stored = await conn.fetch("select version, checksum from schema_migrations")
        assert all(r["checksum"] != REBASELINED.get(r["version"]) for r in stored)
    finally:
        await conn.close()


def _sha(version: str) -> str:
    return next(f.checksum for f in read_sql(migrations_dir()) if f.name == version)
