"""Demo data: funders, partner merchants in real Korat districts, staff and members.

Idempotent: running it twice changes nothing the second time. Domains append to SEED_HOOKS
(missions and geofences, rewards, ...).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
from shapely.geometry import shape

from kuekan.kit.data import korat_data_dir
from kuekan.ledger import repository as ledger_repo
from kuekan.members import repository as members_repo
from kuekan.missions.seed import seed_missions
from kuekan.rewards.seed import seed_rewards
from kuekan.settings import Settings

FUNDERS = [
    ("PAO", "อบจ.นครราชสีมา (Provincial Administrative Organisation)", "pao", 50_000_000),
    ("CHAMBER", "หอการค้าจังหวัดนครราชสีมา (Chamber of Commerce)", "chamber", 10_000_000),
]
# (name, district code, category, THB per point, min spend)
MERCHANTS = [
    ("ร้านผัดหมี่โคราช ย่าโม", "3001", "food", 10, 50),
    ("OTOP ผ้าไหมปักธงชัย", "3014", "otop", 20, 200),
    ("คาเฟ่ปราสาทหินพิมาย", "3015", "cafe", 10, 60),
    ("ร้านของฝากเขาใหญ่ ปากช่อง", "3021", "souvenir", 10, 100),
    ("ร้านข้าวแกงสีคิ้ว", "3020", "food", 10, 40),
]


async def _district_points() -> dict[str, tuple[float, float]]:
    data = json.loads((korat_data_dir() / "districts.geojson").read_text(encoding="utf-8"))
    out: dict[str, tuple[float, float]] = {}
    for feat in data["features"]:
        p = shape(feat["geometry"]).representative_point()
        out[feat["properties"]["code"]] = (p.y, p.x)
    return out


async def seed_core(conn: asyncpg.Connection, settings: Settings) -> dict[str, Any]:
    funder_ids: dict[str, int] = {}
    for code, name, org, budget in FUNDERS:
        fid = await conn.fetchval("select id from funders where code = $1", code)
        if fid is None:
            fid = (await ledger_repo.create_funder(conn, code, name, org, budget,
                                                    settings.budget_slices))["id"]
        funder_ids[code] = fid
    places = await _district_points()
    merchant_ids: list[int] = []
    for name, district, category, thb, min_spend in MERCHANTS:
        mid = await conn.fetchval("select id from merchants where name = $1", name)
        if mid is None:
            lat, lon = places[district]
            mid = await conn.fetchval(
                "with a as (insert into accounts (kind, owner_id) values ('merchant_redemption',"
                " nextval(pg_get_serial_sequence('merchants', 'id'))) returning id, owner_id)"
                " insert into merchants (id, name, district_code, lat, lon, category,"
                " thb_per_point,"
                " min_spend_thb, funder_id, daily_award_cap_points, redemption_account_id)"
                " overriding system value select a.owner_id, $1, $2, $3, $4, $5, $6, $7, $8, 20000,"
                " a.id from a returning id",
                name, district, lat, lon, category, thb, min_spend, funder_ids["CHAMBER"])
        merchant_ids.append(mid)
    members = await members_repo.ensure_members(conn, [f"Udemo-{i}" for i in range(20)])
    await members_repo.ensure_staff(conn, "Uadmin-pao", "admin", None, "pao")
    await members_repo.ensure_staff(conn, "Uadmin-chamber", "admin", None, "chamber")
    for i, mid in enumerate(merchant_ids):
        await members_repo.ensure_staff(conn, f"Ustaff-{i}", "merchant", mid, None)
    return {"funders": funder_ids, "merchants": merchant_ids, "members": len(members)}


SeedHook = Callable[[asyncpg.Connection, Settings, dict[str, Any]], Awaitable[dict[str, Any]]]
SEED_HOOKS: list[SeedHook] = []
SEED_HOOKS.append(seed_rewards)
SEED_HOOKS.append(seed_missions)


async def seed(settings: Settings) -> dict[str, Any]:
    conn = await asyncpg.connect(settings.database_url)
    try:
        await conn.set_type_codec("jsonb", encoder=json.dumps, decoder=json.loads,
                                  schema="pg_catalog")
        summary = await seed_core(conn, settings)
        for hook in SEED_HOOKS:
            summary.update(await hook(conn, settings, summary))
        return summary
    finally:
        await conn.close()
