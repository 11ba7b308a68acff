"""Worker job: deliver due agency webhooks (cron every few seconds)."""

from __future__ import annotations

from typing import Any

import httpx

from kuekan.agencies import service


async def deliver_webhooks(ctx: dict[str, Any]) -> dict[str, int]:
    client = ctx.get("kk_webhook_client")
    if client is None:
        client = ctx["kk_webhook_client"] = httpx.AsyncClient(follow_redirects=False)
    return await service.deliver_due(ctx["pool"], client,
                                     ctx["settings"].webhook_allowed_networks)
