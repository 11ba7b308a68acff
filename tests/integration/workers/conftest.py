"""Worker fixtures: a worker context like ARQ's (real PostgreSQL, real ARQ Redis), outbox
helpers, and the fake LINE server wired to a LINE client with tiny backoffs."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import asyncpg
import msgspec
import pytest
from arq.connections import ArqRedis

from kuekan.notify.line import LineClient
from kuekan.outbox import queue
from kuekan.outbox.jobs import handle_outbox
from kuekan.outbox.queue import ArqQueue
from kuekan.settings import Settings
from kuekan.worker import OUTBOX
from tests.fakes.line_server import FakeLineServer


@pytest.fixture(scope="session")
def fast_settings(settings: Settings) -> Settings:
    return msgspec.structs.replace(settings, outbox_max_tries=3, outbox_retry_base_s=0.01,
                                   outbox_retry_cap_s=0.05)


@pytest.fixture(scope="session")
async def arq_redis(settings: Settings) -> AsyncIterator[ArqRedis]:
    r = queue.arq_redis(settings.redis_url)  # with the JSON job serializer, as in the worker
    yield r
    await r.aclose()


@pytest.fixture
def line_server() -> Iterator[FakeLineServer]:
    with FakeLineServer() as server:
        yield server


@pytest.fixture
async def line(line_server: FakeLineServer) -> AsyncIterator[LineClient]:
    async with LineClient(line_server.base_url, line_server.channel_access_token,
                          max_retries=3, backoff_base_s=0.001, backoff_max_s=0.01) as client:
        yield client


@pytest.fixture
def ctx(pool: asyncpg.Pool, fast_settings: Settings, arq_redis: ArqRedis) -> dict[str, Any]:
    """What a job receives from ARQ, minus the worker process."""
    return {"pool": pool, "settings": fast_settings, "queue": ArqQueue(arq_redis),
            "job_try": 1, "line": None, "sms": None, "outbox": OUTBOX}


async def add_outbox(pool: asyncpg.Pool, topic: str, payload: dict[str, Any],
                     member_id: int | None = None) -> int:
    return int(await pool.fetchval(
        "insert into outbox (topic, member_id, payload) values ($1, $2, $3) returning id",
        topic, member_id, payload))


async def run_event(ctx: dict[str, Any], topic: str, payload: dict[str, Any],
                    member_id: int | None = None) -> int:
    """Write an outbox row as a producer would, and run its job as the worker would."""
    oid = await add_outbox(ctx["pool"], topic, payload, member_id)
    assert await handle_outbox(ctx, oid) == "done"
    return oid
