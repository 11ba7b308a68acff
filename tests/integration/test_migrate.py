"""The migration runner: versioned files once each and frozen, function bodies in one place."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from kuekan.db.migrate import MigrationError, migrate, with_database
from kuekan.kit.resources import functions_dir
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
    assert await migrate(scratch_db, versioned, fns) == ["0001_a", "functions/kk_probe"]
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
