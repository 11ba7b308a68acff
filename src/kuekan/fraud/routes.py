"""Admin API for fraud: alerts, reviews (approve/reject), member holds, blacklist."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from litestar import Controller, Request, delete, get, post
from litestar.di import Provide

from kuekan.auth.guards import provide_admin
from kuekan.auth.tokens import Principal
from kuekan.fraud import repository as repo
from kuekan.fraud import service
from kuekan.kit.bounds import (
    Note,
    PathId,
    QueryCursor,
    QueryId,
    QueryLimit,
    QueryText,
    Reason,
)
from kuekan.pagination import next_cursor, page_limit, parse_cursor


class HoldIn(msgspec.Struct):
    reason: Reason = msgspec.field(default="manual")


class DecisionIn(msgspec.Struct):
    note: Note | None = None


class BlacklistIn(msgspec.Struct):
    kind: Literal["member", "device", "merchant"]
    value: Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
    reason: Reason


def _page(rows: list[Any], n: int) -> dict[str, Any]:
    items = [dict(r) for r in rows]
    return {"items": items, "next_cursor": next_cursor(items, n, lambda i: int(i["id"]))}


class FraudAdminController(Controller):
    path = "/admin"
    dependencies = {"admin": Provide(provide_admin)}
    tags = ["admin", "fraud"]

    @get("/fraud/alerts", opt={"policy": "pao"})
    async def alerts(self, request: Request[Any, Any, Any], admin: Principal,
                     member_id: QueryId = None, rule: QueryText = None,
                     limit: QueryLimit = None, cursor: QueryCursor = None) -> dict[str, Any]:
        n = page_limit(request.app.state.settings, limit)
        rows = await repo.list_alerts(request.app.state.pool, member_id, rule,
                                      parse_cursor(cursor), n)
        return _page(rows, n)

    @get("/fraud/reviews", opt={"policy": "pao"})
    async def reviews(self, request: Request[Any, Any, Any], admin: Principal,
                      status: QueryText = "open", limit: QueryLimit = None,
                      cursor: QueryCursor = None) -> dict[str, Any]:
        n = page_limit(request.app.state.settings, limit)
        rows = await repo.list_reviews(request.app.state.pool, status, parse_cursor(cursor), n)
        return _page(rows, n)

    @post("/fraud/reviews/{review_id:int}/approve", status_code=200, opt={"policy": "pao"})
    async def approve(self, request: Request[Any, Any, Any], admin: Principal, review_id: PathId,
                      data: DecisionIn | None = None) -> dict[str, Any]:
        return await self._decide(request, admin, review_id, True, data)

    @post("/fraud/reviews/{review_id:int}/reject", status_code=200, opt={"policy": "pao"})
    async def reject(self, request: Request[Any, Any, Any], admin: Principal, review_id: PathId,
                     data: DecisionIn | None = None) -> dict[str, Any]:
        return await self._decide(request, admin, review_id, False, data)

    async def _decide(self, request: Request[Any, Any, Any], admin: Principal, review_id: int,
                      approve: bool, data: DecisionIn | None) -> dict[str, Any]:
        s = request.app.state.settings
        return await service.decide_review(request.app.state.pool, review_id, approve,
                                           admin.scope, data.note if data else None,
                                           s.fraud_strikes_to_ban, s.budget_slices)

    @post("/members/{member_id:int}/hold", status_code=200, opt={"policy": "pao"})
    async def hold(self, request: Request[Any, Any, Any], admin: Principal, member_id: PathId,
                   data: HoldIn) -> dict[str, Any]:
        status = await service.hold(request.app.state.pool, member_id, data.reason, admin.scope)
        return {"member_id": member_id, "status": status}

    @delete("/members/{member_id:int}/hold", status_code=200, opt={"policy": "pao"})
    async def lift(self, request: Request[Any, Any, Any], admin: Principal,
                   member_id: PathId) -> dict[str, Any]:
        status = await service.lift_hold(request.app.state.pool, member_id, admin.scope)
        return {"member_id": member_id, "status": status}

    @get("/fraud/blacklist", opt={"policy": "pao"})
    async def list_blacklist(self, request: Request[Any, Any, Any], admin: Principal,
                             kind: QueryText = None, limit: QueryLimit = None) -> dict[str, Any]:
        n = page_limit(request.app.state.settings, limit)
        return _page(await repo.list_blacklist(request.app.state.pool, kind, n), n)

    @post("/fraud/blacklist", status_code=201, opt={"policy": "pao"})
    async def add_blacklist(self, request: Request[Any, Any, Any], admin: Principal,
                            data: BlacklistIn) -> dict[str, Any]:
        row = await service.blacklist(request.app.state.pool, data.kind, data.value, data.reason,
                                      admin.scope)
        return dict(row)

    @delete("/fraud/blacklist/{entry_id:int}", status_code=200, opt={"policy": "pao"})
    async def lift_blacklist(self, request: Request[Any, Any, Any], admin: Principal,
                             entry_id: PathId) -> dict[str, Any]:
        return dict(await service.unblacklist(request.app.state.pool, entry_id, admin.scope))
