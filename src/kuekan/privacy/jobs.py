"""Privacy cron: strip personal keys (coordinates, device ids, phones, OTP codes, LINE ids) from
outbox payloads once processed and ``outbox_personal_retention_h`` old (kk_purge_outbox_personal,
sql/functions). By then the handlers, fraud projections and the analytics consumer have read
them; the rows themselves stay (ids, topics, the rest of the payload)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from arq import cron

from kuekan.kit.clock import utcnow
from kuekan.logging import get_logger

log = get_logger(__name__)

PURGE_BATCH = 5000
PURGE_BATCHES_MAX = 200  # at most a million rows a run; the next run continues


async def purge_outbox_personal(ctx: dict[str, Any], now: dt.datetime | None = None) -> int:
    hours = ctx["settings"].outbox_personal_retention_h
    before = (now or utcnow()) - dt.timedelta(hours=hours)
    purged = 0
    for _ in range(PURGE_BATCHES_MAX):
        n = int(await ctx["pool"].fetchval("select kk_purge_outbox_personal($1, $2)", before,
                                           PURGE_BATCH))
        purged += n
        if n < PURGE_BATCH:
            break
    log.info("outbox_personal_purged", rows=purged)
    return purged


JOBS = [purge_outbox_personal]
CRON = [cron(purge_outbox_personal, minute={25}, unique=True)]  # hourly
