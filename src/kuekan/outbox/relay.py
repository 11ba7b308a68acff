"""The relay: unrelayed outbox rows → queue jobs, and orphan recovery.

Rows go to the queue in jobs of up to ``ROWS_PER_JOB`` rows (``handle_outbox_batch``, job id
``outbox:<first id>+<count>``): a queue job costs about ten Redis commands and a task in the
worker, and paying that once per row was most of the worker's CPU in an event flood. A row
whose handlers fail in a batch continues as its own ``handle_outbox`` job (job id = outbox id)
with the retries and dead-lettering; re-driven rows always go alone.

Rows are taken ``FOR UPDATE SKIP LOCKED`` in id order, so several relays (one per worker
process, plus the cron tick) share the backlog without taking the same row. A crash between
enqueueing and marking a batch relayed re-enqueues it; the queue refuses a known job id and
the handler's processed table absorbs anything that still gets through.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import asyncpg

from kuekan import metrics
from kuekan.logging import get_logger
from kuekan.outbox import repository as repo
from kuekan.outbox.queue import JobQueue, outbox_job_id

log = get_logger("kuekan.outbox.relay")
HANDLE_JOB = "handle_outbox"
BATCH_JOB = "handle_outbox_batch"
# Rows per batch job: big enough to make the queue's per-job cost vanish, small enough that the
# relay's 500-row claims still spread over several jobs running side by side.
ROWS_PER_JOB = 25
# A relay pass stops after this many batches so a cron tick never runs for long.
BATCHES_PER_PASS_MAX = 20


def batch_job_id(ids: list[int]) -> str:
    return f"outbox:{ids[0]}+{len(ids)}"


def plan_jobs(rows: list[asyncpg.Record]) -> tuple[list[tuple[str, tuple[Any, ...]]],
                                                  list[tuple[str, tuple[Any, ...]]]]:
    """(batch jobs, single-row jobs) for claimed rows, in id order."""
    fresh = [int(r["id"]) for r in rows if r["redrives"] == 0]
    batches = [(batch_job_id(chunk), (chunk,))
               for chunk in (fresh[i:i + ROWS_PER_JOB] for i in range(0, len(fresh), ROWS_PER_JOB))]
    singles: list[tuple[str, tuple[Any, ...]]] = [
        (outbox_job_id(r["id"], r["redrives"]), (r["id"],)) for r in rows if r["redrives"] > 0]
    return batches, singles


async def relay_once(pool: asyncpg.Pool, queue: JobQueue, batch_size: int) -> int:
    """Relay one claim of rows; returns how many rows it moved."""
    async with pool.acquire() as conn, conn.transaction():
        rows = await repo.claim_unrelayed(conn, batch_size)
        if not rows:
            return 0
        batches, singles = plan_jobs(rows)
        if batches:
            await queue.enqueue_many(BATCH_JOB, batches)
        if singles:
            await queue.enqueue_many(HANDLE_JOB, singles)
        await repo.mark_relayed(conn, [r["id"] for r in rows])
    return len(rows)


async def relay_pass(pool: asyncpg.Pool, queue: JobQueue, batch_size: int) -> int:
    """Relay until the backlog is empty or the pass bound is reached."""
    total = 0
    for _ in range(BATCHES_PER_PASS_MAX):
        n = await relay_once(pool, queue, batch_size)
        total += n
        if n < batch_size:
            break
    return total


async def relay_forever(pool: asyncpg.Pool, queue: JobQueue, batch_size: int,
                        poll_s: float) -> None:
    """The worker's long-running relay; ends when the pool closes (worker shutdown)."""
    while not pool.is_closing():
        try:
            n = await relay_once(pool, queue, batch_size)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            if pool.is_closing():
                return
            log.warning("outbox_relay_failed", error=type(exc).__name__)
            await asyncio.sleep(1.0)
            continue
        except Exception:  # a queue outage must not kill the loop
            log.exception("outbox_relay_failed")
            await asyncio.sleep(1.0)
            continue
        if n < batch_size:
            await asyncio.sleep(poll_s)


async def recover_orphans(pool: asyncpg.Pool, queue: JobQueue, older_than_s: float,
                          limit: int) -> dict[str, int]:
    """Make relayed-but-unprocessed rows run again when no live worker is running them.

    A worker holds the row's advisory lock for the whole handler transaction, and PostgreSQL
    drops it the moment that worker's connection dies, so a free lock on an unprocessed row
    means its job was lost (Redis flushed) or its worker died (SIGKILL): re-queue or release.
    """
    counts: dict[str, int] = {"queued": 0, "enqueued": 0, "released": 0, "running": 0}
    for row in await repo.orphans(pool, older_than_s, limit):
        async with pool.acquire() as conn, conn.transaction():
            if not await repo.try_lock_row(conn, row["id"]):
                counts["running"] += 1
                continue
            outcome = await queue.recover(HANDLE_JOB, row["id"],
                                          job_id=outbox_job_id(row["id"], row["redrives"]))
        counts[outcome] += 1
    if counts["enqueued"] or counts["released"]:
        log.warning("outbox_orphans_recovered", **counts)
    return counts


async def observe_backlog(pool: asyncpg.Pool) -> dict[str, Any]:
    row = await repo.backlog(pool)
    metrics.OUTBOX_PENDING.set(row["pending"])
    metrics.OUTBOX_LAG.set(row["lag_s"])
    return {"pending": row["pending"], "lag_s": row["lag_s"], "at": time.time()}
