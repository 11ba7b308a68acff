"""The small enqueue interface the relay and jobs use, and its ARQ implementation.

Only this module imports ARQ's Redis client, so replacing the queue library means writing one
class with these four methods.
"""

from __future__ import annotations

import asyncio
from typing import Any, Literal, Protocol

from arq.connections import ArqRedis
from arq.constants import in_progress_key_prefix, job_key_prefix, result_key_prefix

from kuekan.cache import redis_pool

Recovery = Literal["queued", "enqueued", "released"]
# Concurrent enqueues per batch: enough to hide Redis round trips, bounded so a batch of
# thousands never opens thousands of connections.
ENQUEUE_CONCURRENCY_MAX = 32


def outbox_job_id(outbox_id: int, redrives: int = 0) -> str:
    """The queue id of an outbox row's job; a re-drive gets a fresh one."""
    return f"outbox:{outbox_id}" if redrives == 0 else f"outbox:{outbox_id}:r{redrives}"


def arq_redis(url: str) -> ArqRedis:
    """The ARQ worker's Redis client, on KueKan's pool (see ``kuekan.cache.redis_pool``):
    ARQ's own default pool serialises every command of the worker on one lock."""
    return ArqRedis(redis_pool(url))


class JobQueue(Protocol):
    """What KueKan needs from a job queue."""

    async def enqueue(self, function: str, *args: Any, job_id: str,
                      defer_s: float | None = None) -> bool:
        """Queue ``function(*args)`` once per ``job_id``; False when that id is already known."""
        ...

    async def enqueue_many(self, function: str, items: list[tuple[str, tuple[Any, ...]]]) -> int:
        """Queue many (job_id, args) at once; returns how many were new."""
        ...

    async def recover(self, function: str, *args: Any, job_id: str) -> Recovery:
        """Make sure a job whose effect is missing will run: re-queue it if the queue lost it,
        release it if the worker running it died. Only call it when no live worker runs it."""
        ...


class ArqQueue:
    """:class:`JobQueue` on ARQ's Redis (jobs, in-progress markers and results)."""

    def __init__(self, redis: ArqRedis) -> None:
        self.redis = redis
        self._sem = asyncio.Semaphore(ENQUEUE_CONCURRENCY_MAX)

    async def enqueue(self, function: str, *args: Any, job_id: str,
                      defer_s: float | None = None) -> bool:
        async with self._sem:
            job = await self.redis.enqueue_job(function, *args, _job_id=job_id,
                                               _defer_by=defer_s)
        return job is not None

    async def enqueue_many(self, function: str, items: list[tuple[str, tuple[Any, ...]]]) -> int:
        done = await asyncio.gather(*(self.enqueue(function, *args, job_id=jid)
                                      for jid, args in items))
        return sum(done)

    async def recover(self, function: str, *args: Any, job_id: str) -> Recovery:
        if not await self.redis.exists(job_key_prefix + job_id):
            # Lost (Redis flushed) or finished without its effect: queue it again.
            await self.redis.delete(result_key_prefix + job_id)
            await self.enqueue(function, *args, job_id=job_id)
            return "enqueued"
        if await self.redis.delete(in_progress_key_prefix + job_id):
            # Its worker died mid-job (the caller proved nobody holds the job's lock).
            return "released"
        return "queued"
