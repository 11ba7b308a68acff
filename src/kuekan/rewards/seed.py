"""Demo rewards at the seeded partner merchants (idempotent: matched by Thai name)."""

from __future__ import annotations

from typing import Any

import asyncpg

from kuekan.rewards import repository as repo
from kuekan.settings import Settings

# (Thai name, English name, category, cost, stock, per-member limit, valid days, merchant indexes)
REWARDS = [
    ("ส่วนลด 50 บาท ผัดหมี่โคราช", "THB 50 off Pad Mee Korat", "merchant_voucher", 100, 500, 2, 30,
     [0]),
    ("ผ้าไหมปักธงชัย ลด 10%", "10% off Pak Thong Chai silk", "otop_product", 300, 100, 1, 60, [1]),
    ("กาแฟฟรี 1 แก้ว ที่พิมายหรือสีคิ้ว", "Free coffee at Phimai or Sikhio", "merchant_voucher", 60,
     1000, 5, 14, [2, 4]),
    ("บัตรเข้าชมอุทยานประวัติศาสตร์พิมาย", "Phimai Historical Park ticket", "public_service", 150,
     200, 1, 90, [2]),
]


async def seed_rewards(conn: asyncpg.Connection, settings: Settings,
                       summary: dict[str, Any]) -> dict[str, Any]:
    merchants: list[int] = summary.get("merchants", [])
    made = 0
    for th, en, category, cost, stock, limit, days, idx in REWARDS:
        if await conn.fetchval("select id from rewards where name_th = $1", th) is not None:
            continue
        ids = [merchants[i] for i in idx if i < len(merchants)]
        if not ids:
            continue
        await repo.create_reward(conn, name_th=th, name_en=en, category=category,
                                 cost_points=cost, stock=stock, per_member_limit=limit,
                                 coupon_valid_days=days, min_tier=None, funder_id=None,
                                 merchant_ids=ids)
        made += 1
    return {"rewards_created": made}
