"""Helpers for the rewards tests: merchants, staff, points on a given day, rewards, tokens."""

from __future__ import annotations

import datetime as dt
import time
import uuid
from typing import Any

import asyncpg
import httpx

from kuekan.auth.tokens import Principal
from kuekan.kit.clock import bangkok_day
from kuekan.members import repository as members_repo
from tests.conftest import World


async def merchant(http: httpx.AsyncClient, world: World, *, funder: int | None = None,
                   cap: int | None = None, thb_per_point: int = 10,
                   min_spend: int = 0) -> int:
    admin = await world.admin()
    body: dict[str, Any] = {
        "name": f"ร้านทดสอบ {uuid.uuid4().hex[:6]}", "district_code": "3001", "lat": 14.97,
        "lon": 102.1, "category": "food", "thb_per_point": thb_per_point,
        "min_spend_thb": min_spend, "funder_id": funder or await world.funder()}
    if cap is not None:
        body["daily_award_cap_points"] = cap
    r = await http.post("/admin/merchants", headers=admin, json=body)
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


async def staff(world: World, merchant_id: int, line_sub: str | None = None) -> dict[str, str]:
    sub = line_sub or f"Ustaff-{uuid.uuid4().hex[:12]}"
    sid = await members_repo.ensure_staff(world.pool, sub, "merchant", merchant_id, None)
    return world.auth(Principal("merchant", sid, sub, merchant_id=merchant_id))


async def give(pool: asyncpg.Pool, member_id: int, funder_id: int, points: int,
               day: dt.date | None = None) -> None:
    """Award points as if earned on ``day`` (lots land in that month)."""
    await pool.execute(
        "select kk_award($1, $2, $3, 'award', $4, null, null, null, '{}'::jsonb, false, 16)",
        member_id, funder_id, points, day or bangkok_day())


async def reward(http: httpx.AsyncClient, world: World, merchant_ids: list[int], *,
                 cost: int = 20, stock: int = 100, per_member_limit: int | None = None,
                 valid_days: int = 30) -> int:
    admin = await world.admin()
    body: dict[str, Any] = {"name": "คูปองทดสอบ", "cost_points": cost, "stock": stock,
                            "merchant_ids": merchant_ids, "coupon_valid_days": valid_days}
    if per_member_limit is not None:
        body["per_member_limit"] = per_member_limit
    r = await http.post("/admin/rewards", headers=admin, json=body)
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


def qr(world: World, member_id: int, at: float | None = None) -> str:
    sub = f"U-{member_id}"
    return world.tokens.issue(Principal("member", member_id, sub), typ="member_qr",
                              now=at if at is not None else time.time())


async def pocket(pool: asyncpg.Pool, member_id: int) -> tuple[int, int]:
    row = await pool.fetchrow("select posted, reserved from member_balances where member_id = $1",
                              member_id)
    assert row is not None
    return int(row["posted"]), int(row["reserved"])
