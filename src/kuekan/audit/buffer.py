"""Group the HTTP audit middleware's rows into one write every few milliseconds.

Each admin or merchant request used to append its audit row in its own transaction under the
chain's global lock; at the evening scan peak that serialised every request on one lock. Rows
now wait at most ``FLUSH_INTERVAL_S`` in a bounded queue and are appended together, in arrival
order, by one ``kuekan.audit.append`` call. A full queue never drops a row: the request then
writes its row itself. Shutdown drains the queue. (Explicit ``record()`` calls inside a domain
transaction are unchanged: they commit with their action.)
"""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg

from kuekan.audit import append, record
from kuekan.kit.tasks import cancel_and_wait
from kuekan.logging import get_logger

log = get_logger("kuekan.audit")
QUEUE_ROWS_MAX = 10_000
BATCH_ROWS_MAX = 500
FLUSH_INTERVAL_S = 0.01


class AuditBuffer:
    def __init__(self, pool: asyncpg.Pool, key: str) -> None:
        self._pool = pool
        self._key = key
        self._queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(QUEUE_ROWS_MAX)
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="audit-buffer")

    async def add(self, actor: str, action: str, subject: str, details: dict[str, Any]) -> None:
        row = {"actor": actor, "action": action, "subject": subject, "details": details}
        try:
            self._queue.put_nowait(row)
        except asyncio.QueueFull:
            await record(self._pool, actor, action, subject, details)

    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            await asyncio.sleep(FLUSH_INTERVAL_S)
            while len(batch) < BATCH_ROWS_MAX and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            await self._write(batch)

    async def _write(self, batch: list[dict[str, Any]]) -> None:
        for attempt in range(3):
            try:
                async with self._pool.acquire() as conn, conn.transaction():
                    await append(conn, [(r["actor"], r["action"], r["subject"], r["details"])
                                        for r in batch], self._key)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("audit_batch_retry", rows=len(batch), attempt=attempt,
                            error=type(exc).__name__)
                await asyncio.sleep(0.2 * (attempt + 1))
            else:
                return
        log.error("audit_batch_lost", rows=len(batch))

    async def stop(self) -> None:
        """Write what is queued, then stop."""
        await cancel_and_wait(self._task)
        rest: list[dict[str, Any]] = []
        while not self._queue.empty():
            rest.append(self._queue.get_nowait())
        for start in range(0, len(rest), BATCH_ROWS_MAX):
            await self._write(rest[start:start + BATCH_ROWS_MAX])


async def startup(app: Any) -> None:
    app.state.audit_buffer = AuditBuffer(app.state.pool, app.state.settings.audit_hmac_key)
    app.state.audit_buffer.start()


async def shutdown(app: Any) -> None:
    await app.state.audit_buffer.stop()
