"""OTP requests are bounded per member, per phone and in all, per hour (kuekan.notify.otplimit).

Each OTP request sends a paid SMS; the limits are the service's, counted in Redis, and a
refused request writes nothing: no challenge, no outbox row, so no SMS.
"""

from __future__ import annotations

import random
import time

import asyncpg
import httpx
import redis.asyncio as aioredis

from kuekan.notify import otplimit
from kuekan.settings import Settings
from tests.conftest import World


def _phone() -> str:
    return f"08{random.randrange(10**8):08d}"


async def _challenges(pool: asyncpg.Pool, member_id: int) -> int:
    return int(await pool.fetchval(
        "select count(*) from otp_challenges where member_id = $1", member_id))


def _assert_limited(r: httpx.Response, scope: str) -> None:
    assert r.status_code == 429, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    assert body["code"] == "otp_rate_limited" and body["limit_scope"] == scope, body
    assert body["message_th"]
    assert 0 < int(r.headers["retry-after"]) <= 3600


async def test_one_phone_gets_at_most_the_hourly_number_of_codes_whoever_asks(
        pool: asyncpg.Pool, http: httpx.AsyncClient, world: World, settings: Settings) -> None:
    phone = _phone()
    for _ in range(settings.otp_per_phone_per_hour):
        _, me = await world.member()
        assert (await http.post("/me/phone/otp", headers=me, json={"phone": phone})
                ).status_code == 202
    late, me = await world.member()
    _assert_limited(await http.post("/me/phone/otp", headers=me, json={"phone": phone}),
                    "phone")
    assert await _challenges(pool, late) == 0
    # Another number is not affected.
    assert (await http.post("/me/phone/otp", headers=me, json={"phone": _phone()})
            ).status_code == 202


async def test_one_member_gets_at_most_the_hourly_number_of_codes_whatever_the_phone(
        pool: asyncpg.Pool, http: httpx.AsyncClient, world: World, settings: Settings) -> None:
    member, me = await world.member()
    for _ in range(settings.otp_per_member_per_hour):
        assert (await http.post("/me/phone/otp", headers=me, json={"phone": _phone()})
                ).status_code == 202
    _assert_limited(await http.post("/me/phone/otp", headers=me, json={"phone": _phone()}),
                    "member")
    assert await _challenges(pool, member) == settings.otp_per_member_per_hour
    assert await pool.fetchval("select count(*) from outbox where topic = 'otp.requested'"
                               " and member_id = $1", member) == settings.otp_per_member_per_hour


async def test_the_whole_service_stops_sending_codes_at_the_global_hourly_cap(
        pool: asyncpg.Pool, http: httpx.AsyncClient, world: World, settings: Settings,
        redis: aioredis.Redis) -> None:
    member, me = await world.member()
    global_key = otplimit.keys(member, "+66800000000", time.time())[2]
    before = int(await redis.get(global_key) or 0)
    await redis.set(global_key, settings.otp_global_per_hour, ex=3600)
    try:
        _assert_limited(await http.post("/me/phone/otp", headers=me, json={"phone": _phone()}),
                        "global")
        assert await _challenges(pool, member) == 0
    finally:
        await redis.set(global_key, before, ex=3600)
