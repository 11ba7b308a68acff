"""X-Forwarded-For is believed only from the configured proxies (setting trusted_proxies).

Behind an ingress every request comes from the proxy's address, so the per-IP limit must count
the client the proxy names; but a header a client writes itself must never choose the bucket.
"""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest
import redis.asyncio as aioredis

from kuekan.app import proxy_middleware
from kuekan.ratelimit import SYNC_S
from kuekan.settings import load_settings
from tests.conftest import start_server, stop_server
from tests.integration.test_ratelimit import _clear_of_a_window_edge

IP_LIMIT = 3


def _client_ip(n: int) -> str:
    return f"203.0.113.{n}"


async def _statuses(base: str, forwarded: list[str]) -> list[int]:
    async with httpx.AsyncClient() as c:
        return [(await c.get(f"{base}/api/v1/missions", headers={"X-Forwarded-For": xff})
                 ).status_code for xff in forwarded]


async def _forget_ip_buckets(redis: aioredis.Redis) -> None:
    for key in await redis.keys("kk:rl:ip:*"):
        await redis.delete(key)


async def test_behind_a_trusted_proxy_each_client_gets_its_own_ip_bucket(
        database: str, redis: aioredis.Redis) -> None:
    proc, base = start_server({"KUEKAN_RATE_LIMITS": "on", "KUEKAN_TRUSTED_PROXIES": "127.0.0.0/8",
                               "KUEKAN_RATE_LIMIT_IP_PER_MIN": str(IP_LIMIT)})
    try:
        await _clear_of_a_window_edge()
        await _forget_ip_buckets(redis)
        a, b = _client_ip(uuid.uuid4().int % 200 + 1), _client_ip(250)
        # A client that writes its own X-Forwarded-For gets it appended to by the proxy: the
        # rightmost address not a trusted proxy is the client, whatever it claimed.
        spoofed = [f"198.51.100.{n}, {a}" for n in range(IP_LIMIT + 1)]
        assert await _statuses(base, spoofed) == [401] * IP_LIMIT + [429]
        assert await _statuses(base, [b]) == [401]  # another client behind the same proxy
        await asyncio.sleep(4 * SYNC_S)  # the process has sent its counts to Redis
        keys = {k.decode().rsplit(":", 1)[0] for k in await redis.keys("kk:rl:ip:*")}
        assert keys >= {f"kk:rl:ip:{a}", f"kk:rl:ip:{b}"}
        assert "kk:rl:ip:127.0.0.1" not in keys
    finally:
        stop_server(proc)


async def test_without_trusted_proxies_x_forwarded_for_is_ignored(
        database: str, redis: aioredis.Redis) -> None:
    proc, base = start_server({"KUEKAN_RATE_LIMITS": "on",
                               "KUEKAN_RATE_LIMIT_IP_PER_MIN": str(IP_LIMIT)})
    try:
        await _clear_of_a_window_edge()
        await _forget_ip_buckets(redis)
        # Each request claims another address; all are the loopback peer's all the same.
        forged = [_client_ip(n) for n in range(1, IP_LIMIT + 2)]
        assert await _statuses(base, forged) == [401] * IP_LIMIT + [429]
    finally:
        stop_server(proc)


def test_a_trusted_proxy_that_is_not_a_network_stops_the_start() -> None:
    settings = load_settings("test")
    bad = type(settings)(**{**{f: getattr(settings, f) for f in settings.__struct_fields__},
                            "trusted_proxies": ["10.0.0.0/33"]})
    with pytest.raises(ValueError, match=r"10\.0\.0\.0/33"):
        proxy_middleware(bad)
