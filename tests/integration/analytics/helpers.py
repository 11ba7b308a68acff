"""Shared helpers of the analytics tests: outbox events, merchants, staff tokens, draining."""

from __future__ import annotations

import datetime as dt
import json
import re
import uuid
from typing import Any

import asyncpg
import redis.asyncio as aioredis

from kuekan.analytics import service
from kuekan.auth.tokens import Principal
from kuekan.members import repository as members_repo
from tests.conftest import World

# A point inside Mueang Nakhon Ratchasima district (3001), near Thao Suranari monument.
MUEANG = (14.9750, 102.0980)


async def emit(pool: asyncpg.Pool, topic: str, member_id: int | None,
               **payload: Any) -> int:
    """Insert an outbox row as another domain would (check-ins, scans, redemptions)."""
    oid: int = await pool.fetchval(
        "insert into outbox (topic, member_id, payload) values ($1, $2, $3) returning id",
        topic, member_id, {"member_id": member_id, **payload})
    return oid


async def drain(pool: asyncpg.Pool, redis: aioredis.Redis) -> service.ConsumeResult:
    """Run the consumer until nothing is left; 'now' far ahead so id gaps are not waited on."""
    total = service.ConsumeResult()
    ahead = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5)
    for _ in range(50):
        r = await service.consume(pool, redis, now=ahead)
        total.events += r.events
        total.webhooks += r.webhooks
        if r.events == 0:
            return total
    raise AssertionError("analytics consumer did not drain")


async def merchant(pool: asyncpg.Pool, funder_id: int) -> int:
    """A real merchant row (with its redemption account), as seed.py makes them."""
    mid: int = await pool.fetchval(
        "with a as (insert into accounts (kind, owner_id) values ('merchant_redemption',"
        " nextval(pg_get_serial_sequence('merchants', 'id'))) returning id, owner_id)"
        " insert into merchants (id, name, district_code, lat, lon, category, thb_per_point,"
        " funder_id, redemption_account_id) overriding system value"
        " select a.owner_id, $1, '3001', 14.97, 102.09, 'food', 10, $2, a.id from a"
        " returning id", f"Shop {uuid.uuid4().hex[:8]}", funder_id)
    return mid


async def merchant_staff(world: World, merchant_id: int) -> dict[str, str]:
    sub = f"Ustaff-{uuid.uuid4().hex[:12]}"
    sid = await members_repo.ensure_staff(world.pool, sub, "merchant", merchant_id, None)
    return world.auth(Principal("merchant", sid, sub, merchant_id=merchant_id))


def concrete(path: str) -> str:
    """A route template with every path parameter filled with a harmless value."""
    path = re.sub(r"\{[^}:]+:int\}", "999999", path)
    path = re.sub(r"\{[^}:]+:uuid\}", str(uuid.UUID(int=1)), path)
    return re.sub(r"\{[^}]+\}", "x", path)


def dumps(body: Any) -> str:
    return json.dumps(body, ensure_ascii=False, default=str)
