"""The small enqueue interface the relay and jobs use, and its ARQ implementation.

Only this module imports ARQ's Redis client, so replacing the queue library means writing one
class with these four methods.
"""

from __future__ import annotations

import asyncio
from typing import Any, Literal, Protocol

import msgspec
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


def _encode_other(obj: Any) -> Any:
    # A failed job's result is its exception: kept as text, never as an object.
    if isinstance(obj, BaseException):
        return f"{type(obj).__name__}: {obj}"
    raise NotImplementedError(f"a job carries only JSON values, not {type(obj).__name__}")


_JOB_ENCODER = msgspec.json.Encoder(enc_hook=_encode_other)


def job_serializer(data: dict[str, Any]) -> bytes:
    """Jobs and results in Redis are JSON, not pickle: with pickle, anyone able to write to
    Redis runs code in every worker. Job arguments are ids (ints and lists of ints)."""
    return _JOB_ENCODER.encode(data)


def job_deserializer(raw: bytes) -> dict[str, Any]:
    """The inverse of :func:`job_serializer`; anything else (a pickle) is refused, not run."""
    data = msgspec.json.decode(raw)
    if not isinstance(data, dict):
        raise TypeError("a job must be a JSON object")
    return data


def arq_redis(url: str) -> ArqRedis:
    """The ARQ Redis client every enqueuer and the worker use, on KueKan's pool (see
    ``kuekan.cache.redis_pool``: ARQ's own default pool serialises every command of the worker
    on one lock) and with the JSON job serializer."""
    return ArqRedis(redis_pool(url), job_serializer=job_serializer,
                    job_deserializer=job_deserializer)


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
