"""Hooks other domains call inside their own transactions.

``record_purchase`` progresses the ``purchase`` missions a purchase qualifies for and awards them
in the caller's transaction, so a purchase and the missions it completes commit or roll back
together. The merchant scan makes the same ``kk_purchase_progress`` call from SQL, inside
``kk_purchase_scan_idem`` (migration 0011), so that a whole scan is one round trip.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from kuekan.settings import get_settings


async def record_purchase(
    conn: asyncpg.Connection | PoolConnectionProxy, *, member_id: int, merchant_id: int,
    category: str, amount_thb: Decimal, day: dt.date,
) -> list[dict[str, Any]]:
    """Progress the member's ``purchase`` missions for one scan; return what it completed.

    One SQL call (``kk_purchase_progress``, migration 0004). Each mission is completed at most
    once per recurrence period (a unique row), awarded from the mission's funder with ref
    ``{"idem": "mission:<id>:<member>:<period>", "leg": "mission"}`` so ``transfers_idem_leg``
    stays unique. A mission whose budget or the member's daily cap is exhausted is skipped
    (inside a savepoint in SQL), never failing the scan. Each item:
    ``{mission_id, code, points, transfer_id, period}``.
    """
    settings = get_settings()
    rows = await conn.fetchval(
        "select kk_purchase_progress($1, $2, $3, $4, $5, $6, $7)",
        member_id, merchant_id, category, amount_thb, day,
        settings.member_daily_cap_points, settings.budget_slices,
    )
    return list(rows or [])
