"""Admin: list dead-lettered outbox rows and re-drive them."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get, post
from litestar.di import Provide

from kuekan import audit
from kuekan.auth.guards import provide_admin
from kuekan.auth.tokens import Principal
from kuekan.errors import known
from kuekan.kit.bounds import PathId, QueryCursor, QueryLimit, QueryText
from kuekan.outbox import repository as repo
from kuekan.pagination import next_cursor, page_limit, parse_cursor


class OutboxAdminController(Controller):
    path = "/admin/outbox"
    dependencies = {"admin": Provide(provide_admin)}
    tags = ["admin"]

    @get("/dead", opt={"policy": "pao"})
    async def list_dead(self, request: Request[Any, Any, Any], admin: Principal,
                        status: QueryText = "dead", limit: QueryLimit = None,
                        cursor: QueryCursor = None) -> dict[str, Any]:
        n = page_limit(request.app.state.settings, limit)
        items = await repo.list_dead(request.app.state.pool, status, parse_cursor(cursor), n)
        nxt = next_cursor(items, n, lambda i: int(i["outbox_id"]))
        return {"items": items, "next_cursor": nxt}

    @post("/dead/{outbox_id:int}/redrive", status_code=202, opt={"policy": "pao"})
    async def redrive(self, request: Request[Any, Any, Any], admin: Principal,
                      outbox_id: PathId) -> dict[str, Any]:
        async with request.app.state.pool.acquire() as conn, conn.transaction():
            if not await repo.redrive(conn, outbox_id, admin.scope):
                raise known("dead_letter_not_found")
            await audit.record(conn, admin.scope, "outbox.redrive", f"outbox:{outbox_id}", {})
        return {"outbox_id": outbox_id, "status": "redriven"}

