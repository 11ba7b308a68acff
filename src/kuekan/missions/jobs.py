"""Worker jobs of the missions domain (registered in kuekan.worker JOBS/CRON).

Check-in side effects (fraud rules, pushes) are outbox handlers of their own domains, fed by the
``checkin.completed`` and ``mission.completed`` events that kk_checkin_idem writes.
"""

from __future__ import annotations

from typing import Any

from arq import cron

from kuekan.db.batches import delete_in_batches
from kuekan.logging import get_logger

log = get_logger(__name__)

BATCH_ROWS = 5000
MAX_BATCHES = 100
# Ended multiplier periods are kept this long (support questions), then removed so the
# per-check-in multiplier lookup stays on a small table.
ENDED_MULTIPLIER_KEEP_DAYS = 30


async def cleanup_member_multipliers(ctx: dict[str, Any]) -> int:
    """Delete multiplier periods that ended long ago, in bounded batches; idempotent."""
    deleted = await delete_in_batches(
        ctx["pool"], "member_multipliers", "ends_at < now() - make_interval(days => $1)",
        ENDED_MULTIPLIER_KEEP_DAYS, batch_rows=BATCH_ROWS, max_batches=MAX_BATCHES)
    log.info("member_multipliers_cleaned", deleted=deleted)
    return deleted


JOBS: list[Any] = [cleanup_member_multipliers]
CRON: list[Any] = [cron(cleanup_member_multipliers, hour={20}, minute={40}, unique=True)]
