"""Worker jobs of the outbox: handle one row, the relay tick, orphan recovery, startup.

``WORKER_FUNCTIONS``, ``WORKER_CRON`` and ``startup`` are what kuekan.worker registers. The
subscribers (which handlers run for a topic, what runs after a row and in the sweep) come from
the worker context, ``ctx["outbox"]``, which kuekan.worker fills: the outbox knows no domain.
"""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
from arq import cron
from arq.worker import Retry, func

from kuekan.kit.backoff import backoff_s
from kuekan.logging import get_logger
from kuekan.outbox import relay
from kuekan.outbox import repository as repo
from kuekan.outbox.handlers import Event, HandlerContext, Subscribers
from kuekan.outbox.queue import ArqQueue, outbox_job_id
from kuekan.settings import Settings, get_settings

log = get_logger("kuekan.outbox")


async def process(pool: asyncpg.Pool, settings: Settings, subscribers: Subscribers,
                  outbox_id: int, job_try: int) -> tuple[str, str | None]:
    """Run the row's handlers and record it processed, in one transaction, at most once."""
    async with pool.acquire() as conn, conn.transaction():
        await repo.lock_row(conn, outbox_id)
        row = await repo.get_row(conn, outbox_id)
        if row is None:
            return "missing", None
        if not await repo.mark_processed(conn, outbox_id):
            return "duplicate", row["topic"]
        ev = Event(id=row["id"], topic=row["topic"], member_id=row["member_id"],
                   payload=row["payload"] if isinstance(row["payload"], dict) else {},
                   created_at=row["created_at"], redrives=row["redrives"])
        ctx = HandlerContext(settings=settings, job_try=job_try)
        for handler in subscribers.handlers(row["topic"]):
            await handler(ctx, conn, ev)
    return "done", row["topic"]


async def handle_outbox(ctx: dict[str, Any], outbox_id: int) -> str:
    """The job of one outbox row: process it, retry with backoff, dead-letter at the cap."""
    settings: Settings = ctx["settings"]
    job_try = int(ctx.get("job_try", 1))
    try:
        status, topic = await process(ctx["pool"], settings, ctx["outbox"], outbox_id, job_try)
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"
        if job_try >= settings.outbox_max_tries:
            row = await repo.get_row(ctx["pool"], outbox_id)
            await repo.dead_letter(ctx["pool"], outbox_id, row["topic"] if row else "?", error,
                                   job_try)
            log.exception("outbox_dead_lettered", outbox_id=outbox_id, error=error, tries=job_try)
            return "dead"
        delay = backoff_s(job_try, settings.outbox_retry_base_s, settings.outbox_retry_cap_s)
        log.warning("outbox_retry", outbox_id=outbox_id, error=error, try_=job_try,
                    defer_s=round(delay, 3))
        raise Retry(defer=delay) from exc
    await _after(ctx, outbox_id, status, topic)
    return status


async def _after(ctx: dict[str, Any], outbox_id: int, status: str, topic: str | None) -> None:
    if status == "done" and topic is not None:
        # What the subscribers do after the commit (e.g. queue planned deliveries as their own
        # jobs); a crash right here is covered by their sweep.
        subscribers: Subscribers = ctx["outbox"]
        await subscribers.after(ctx, outbox_id, topic)


async def handle_outbox_batch(ctx: dict[str, Any], outbox_ids: list[int]) -> dict[str, int]:
    """The job of a relay batch: each row in its own transaction, exactly as ``handle_outbox``.

    A row whose handlers raise continues as its own ``handle_outbox`` job, deferred by the first
    backoff step, so one bad row neither fails nor delays the rest. Running the batch again
    (its worker died) finds the finished rows recorded and skips them.
    """
    settings: Settings = ctx["settings"]
    counts: dict[str, int] = {}
    for outbox_id in outbox_ids:
        try:
            status, topic = await process(ctx["pool"], settings, ctx["outbox"], outbox_id, 1)
        except Exception as exc:  # noqa: BLE001 - any handler failure: the row retries alone
            delay = backoff_s(1, settings.outbox_retry_base_s, settings.outbox_retry_cap_s)
            log.warning("outbox_retry", outbox_id=outbox_id, try_=1, defer_s=round(delay, 3),
                        error=f"{type(exc).__name__}: {exc}")
            await ctx["queue"].enqueue(relay.HANDLE_JOB, outbox_id,
                                       job_id=outbox_job_id(outbox_id), defer_s=delay)
            status, topic = "retry", None
        else:
            await _after(ctx, outbox_id, status, topic)
        counts[status] = counts.get(status, 0) + 1
    return counts


async def outbox_tick(ctx: dict[str, Any]) -> int:
    """Cron, every second: a bounded relay pass (the safety net of the relay loop)."""
    settings: Settings = ctx["settings"]
    n = await relay.relay_pass(ctx["pool"], ctx["queue"], settings.outbox_batch_size)
    await relay.observe_backlog(ctx["pool"])
    return n


async def outbox_sweep(ctx: dict[str, Any]) -> dict[str, int]:
    """Cron: re-run rows whose job was lost or whose worker died; re-send stuck messages."""
    settings: Settings = ctx["settings"]
    counts = await relay.recover_orphans(ctx["pool"], ctx["queue"],
                                         settings.outbox_orphan_after_s,
                                         settings.outbox_sweep_limit)
    subscribers: Subscribers = ctx["outbox"]
    counts.update(await subscribers.sweep(ctx))
    return counts


async def startup(ctx: dict[str, Any]) -> None:
    """Worker startup: the queue, orphan recovery, the relay loop (``ctx["outbox"]`` is set)."""
    settings: Settings = ctx["settings"]
    ctx["queue"] = ArqQueue(ctx["redis"])
    await outbox_sweep(ctx)
    ctx["relay_task"] = asyncio.create_task(relay.relay_forever(
        ctx["pool"], ctx["queue"], settings.outbox_batch_size, settings.outbox_poll_interval_s))


def tz_safe(crons: list[Any]) -> list[Any]:
    """Guard every cron against an ARQ 0.25 bug that kills the worker.

    ``arq.cron.next_cron`` returns a naive ``datetime(year + 1, 1, 1)`` (or month + 1) when a
    schedule rolls over a year or month, and the worker's next heartbeat crashes comparing it
    with an aware one. The arithmetic was done in the worker's timezone, so re-attaching that
    timezone is exact.
    """
    for job in crons:
        original = job.calculate_next

        def calculate_next(prev: Any, _original: Any = original, _job: Any = job) -> None:
            _original(prev)
            if _job.next_run is not None and _job.next_run.tzinfo is None and prev.tzinfo:
                _job.next_run = _job.next_run.replace(tzinfo=prev.tzinfo)

        job.calculate_next = calculate_next
    return crons


_settings = get_settings()
WORKER_FUNCTIONS: list[Any] = [
    # ARQ's own try cap sits above ours so a row is always dead-lettered, never dropped.
    func(handle_outbox, name="handle_outbox", timeout=_settings.outbox_job_timeout_s,
         max_tries=_settings.outbox_max_tries + 1),
    # A batch is not retried as a whole: its failing rows leave as handle_outbox jobs.
    func(handle_outbox_batch, name=relay.BATCH_JOB, timeout=_settings.outbox_job_timeout_s,
         max_tries=3),
    outbox_tick, outbox_sweep,
]
WORKER_CRON: list[Any] = [
    cron(outbox_tick, second=set(range(60)), timeout=30),
    cron(outbox_sweep, second={5, 25, 45}, timeout=60),
]
