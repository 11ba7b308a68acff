"""The only caller of the geofence tables' SQL.

SQL text is only ever built from column names fixed in this module, never from input (S608)."""

# ruff: noqa: S608
from __future__ import annotations

from typing import Any

import asyncpg

Db = asyncpg.Pool | asyncpg.Connection

_COLUMNS = ("id, code, name, kind, status, max_accuracy_m, edge_tolerance_m, description,"
            " created_at, updated_at")


async def insert(db: Db, *, name: str, kind: str, code: str | None, geometry: dict[str, Any],
                 max_accuracy_m: float, edge_tolerance_m: float,
                 description: str) -> asyncpg.Record:
    row = await db.fetchrow(
        "insert into geofences (name, kind, code, geometry, max_accuracy_m, edge_tolerance_m,"
        f" description) values ($1, $2, $3, $4, $5, $6, $7) returning {_COLUMNS}, geometry",
        name, kind, code, geometry, max_accuracy_m, edge_tolerance_m, description)
    assert row is not None
    return row


async def upsert_by_code(db: Db, *, name: str, kind: str, code: str, geometry: dict[str, Any],
                         max_accuracy_m: float, edge_tolerance_m: float) -> int:
    """Create or refresh a seeded fence by its natural code; returns its id."""
    fid = await db.fetchval(
        "insert into geofences (name, kind, code, geometry, max_accuracy_m, edge_tolerance_m)"
        " values ($1, $2, $3, $4, $5, $6) on conflict (code) do update set name = excluded.name"
        " where geofences.name is distinct from excluded.name returning id",
        name, kind, code, geometry, max_accuracy_m, edge_tolerance_m)
    if fid is None:
        fid = await db.fetchval("select id from geofences where code = $1", code)
    return int(fid)


async def update(db: Db, fence_id: int, fields: dict[str, Any]) -> asyncpg.Record | None:
    """Update the given columns (names come from code, never from the caller)."""
    allowed = {"name", "geometry", "max_accuracy_m", "edge_tolerance_m", "status", "description",
               "kind"}
    assert set(fields) <= allowed, set(fields) - allowed
    sets = ", ".join(f"{col} = ${i + 2}" for i, col in enumerate(fields))
    return await db.fetchrow(
        f"update geofences set {sets}, updated_at = now() where id = $1"
        f" returning {_COLUMNS}, geometry", fence_id, *fields.values())


async def get(db: Db, fence_id: int) -> asyncpg.Record | None:
    return await db.fetchrow(f"select {_COLUMNS}, geometry from geofences where id = $1", fence_id)


async def page(db: Db, *, after_id: int, limit: int, with_geometry: bool,
               status: str | None) -> list[asyncpg.Record]:
    geometry = ", geometry" if with_geometry else ""
    return await db.fetch(
        f"select {_COLUMNS}{geometry} from geofences where id > $1"
        " and ($3::text is null or status = $3) order by id limit $2", after_id, limit, status)


async def active(db: Db) -> list[asyncpg.Record]:
    """Every active fence with its geometry: what an API process indexes."""
    return await db.fetch(
        "select id, name, geometry, max_accuracy_m, edge_tolerance_m from geofences"
        " where status = 'active' order by id")


async def versions(db: Db) -> dict[str, int]:
    rows = await db.fetch("select name, version from catalog_versions")
    return {r["name"]: int(r["version"]) for r in rows}


async def existing_ids(db: Db, ids: list[int]) -> set[int]:
    rows = await db.fetch("select id from geofences where id = any($1::bigint[])", ids)
    return {int(r["id"]) for r in rows}
