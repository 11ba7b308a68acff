"""ARQ WorkerSettings: job functions, cron, startup and shutdown.

Jobs are registered by domain (``JOBS``/``CRON``); every job is idempotent because the outbox
relay may deliver one twice, never zero times.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

from arq import cron
from arq.connections import RedisSettings

from kuekan.agencies.jobs import deliver_webhooks
from kuekan.analytics.jobs import analytics_consume
from kuekan.cache import create_redis
from kuekan.db import create_pool
from kuekan.logging import configure_logging, get_logger
from kuekan.missions import jobs as missions_jobs
from kuekan.outbox import jobs as outbox_jobs
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
    deleted = 0
    # Bounded batches so one run never holds a long lock or bloats WAL in one transaction.
    for _ in range(1000):
        status = await ctx["pool"].execute(
            "delete from idempotency_keys where ctid in (select ctid from idempotency_keys"
            " where created_at < $1 limit 5000)", cutoff)
        n = int(status.split()[-1])
        deleted += n
        if n < 5000:
            break
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
    for hook in WORKER_STARTUP:
        await hook(ctx)
    await heartbeat(ctx)


async def shutdown(ctx: dict[str, Any]) -> None:
    # Also runs after a failed startup: close only what startup got to open, so the error
    # that stopped the worker is the one its log ends with.
    if "pool" in ctx:
        await ctx["pool"].close()
    if "kk_redis" in ctx:
        await ctx["kk_redis"].aclose()


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
# Analytics rollups and agency webhooks every 5 s (both bounded per run, both idempotent).
JOBS += [analytics_consume, deliver_webhooks]
CRON += [cron(analytics_consume, second=set(range(0, 60, 5)), unique=True),
         cron(deliver_webhooks, second=set(range(2, 60, 5)), unique=True)]
WORKER_STARTUP: list[Any] = []
# Outbox relay + handlers, fraud rules, LINE/SMS notifications (kuekan.outbox.jobs).
JOBS += outbox_jobs.WORKER_FUNCTIONS
CRON += outbox_jobs.WORKER_CRON
WORKER_STARTUP.append(outbox_jobs.startup)
CRON[:] = outbox_jobs.tz_safe(CRON)  # ARQ 0.25 month/year rollover bug, see tz_safe
JOBS[:] = instrument_all(JOBS)
CRON[:] = instrument_all(CRON)


class WorkerSettings:
    functions = JOBS
    cron_jobs = CRON
    on_startup = startup
    on_shutdown = shutdown
    redis_settings = RedisSettings.from_dsn(get_settings().redis_url)
    max_jobs = 50
    job_timeout = 300
    max_tries = 8
    keep_result = 3600
    health_check_interval = 30
