"""Admin analytics, the real-time dashboard and the merchant's own-shop report.

Every route here declares its data class in ``opt={"access": ...}``; :func:`access_guard` is the
one place that turns that class and the caller into allow or deny (policy in ``model.allowed``).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response, get
from litestar.params import Parameter, QueryParameter

from kuekan.analytics import model, service
from kuekan.analytics import repository as repo
from kuekan.analytics.schemas import (
    CohortOut,
    CohortsOut,
    DashboardOut,
    EngagementOut,
    ExportFormat,
    ExportReport,
    HeatLevel,
)
from kuekan.auth.guards import policy_guard, principal_of
from kuekan.auth.tokens import Principal
from kuekan.errors import DomainError, known
from kuekan.kit import export
from kuekan.kit.bounds import PathId, QueryId, QueryText
from kuekan.kit.clock import bangkok_day
from kuekan.pagination import page_limit

From = Annotated[dt.date | None, QueryParameter(name="from", required=False)]
To = Annotated[dt.date | None, QueryParameter(name="to", required=False)]


def forbidden_scope() -> DomainError:
    return known("forbidden_scope")


# The one place that turns a route's data class and the caller into allow or deny.
access_guard = policy_guard(model.allowed, forbidden_scope)


def _principal(request: Request[Any, Any, Any]) -> Principal:
    return principal_of(request)


def _export(rows: list[dict[str, Any]], fmt: str, sheet: str) -> bytes:
    rows = rows[:model.EXPORT_ROWS_MAX]
    columns = export.columns_of(rows)
    return (export.to_csv(columns, rows) if fmt == "csv"
            else export.to_xlsx({sheet: (columns, rows)}))


def _download(body: bytes, name: str, fmt: str) -> Response[bytes]:
    media = ("text/csv; charset=utf-8" if fmt == "csv" else
             "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
    return Response(content=body, media_type=media, headers={
        "Content-Disposition": f'attachment; filename="{name}.{fmt}"'})


class AnalyticsAdminController(Controller):
    path = "/admin"
    guards = [access_guard]
    tags = ["admin", "analytics"]

    @get("/dashboard/realtime", opt={"access": "aggregate"})
    async def realtime(self, request: Request[Any, Any, Any]) -> DashboardOut:
        state = request.app.state
        data = await service.dashboard(state.pool, state.redis)
        return msgspec.convert(data, DashboardOut)

    @get("/analytics/engagement", opt={"access": "aggregate"})
    async def engagement(self, request: Request[Any, Any, Any],
                         day: dt.date | None = None) -> EngagementOut:
        data = await service.engagement(request.app.state.pool, day or bangkok_day())
        return EngagementOut(**data)

    @get("/analytics/daily", opt={"access": "aggregate"})
    async def daily(self, request: Request[Any, Any, Any], start: From = None,
                    end: To = None) -> dict[str, Any]:
        a, b = service.date_range(start, end)
        return {"items": await service.daily_report(request.app.state.pool, a, b)}

    @get("/analytics/cohorts", opt={"access": "aggregate"})
    async def cohorts(self, request: Request[Any, Any, Any], start: From = None,
                      end: To = None, weeks: Annotated[int, Parameter(ge=1, le=52)] = 8
                      ) -> CohortsOut:
        a, b = service.date_range(start, end, default_days=7 * weeks)
        rows = await service.cohorts(request.app.state.pool, a, b, weeks, bangkok_day())
        return CohortsOut(weeks=weeks, items=[
            CohortOut(cohort_week=r.cohort_week.isoformat(), size=r.size, active=r.active,
                      retention=r.retention) for r in rows])

    @get("/analytics/heatmap", opt={"access": "aggregate"})
    async def heatmap(self, request: Request[Any, Any, Any], start: From = None,
                      end: To = None, level: HeatLevel = "district") -> dict[str, Any]:
        a, b = service.date_range(start, end)
        return await service.heatmap(request.app.state.pool, a, b, level)

    @get("/analytics/journey", opt={"access": "aggregate"})
    async def journey(self, request: Request[Any, Any, Any], start: From = None,
                      end: To = None, geofence_id: QueryId = None,
                      mission_id: QueryId = None,
                      within_h: Annotated[int, Parameter(ge=1, le=168)] = 24) -> dict[str, Any]:
        a, b = service.date_range(start, end, default_days=1)
        return await service.journey(request.app.state.pool, geofence_id, mission_id, a, b,
                                     within_h)

    @get("/analytics/campaigns/roi", opt={"access": "business"})
    async def roi(self, request: Request[Any, Any, Any], start: From = None, end: To = None,
                  campaign: QueryText = None,
                  point_value_thb: Annotated[float, Parameter(ge=0.01, le=1000)] = 1.0
                  ) -> dict[str, Any]:
        a, b = service.date_range(start, end)
        value = Decimal(str(point_value_thb))
        items = await service.campaign_roi(request.app.state.pool, a, b, campaign, value)
        return {"point_value_thb": str(value), "items": items}

    @get("/analytics/segments", opt={"access": "aggregate"})
    async def segments(self, request: Request[Any, Any, Any], start: From = None,
                       end: To = None) -> dict[str, Any]:
        a, b = service.date_range(start, end)
        return {"items": await service.segments(request.app.state.pool, a, b)}

    @get("/analytics/members/top", opt={"access": "members"})
    async def top_members(self, request: Request[Any, Any, Any], start: From = None,
                          end: To = None, limit: int | None = None) -> dict[str, Any]:
        a, b = service.date_range(start, end)
        p = _principal(request)
        n = page_limit(request.app.state.settings, limit)
        rows = await repo.top_members(request.app.state.pool, a, b, n)
        return {"items": model.redact(rows, p.role, p.org)}

    @get("/analytics/merchants/{merchant_id:int}/daily", opt={"access": "business"})
    async def merchant_daily(self, request: Request[Any, Any, Any], merchant_id: PathId,
                             start: From = None, end: To = None) -> dict[str, Any]:
        a, b = service.date_range(start, end)
        items = await service.merchant_report(request.app.state.pool, merchant_id, a, b)
        return {"merchant_id": merchant_id, "items": items}

    @get("/analytics/export", opt={"access": "aggregate"})
    async def export(self, request: Request[Any, Any, Any], report: ExportReport = "daily",
                     fmt: Annotated[ExportFormat, QueryParameter(name="format")] = "csv",
                     start: From = None, end: To = None) -> Response[bytes]:
        a, b = service.date_range(start, end)
        rows = await _report_rows(request, report, a, b)
        body = _export(rows, fmt, report)
        return _download(body, f"kuekan-{report}-{a.isoformat()}-{b.isoformat()}", fmt)


async def _report_rows(request: Request[Any, Any, Any], report: str, a: dt.date,
                       b: dt.date) -> list[dict[str, Any]]:
    pool = request.app.state.pool
    if report == "members":
        p = _principal(request)
        rows = await repo.top_members(pool, a, b, model.EXPORT_ROWS_MAX)
        return model.redact(rows, p.role, p.org)
    if report == "campaigns":
        return await service.campaign_roi(pool, a, b, None, Decimal(1))
    if report == "districts":
        geo = await service.heatmap(pool, a, b, "district")
        return [dict(f["properties"]) for f in geo["features"]]
    if report == "segments":
        return await service.segments(pool, a, b)
    return await service.daily_report(pool, a, b)


class MerchantAnalyticsController(Controller):
    """Merchant staff: their own shop's figures, never another shop's."""

    path = "/merchant/analytics"
    guards = [access_guard]
    tags = ["merchant", "analytics"]

    @get("/daily", opt={"access": "shop"})
    async def daily(self, request: Request[Any, Any, Any], merchant_id: QueryId = None,
                    start: From = None, end: To = None,
                    fmt: Annotated[ExportFormat | None, QueryParameter(name="format")] = None
                    ) -> Any:
        p = _principal(request)
        target = merchant_id if merchant_id is not None else p.merchant_id
        if target is None or not model.shop_allowed(p.role, p.merchant_id, target):
            raise forbidden_scope()
        a, b = service.date_range(start, end)
        items = await service.merchant_report(request.app.state.pool, target, a, b)
        if fmt is None:
            return {"merchant_id": target, "items": items}
        body = _export(items, fmt, "daily")
        return _download(body, f"shop-{target}-{a.isoformat()}-{b.isoformat()}", fmt)
