"""GET /me, /me/pocket, /me/history."""

from __future__ import annotations

import datetime as dt
from typing import Any

from litestar import Controller, Request, get
from litestar.di import Provide

from kuekan.auth.guards import provide_member
from kuekan.auth.tokens import Principal
from kuekan.errors import DomainError, known
from kuekan.kit.bounds import QueryCursor, QueryLimit
from kuekan.members import model
from kuekan.members import repository as repo
from kuekan.members.schemas import Expiring, HistoryItem, HistoryPage, MeOut, PocketOut
from kuekan.pagination import next_cursor, page_limit, parse_cursor


def member_gone() -> DomainError:
    return known("member_not_found", 404)


class MeController(Controller):
    path = "/me"
    dependencies = {"me": Provide(provide_member)}
    tags = ["member"]

    @get("/")
    async def me(self, request: Request[Any, Any, Any], me: Principal) -> MeOut:
        row = await repo.get_member(request.app.state.pool, me.subject_id)
        if row is None:
            raise member_gone()
        return MeOut(id=row["id"], line_sub=row["line_sub"], display_name=row["display_name"],
                     tier=row["tier"], status=row["status"], segment=row["segment"])

    @get("/pocket")
    async def pocket(self, request: Request[Any, Any, Any], me: Principal) -> PocketOut:
        pool = request.app.state.pool
        row = await repo.pocket(pool, me.subject_id)
        if row is None:
            raise member_gone()
        months = request.app.state.settings.points_expiry_months
        expiring = []
        for lot in row["lots"]:
            month = dt.date.fromisoformat(lot["month"])
            expiring.append(Expiring(month=month.strftime("%Y-%m"), points=lot["points"],
                                     expires_at=model.lot_expires_at(month, months)))
        return PocketOut(balance=row["balance"], reserved=row["reserved"],
                         available=row["available"], tier=row["tier"], expiring=expiring)

    @get("/history")
    async def history(self, request: Request[Any, Any, Any], me: Principal,
                      limit: QueryLimit = None, cursor: QueryCursor = None) -> HistoryPage:
        n = page_limit(request.app.state.settings, limit)
        rows = await repo.history(request.app.state.pool, me.subject_id, parse_cursor(cursor), n)
        items = [HistoryItem(**r) for r in rows]
        nxt = next_cursor(items, n, lambda i: i.id)
        return HistoryPage(items=items, next_cursor=nxt)
