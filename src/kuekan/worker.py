"""ARQ WorkerSettings: job functions, cron, startup and shutdown.

The worker's composition root: every domain's jobs and crons (``JOBS``/``CRON``) and every
outbox subscriber (``OUTBOX``) are listed here and nowhere else. Every job is idempotent
because the outbox relay may deliver one twice, never zero times.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import signal
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import asyncpg
from arq import cron
from arq.connections import RedisSettings
from arq.worker import Worker, create_worker
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from kuekan.agencies.jobs import deliver_webhooks
from kuekan.analytics.jobs import analytics_consume
from kuekan.auth import jobs as auth_jobs
from kuekan.cache import create_redis
from kuekan.db import create_pool
from kuekan.db.batches import delete_in_batches
from kuekan.fraud import service as fraud_service
from kuekan.logging import configure_logging, get_logger
from kuekan.missions import jobs as missions_jobs
from kuekan.notify import jobs as notify_jobs
from kuekan.outbox import jobs as outbox_jobs
from kuekan.outbox.handlers import Subscribers
from kuekan.outbox.queue import arq_redis, job_deserializer, job_serializer
from kuekan.privacy import jobs as privacy_jobs
from kuekan.rewards import jobs as rewards_jobs
from kuekan.settings import get_settings
from kuekan.worker_metrics import instrument_all, serve_metrics

log = get_logger("kuekan.worker")
HEARTBEAT_KEY = "kk:worker:heartbeat"
HEARTBEAT_MAX_AGE_S = 120


async def cleanup_idempotency_keys(ctx: dict[str, Any]) -> int:
    """Delete durable idempotency records older than the retention (default 30 days)."""
    settings = ctx["settings"]
    cutoff = dt.datetime.now(dt.UTC) - dt.timedelta(days=settings.idempotency_retention_days)
    deleted = await delete_in_batches(ctx["pool"], "idempotency_keys", "created_at < $1", cutoff,
                                      batch_rows=5000, max_batches=1000)
    log.info("idempotency_keys_cleaned", deleted=deleted)
    return deleted


async def heartbeat(ctx: dict[str, Any]) -> None:
    await ctx["kk_redis"].set(HEARTBEAT_KEY, str(time.time()), ex=HEARTBEAT_MAX_AGE_S * 2)


async def startup(ctx: dict[str, Any]) -> None:
    settings = get_settings()
    configure_logging(settings.log_level, json=settings.log_json)
    serve_metrics(settings.worker_metrics_port)
    ctx["settings"] = settings
    ctx["pool"] = await create_pool(settings, min_size=1, max_size=10)
    ctx["kk_redis"] = create_redis(settings)
    ctx["outbox"] = OUTBOX
    for hook in WORKER_STARTUP:
        await hook(ctx)
    await heartbeat(ctx)


async def shutdown(ctx: dict[str, Any]) -> None:
    # Also runs after a failed startup: close only what startup got to open, so the error
    # that stopped the worker is the one its log ends with.
    if "pool" in ctx:
        await ctx.pop("pool").close()
    if "kk_redis" in ctx:
        await ctx.pop("kk_redis").aclose()


async def health_check() -> bool:
    """Liveness: true when a worker refreshed its heartbeat recently."""
    redis = create_redis(get_settings())
    try:
        raw = await redis.get(HEARTBEAT_KEY)
    finally:
        await redis.aclose()
    return raw is not None and time.time() - float(raw) < HEARTBEAT_MAX_AGE_S


# Domains extend these lists.
JOBS: list[Any] = [cleanup_idempotency_keys, heartbeat]
CRON: list[Any] = [
    cron(cleanup_idempotency_keys, hour={20}, minute={15}),  # 03:15 Asia/Bangkok
    cron(heartbeat, second={0, 30}),
]
JOBS += rewards_jobs.JOBS
CRON += rewards_jobs.CRON
JOBS += missions_jobs.JOBS
CRON += missions_jobs.CRON
JOBS += privacy_jobs.JOBS
CRON += privacy_jobs.CRON
JOBS += auth_jobs.JOBS
CRON += auth_jobs.CRON
# Analytics rollups and agency webhooks every 5 s (both bounded per run, both idempotent).
JOBS += [analytics_consume, deliver_webhooks]
CRON += [cron(analytics_consume, second=set(range(0, 60, 5)), unique=True),
         cron(deliver_webhooks, second=set(range(2, 60, 5)), unique=True)]
# Who the outbox's events reach: fraud rules and LINE/SMS notifications (each row's handlers
# run in one transaction, exactly once).
OUTBOX = Subscribers(fraud_service.SUBSCRIBER, notify_jobs.SUBSCRIBER)
# Outbox relay and handlers; LINE/SMS deliveries and notification crons.
JOBS += outbox_jobs.WORKER_FUNCTIONS
CRON += outbox_jobs.WORKER_CRON
JOBS += notify_jobs.jobs(get_settings())
CRON += notify_jobs.cron_jobs(get_settings())
# Notification clients first: the outbox's startup sweep may already re-send messages.
WORKER_STARTUP: list[Any] = [notify_jobs.startup, outbox_jobs.startup]
CRON[:] = outbox_jobs.tz_safe(CRON)  # ARQ 0.25 month/year rollover bug, see tz_safe
JOBS[:] = instrument_all(JOBS)
CRON[:] = instrument_all(CRON)


class WorkerSettings:
    functions = JOBS
    cron_jobs = CRON
    on_startup = startup
    on_shutdown = shutdown
    redis_settings = RedisSettings.from_dsn(get_settings().redis_url)
    # JSON, never pickle, for jobs and results (kuekan.outbox.queue.job_serializer).
    job_serializer = staticmethod(job_serializer)
    job_deserializer = staticmethod(job_deserializer)
    max_jobs = 50
    job_timeout = 300
    max_tries = 8
    keep_result = 3600
    health_check_interval = 30


# An ARQ worker's main loop ends with the first Redis connection error (python-arq/arq#435,
# #498): a Redis restart, failover or killed connection would stop every worker at once. A
# worker starting while PostgreSQL drops its connections (failover, pg_terminate_backend) fails
# its startup the same way. Both are worth a restart; any other error stops the process.
STORAGE_LOST = (RedisConnectionError, RedisTimeoutError, OSError,
                asyncpg.PostgresConnectionError, asyncpg.InterfaceError,
                asyncpg.exceptions.AdminShutdownError, asyncpg.exceptions.CannotConnectNowError)
RESTART_DELAY_S = (0.5, 10.0)  # first and longest wait before the worker starts again


def run(redis_url: str,
        new_loop: Callable[[], asyncio.AbstractEventLoop] = asyncio.new_event_loop) -> int:
    """Run the worker until a signal stops it; when Redis or PostgreSQL is lost, start it again.

    Each run gets a fresh event loop, and what the lost one left open (the database pool, the
    relay task) is closed first. Nothing is lost meanwhile: the outbox keeps every event in
    PostgreSQL, and the restarted worker's startup sweep re-queues what the queue lost. SIGTERM
    or SIGINT between runs (the back-off while storage is away) ends the process at once.
    """
    delay = RESTART_DELAY_S[0]
    stop = threading.Event()
    while not stop.is_set():
        loop = new_loop()
        asyncio.set_event_loop(loop)
        worker = create_worker(WorkerSettings,  # type: ignore[arg-type]
                               redis_pool=arq_redis(redis_url))
        started = time.monotonic()
        try:
            worker.run()
            return 0  # stopped by SIGTERM or SIGINT
        except STORAGE_LOST as exc:
            log.warning("worker_storage_lost", error=f"{type(exc).__name__}: {exc}",
                        restart_in_s=delay)
        finally:
            _close_leftovers(loop, worker)
        ran_s = time.monotonic() - started
        with _stop_on_signal(stop):
            stop.wait(delay)
        # Back off while storage stays away; a worker that ran a while starts the count again.
        delay = RESTART_DELAY_S[0] if ran_s > 60 else min(delay * 2, RESTART_DELAY_S[1])
    log.info("worker_stopped_during_restart")
    return 0


@contextlib.contextmanager
def _stop_on_signal(stop: threading.Event) -> Iterator[None]:
    """While no event loop runs (ARQ's handlers are gone with it), SIGTERM/SIGINT set ``stop``."""
    def handler(_signum: int, _frame: object) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _close_leftovers(loop: asyncio.AbstractEventLoop, worker: Worker) -> None:
    """After a run: what ARQ's close did not reach when the run ended in an error (the
    database pool, the relay task), then the loop itself."""
    with contextlib.suppress(Exception):
        loop.run_until_complete(shutdown(worker.ctx))
    pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
    for task in pending:
        task.cancel()
    with contextlib.suppress(Exception):
        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
    loop.close()
