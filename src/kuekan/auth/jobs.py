"""Auth cron: forget refresh tokens a day after they expired (a reused one is refused while its
row exists; once expired it is refused by its own ``exp``), in bounded batches."""

from __future__ import annotations

import datetime as dt
from typing import Any

from arq import cron

from kuekan.auth import repository as repo
from kuekan.kit.clock import utcnow
from kuekan.logging import get_logger

log = get_logger(__name__)

CLEANUP_BATCH = 10_000
CLEANUP_BATCHES_MAX = 100


async def cleanup_refresh_tokens(ctx: dict[str, Any], now: dt.datetime | None = None) -> int:
    before = (now or utcnow()) - dt.timedelta(days=1)
    deleted = 0
    for _ in range(CLEANUP_BATCHES_MAX):
        n = await repo.delete_expired_refresh(ctx["pool"], before, CLEANUP_BATCH)
        deleted += n
        if n < CLEANUP_BATCH:
            break
    log.info("refresh_tokens_cleaned", rows=deleted)
    return deleted


JOBS = [cleanup_refresh_tokens]
CRON = [cron(cleanup_refresh_tokens, hour={21}, minute={5}, unique=True)]  # 04:05 Bangkok
