"""Request rate limits: counted in each process, shared through Redis every SYNC_S.

The per-request behaviour (headers, 429, exemptions, forged tokens) is in test_auth.py; here is
what the sharing promises: processes see each other's hits within a sync, nothing is lost when
Redis is unreachable, and a past window is forgotten.
"""

from __future__ import annotations

import asyncio
import time
import uuid

import httpx
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from kuekan import cache
from kuekan.ratelimit import SYNC_S, SharedCounter
from tests.conftest import World, _free_port, start_server, stop_server


async def test_two_processes_share_counts_through_redis(redis: aioredis.Redis) -> None:
    a = SharedCounter(redis.register_script(cache.RATE))
    b = SharedCounter(redis.register_script(cache.RATE))
    key = f"kk:rl:u:member:{uuid.uuid4().hex}:7"
    assert [a.hit(key, 7) for _ in range(3)] == [1, 2, 3]  # exact within a process
    assert await a.sync() == 1
    assert [b.hit(key, 7) for _ in range(2)] == [1, 2]  # b has not synced yet
    await b.sync()
    assert b.hit(key, 7) == 6  # b now knows a's three
    assert a.hit(key, 7) == 4  # a learns b's hits at its next sync: stale by one sync at most
    await a.sync()
    assert a.hit(key, 7) == 7  # 3 + 2 + 1 of a's own that Redis has; b's last is not sent yet
    await a.sync()
    await b.sync()
    assert int(await redis.get(key) or 0) == 8  # every hit sent, none twice
    assert 0 < await redis.ttl(key) <= 60


async def test_hits_counted_while_redis_is_down_are_sent_later(redis: aioredis.Redis) -> None:
    dead = aioredis.Redis(port=_free_port(), socket_connect_timeout=0.2)  # nothing listens
    counter = SharedCounter(dead.register_script(cache.RATE))
    key = f"kk:rl:u:member:{uuid.uuid4().hex}:9"
    for _ in range(4):
        counter.hit(key, 9)
    try:
        await counter.sync()
        raise AssertionError("sync reached a Redis that does not exist")
    except RedisError:
        pass
    finally:
        await dead.aclose()
    assert counter.hit(key, 9) == 5  # still limiting on its own counts
    counter._script = redis.register_script(cache.RATE)  # Redis is back
    await counter.sync()
    assert int(await redis.get(key) or 0) == 5


async def test_a_new_window_forgets_the_last(redis: aioredis.Redis) -> None:
    counter = SharedCounter(redis.register_script(cache.RATE))
    member = uuid.uuid4().hex
    for _ in range(3):
        counter.hit(f"kk:rl:u:{member}:100", 100)
    await counter.sync()
    assert counter.hit(f"kk:rl:u:{member}:101", 101) == 1
    await counter.sync()
    assert counter._known == {f"kk:rl:u:{member}:101": 1}


async def _clear_of_a_window_edge() -> None:
    """Start well inside a one-minute window, so the counts of a test are never reset (the
    margin covers a test's few seconds on a loaded machine, where one request took ~4 s)."""
    left = 60 - time.time() % 60
    if left < 20:
        await asyncio.sleep(left + 0.1)


async def test_the_member_limit_holds_across_two_api_processes(database: str, world: World,
                                                              redis: aioredis.Redis) -> None:
    env = {"KUEKAN_RATE_LIMITS": "on", "KUEKAN_RATE_LIMIT_MEMBER_PER_MIN": "5",
           "KUEKAN_RATE_LIMIT_IP_PER_MIN": "1000"}
    first, base_a = start_server(env)
    second, base_b = start_server(env)
    try:
        mid, member = await world.member()
        await _clear_of_a_window_edge()
        for key in await redis.keys(f"kk:rl:u:member:{mid}:*"):  # an earlier run's test db
            await redis.delete(key)
        async with httpx.AsyncClient() as c:
            a = [(await c.get(f"{base_a}/api/v1/me", headers=member)) for _ in range(3)]
            await asyncio.sleep(4 * SYNC_S)  # the first process has sent its three
            # The second process learns a key's total at the first sync after its own first hit.
            b = [await c.get(f"{base_b}/api/v1/me", headers=member)]
            await asyncio.sleep(4 * SYNC_S)
            b += [(await c.get(f"{base_b}/api/v1/me", headers=member)) for _ in range(2)]
        assert [r.status_code for r in a] == [200, 200, 200]
        assert [r.headers["ratelimit-remaining"] for r in a] == ["4", "3", "2"]
        # Counted together: 3 + 1 + 1 = 5 pass, the 6th is refused (alone it would be the 3rd).
        assert [r.status_code for r in b] == [200, 200, 429], [r.text for r in b]
        assert b[1].headers["ratelimit-remaining"] == "0"
    finally:
        stop_server(first)
        stop_server(second)
