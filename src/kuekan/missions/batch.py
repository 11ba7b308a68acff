"""Group commit of check-ins: concurrent check-ins of one API process share one SQL call.

``CheckinBatcher.run`` queues the check-in's ``kk_checkin_idem`` arguments. A flusher takes
whatever is queued (up to ``max_batch``) and sends it as one ``kk_checkin_batch`` call: one
round trip, one commit and one WAL flush for the whole batch. There is no timer: the first
check-in after a quiet spell goes alone at once, and the check-ins that arrive while a batch is
in flight form the next one, so batches grow exactly when the database is the bottleneck. At
most ``max_inflight`` batches of a process run at once.

Each item succeeds or is refused on its own (the SQL runs each in its own subtransaction). When
the batch as a whole fails (deadlock, serialization failure, a lost connection) nothing of it
committed and every caller gets the exception; ``Checkins._call`` then runs its check-in alone
through ``kk_checkin_idem`` with the usual retries.
"""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg

from kuekan import metrics
from kuekan.db.pool import refusal_for_state
from kuekan.logging import get_logger
from kuekan.missions import repository as repo

log = get_logger("kuekan.missions.batch")


class CheckinBatcher:
    def __init__(self, pool: asyncpg.Pool, *, member_cap: int | None, slices: int,
                 max_batch: int = 16, max_inflight: int = 2) -> None:
        assert 1 <= max_batch <= 32  # kk_checkin_batch refuses more
        self.pool = pool
        self.member_cap = member_cap
        self.slices = slices
        self.max_batch = max_batch
        self.max_inflight = max_inflight
        self._pending: list[tuple[dict[str, Any], asyncio.Future[dict[str, Any]]]] = []
        self._inflight = 0
        self._tasks: set[asyncio.Task[None]] = set()

    async def run(self, item: dict[str, Any]) -> dict[str, Any]:
        """The check-in's result ({status, body, hash, replay}); raises its refusal."""
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending.append((item, fut))
        if self._inflight < self.max_inflight:
            self._inflight += 1
            task = asyncio.create_task(self._drain())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return await fut

    async def _drain(self) -> None:
        try:
            while self._pending:
                batch = self._pending[:self.max_batch]
                del self._pending[:self.max_batch]
                await self._send(batch)
        finally:
            self._inflight -= 1

    async def _send(self, batch: list[tuple[dict[str, Any],
                                            asyncio.Future[dict[str, Any]]]]) -> None:
        # The lock order of kk_award (slice, then member) across every batch of every process.
        batch.sort(key=lambda p: (p[0]["member"] % self.slices, p[0]["member"]))
        try:
            results = await repo.checkin_batch(self.pool, [item for item, _ in batch],
                                               self.member_cap, self.slices)
        except BaseException as exc:
            for _, fut in batch:
                if not fut.done():
                    fut.set_exception(exc)
            if isinstance(exc, Exception):
                log.info("checkin_batch_failed", size=len(batch), error=type(exc).__name__)
                return
            raise
        metrics.CHECKIN_BATCH_SIZE.observe(len(batch))
        for (_, fut), res in zip(batch, results, strict=True):
            if fut.done():  # its request went away; the outcome is stored under its key
                continue
            if "refused" in res:
                fut.set_exception(refusal_for_state(res["refused"], res["state"]))
            else:
                fut.set_result(res)
