"""Worker jobs of analytics: the outbox consumer, run by cron every few seconds."""

from __future__ import annotations

from typing import Any

from kuekan.analytics import service


async def analytics_consume(ctx: dict[str, Any]) -> int:
    """Fold new outbox rows into the rollups; idempotent (the cursor moves with the rollups)."""
    result = await service.consume(ctx["pool"], ctx["kk_redis"])
    return result.events
