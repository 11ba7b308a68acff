"""The only caller of the missions tables' SQL and of kk_checkin_idem / kk_checkin_refused.

SQL text is only ever built from column names fixed in this module, never from input (S608)."""

# ruff: noqa: S608
from __future__ import annotations

import datetime as dt
from typing import Any

import asyncpg

from kuekan.ledger.repository import call_json
from kuekan.missions.model import Mission, MissionSpec

Db = asyncpg.Pool | asyncpg.Connection

# Columns an admin writes; order matters for the insert/update statements below.
SPEC_COLUMNS = tuple(MissionSpec.__struct_fields__)
MISSION_COLUMNS = ("id", *SPEC_COLUMNS, "venue_secret", "status")


def to_mission(row: asyncpg.Record) -> Mission:
    return Mission(**{k: row[k] for k in MISSION_COLUMNS})


async def all_missions(db: Db) -> list[Mission]:
    rows = await db.fetch(f"select {', '.join(MISSION_COLUMNS)} from missions order by id")
    return [to_mission(r) for r in rows]


async def get(db: Db, mission_id: int) -> Mission | None:
    row = await db.fetchrow(
        f"select {', '.join(MISSION_COLUMNS)} from missions where id = $1", mission_id)
    return to_mission(row) if row else None


async def insert(db: asyncpg.Connection, spec: MissionSpec, venue_secret: str,
                 slices: int) -> Mission:
    """Insert a mission and its sliced budget ``mission:<id>`` in one transaction."""
    values = [getattr(spec, c) for c in SPEC_COLUMNS]
    params = ", ".join(f"${i + 1}" for i in range(len(values) + 1))
    async with db.transaction():
        row = await db.fetchrow(
            f"insert into missions ({', '.join(SPEC_COLUMNS)}, venue_secret) values ({params})"
            f" returning {', '.join(MISSION_COLUMNS)}", *values, venue_secret)
        assert row is not None
        await db.execute("select kk_budget_set($1, $2, $3)", f"mission:{row['id']}",
                         spec.budget_points, slices)
    return to_mission(row)


async def update(db: asyncpg.Connection, mission_id: int, spec: MissionSpec, status: str,
                 slices: int) -> Mission | None:
    """Rewrite a mission; a changed budget keeps what was already spent from it."""
    values = [getattr(spec, c) for c in SPEC_COLUMNS]
    sets = ", ".join(f"{c} = ${i + 3}" for i, c in enumerate(SPEC_COLUMNS))
    async with db.transaction():
        old = await db.fetchrow("select budget_points from missions where id = $1 for update",
                                mission_id)
        if old is None:
            return None
        row = await db.fetchrow(
            f"update missions set {sets}, status = $2, updated_at = now() where id = $1"
            f" returning {', '.join(MISSION_COLUMNS)}", mission_id, status, *values)
        assert row is not None
        if old["budget_points"] != spec.budget_points:
            key = f"mission:{mission_id}"
            spent = 0
            if old["budget_points"] is not None:
                left = await db.fetchval("select kk_budget_remaining($1)", key)
                spent = int(old["budget_points"]) - int(left or 0)
            total = None if spec.budget_points is None else max(0, spec.budget_points - spent)
            await db.execute("select kk_budget_set($1, $2, $3)", key, total, slices)
    return to_mission(row)


async def set_status(db: Db, mission_id: int, status: str) -> bool:
    res = await db.execute("update missions set status = $2, updated_at = now() where id = $1",
                           mission_id, status)
    return bool(res.endswith(" 1"))


async def missing_ids(db: Db, table: str, ids: list[int]) -> list[int]:
    """Ids that do not exist in ``table`` (one of a fixed set of names)."""
    assert table in {"missions", "geofences", "funders", "merchants"}
    rows = await db.fetch(f"select id from {table} where id = any($1::bigint[])", ids)
    found = {int(r["id"]) for r in rows}
    return [i for i in ids if i not in found]


async def budget_remaining(db: Db, mission_id: int) -> int | None:
    v = await db.fetchval("select kk_budget_remaining($1)", f"mission:{mission_id}")
    return None if v is None else int(v)


async def checkin_idem(db: Db, item: dict[str, Any], member_cap: int | None,
                       slices: int) -> dict[str, Any]:
    """The whole accepted check-in in one round trip; returns {status, body, hash, replay}.
    ``item`` holds kk_checkin_idem's arguments by the names kk_checkin_batch reads."""
    res: dict[str, Any] = await call_json(
        db, "select kk_checkin_idem($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13,"
            " $14, $15, $16)",
        item["scope"], item["key"], item["hash"], item["member"], item["mission"],
        dt.date.fromisoformat(item["day"]), item["lat"], item["lon"], item["accuracy"],
        item["distance"], item["decision"], item["risk"], item["device"], item["fences"],
        member_cap, slices)
    return res


async def checkin_batch(db: Db, items: list[dict[str, Any]], member_cap: int | None,
                        slices: int) -> list[dict[str, Any]]:
    """Several check-ins in one round trip and one commit: one result per item, in order;
    a refused item comes back as {"refused": code, "state": sqlstate}."""
    res: list[dict[str, Any]] = await db.fetchval(
        "select kk_checkin_batch($1, $2, $3)", items, member_cap, slices)
    return res


async def checkin_refused(
    db: Db, *, scope: str, key: str, req_hash: str, member_id: int, mission_id: int,
    lat: float, lon: float, accuracy_m: float, distance_m: float | None, decision: str,
    device_id: str | None, code: str, status: int, problem: dict[str, Any],
) -> dict[str, Any]:
    """Record a refused attempt and store the refusal as the key's response (one round trip)."""
    res: dict[str, Any] = await db.fetchval(
        "select kk_checkin_refused($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
        scope, key, req_hash, member_id, mission_id, lat, lon, accuracy_m, distance_m, decision,
        device_id, code, status, problem)
    return res


async def progress(db: Db, mission_id: int, member_id: int) -> asyncpg.Record | None:
    return await db.fetchrow(
        "select completions, places, step, completed_at from mission_progress"
        " where mission_id = $1 and member_id = $2", mission_id, member_id)


async def collected_places(db: Db, mission_id: int, member_id: int) -> list[int]:
    rows = await db.fetch("select geofence_id from collection_places where mission_id = $1"
                          " and member_id = $2 order by created_at", mission_id, member_id)
    return [int(r["geofence_id"]) for r in rows]


async def completed_missions(db: Db, member_id: int, ids: list[int]) -> set[int]:
    rows = await db.fetch("select distinct mission_id from mission_completions"
                          " where member_id = $1 and mission_id = any($2::bigint[])",
                          member_id, ids)
    return {int(r["mission_id"]) for r in rows}


async def badges(db: Db, member_id: int) -> list[asyncpg.Record]:
    return await db.fetch("select badge_code, mission_id, awarded_at from member_badges"
                          " where member_id = $1 order by awarded_at", member_id)


async def versions(db: Db) -> dict[str, int]:
    rows = await db.fetch("select name, version from catalog_versions")
    return {r["name"]: int(r["version"]) for r in rows}
