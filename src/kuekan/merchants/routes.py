"""Merchants (admin), merchant reports (staff), settlement (admin); json, csv or xlsx."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

import asyncpg
from litestar import Controller, Request, Response, get, post
from litestar.di import Provide
from litestar.params import Parameter

from kuekan.auth import policy
from kuekan.auth.guards import provide_admin, provide_merchant
from kuekan.auth.tokens import Principal
from kuekan.errors import known
from kuekan.kit import export
from kuekan.kit.bounds import PathId, QueryCursor, QueryLimit
from kuekan.kit.clock import bangkok_day
from kuekan.ledger import repository as ledger_repo
from kuekan.members import repository as members_repo
from kuekan.merchants import model
from kuekan.merchants import repository as repo
from kuekan.merchants.schemas import MerchantIn, MerchantList, MerchantOut, StaffIn, StaffOut
from kuekan.pagination import next_cursor, page_limit, parse_cursor

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
Format = Literal["json", "csv", "xlsx"]
FormatQ = Annotated[Format, Parameter(query="format")]
FromQ = Annotated[str | None, Parameter(query="from")]
DAILY_COLUMNS = ["day", "customers", "awards", "points_awarded", "coupons_redeemed",
                 "points_redeemed"]
MISSION_COLUMNS = ["mission_id", "mission_code", "completions", "points"]
SETTLEMENT_COLUMNS = ["day", "merchant_id", "merchant_name", "funder_id", "funder_code",
                      "points", "redemptions"]
NETTING_COLUMNS = ["funder_id", "merchant_id", "points", "self_funded", "owed_points"]


def _merchant_out(r: asyncpg.Record) -> MerchantOut:
    return MerchantOut(**dict(r))


def _file(body: bytes, media: str, name: str) -> Response[bytes]:
    return Response(content=body, media_type=media,
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


def _monthly(days: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Roll daily rows up to months; customers are summed per day (visits, not people)."""
    months: dict[str, dict[str, Any]] = {}
    for d in days:
        key = d["day"].strftime("%Y-%m")
        m = months.setdefault(key, {"month": key, **dict.fromkeys(DAILY_COLUMNS[1:], 0)})
        for c in DAILY_COLUMNS[1:]:
            m[c] += d[c]
    return list(months.values())


class AdminMerchantsController(Controller):
    path = "/admin/merchants"
    dependencies = {"admin": Provide(provide_admin)}
    tags = ["admin"]

    @post("/", status_code=201, opt={"policy": "org"})
    async def create(self, request: Request[Any, Any, Any], admin: Principal,
                     data: MerchantIn) -> MerchantOut:
        """A merchant belongs to its funder's organisation: an admin funds its own."""
        pool = request.app.state.pool
        if not await repo.funder_exists(pool, data.funder_id):
            raise known("funder_not_found", 422)
        await policy.require(pool, admin, "funder", data.funder_id)
        mid = await repo.create_merchant(
            pool, name=data.name, district_code=data.district_code, lat=data.lat, lon=data.lon,
            category=data.category, thb_per_point=data.thb_per_point,
            min_spend_thb=data.min_spend_thb, funder_id=data.funder_id,
            daily_award_cap_points=data.daily_award_cap_points,
            offline_daily_cap_points=data.offline_daily_cap_points)
        row = await repo.get_merchant(pool, mid)
        assert row is not None
        return _merchant_out(row)

    @get("/", opt={"policy": "org"})
    async def list(self, request: Request[Any, Any, Any], admin: Principal,
                   limit: QueryLimit = None, cursor: QueryCursor = None) -> MerchantList:
        n = page_limit(request.app.state.settings, limit)
        rows = await repo.list_merchants(request.app.state.pool, parse_cursor(cursor), n,
                                         policy.org_scope(admin))
        items = [_merchant_out(r) for r in rows]
        return MerchantList(items=items,
                            next_cursor=next_cursor(items, n, lambda i: i.id))

    @get("/{merchant_id:int}", opt={"policy": "org"})
    async def get(self, request: Request[Any, Any, Any], admin: Principal,
                  merchant_id: PathId) -> MerchantOut:
        await policy.require(request.app.state.pool, admin, "merchant", merchant_id)
        row = await repo.get_merchant(request.app.state.pool, merchant_id)
        if row is None:
            raise known("merchant_not_found", 404)
        return _merchant_out(row)

    @post("/{merchant_id:int}/staff", status_code=201, opt={"policy": "org"})
    async def add_staff(self, request: Request[Any, Any, Any], admin: Principal,
                        merchant_id: PathId, data: StaffIn) -> StaffOut:
        pool = request.app.state.pool
        await policy.require(pool, admin, "merchant", merchant_id)
        sid = await members_repo.ensure_staff(pool, data.line_sub, "merchant", merchant_id, None)
        return StaffOut(id=sid, line_sub=data.line_sub, merchant_id=merchant_id)


class MerchantReportsController(Controller):
    """The shop's own reports: customers, points awarded, coupons redeemed, top missions."""

    path = "/merchant/reports"
    dependencies = {"staff": Provide(provide_merchant)}
    tags = ["merchant"]

    @get("/daily")
    async def daily(self, request: Request[Any, Any, Any], staff: Principal,
                    from_: FromQ = None, to: str | None = None,
                    fmt: FormatQ = "json") -> Response[Any]:
        first, last = model.day_range(from_, to,
                                      bangkok_day())
        return await self._report(request, staff, first, last, "daily", fmt)

    @get("/monthly")
    async def monthly(self, request: Request[Any, Any, Any], staff: Principal,
                      from_: FromQ = None, to: str | None = None,
                      fmt: FormatQ = "json") -> Response[Any]:
        first, last = model.month_range(from_, to,
                                        bangkok_day())
        return await self._report(request, staff, first, last, "monthly", fmt)

    async def _report(self, request: Request[Any, Any, Any], staff: Principal, first: dt.date,
                      last: dt.date, period: str, fmt: str) -> Response[Any]:
        assert staff.merchant_id is not None
        pool = request.app.state.pool
        rows = await repo.daily_report(pool, staff.merchant_id, first, last)
        top = await repo.top_missions(pool, staff.merchant_id, first, last)
        columns = DAILY_COLUMNS
        if period == "monthly":
            rows, columns = _monthly(rows), ["month", *DAILY_COLUMNS[1:]]
        name = f"kuekan-{period}-{staff.merchant_id}-{first}-{last}"
        if fmt == "xlsx":
            return _file(export.to_xlsx({period: (columns, rows),
                                        "top_missions": (MISSION_COLUMNS, top)}),
                         XLSX, f"{name}.xlsx")
        if fmt == "csv":
            return _file(export.to_csv(columns, rows), "text/csv", f"{name}.csv")
        return Response(content={"merchant_id": staff.merchant_id, "from": first, "to": last,
                                 "items": rows, "top_missions": top})


class AdminSettlementController(Controller):
    """Points redeemed per day by merchant x funder, the netting report, funder liability."""

    path = "/admin/settlement"
    dependencies = {"admin": Provide(provide_admin)}
    tags = ["admin"]

    @get("/daily", opt={"policy": "org"})
    async def daily(self, request: Request[Any, Any, Any], admin: Principal,
                    from_: FromQ = None, to: str | None = None,
                    fmt: FormatQ = "json") -> Response[Any]:
        first, last = model.day_range(from_, to,
                                      bangkok_day())
        rows = await repo.settlement(request.app.state.pool, first, last,
                                     policy.org_scope(admin))
        name = f"kuekan-settlement-{first}-{last}"
        if fmt == "xlsx":
            return _file(export.to_xlsx({"settlement": (SETTLEMENT_COLUMNS, rows)}), XLSX,
                         f"{name}.xlsx")
        if fmt == "csv":
            return _file(export.to_csv(SETTLEMENT_COLUMNS, rows), "text/csv", f"{name}.csv")
        return Response(content={"from": first, "to": last, "items": rows})

    @get("/netting", opt={"policy": "org"})
    async def netting(self, request: Request[Any, Any, Any], admin: Principal,
                      from_: FromQ = None, to: str | None = None,
                      fmt: FormatQ = "json") -> Response[Any]:
        pool = request.app.state.pool
        org = policy.org_scope(admin)
        first, last = model.day_range(from_, to,
                                      bangkok_day())
        gross: dict[tuple[int, int], dict[str, Any]] = {}
        for r in await repo.settlement(pool, first, last, org):
            g = gross.setdefault((r["funder_id"], r["merchant_id"]), {**r, "points": 0})
            g["points"] += r["points"]
        report = model.netting(list(gross.values()))
        liability = [{"funder_id": f["id"], "code": f["code"], "points": f["liability_points"]}
                     for f in await ledger_repo.list_funders(pool, org)]
        name = f"kuekan-netting-{first}-{last}"
        if fmt == "xlsx":
            return _file(export.to_xlsx({
                "netting": (NETTING_COLUMNS, report["pairs"]),
                "payable_by_funder": (["funder_id", "points"], report["payable_by_funder"]),
                "receivable": (["merchant_id", "points"], report["receivable_by_merchant"]),
                "liability": (["funder_id", "code", "points"], liability)}), XLSX,
                f"{name}.xlsx")
        if fmt == "csv":
            return _file(export.to_csv(NETTING_COLUMNS, report["pairs"]), "text/csv",
                         f"{name}.csv")
        return Response(content={"from": first, "to": last, **report,
                                 "liability_by_funder": liability})


ROUTES = [AdminMerchantsController, MerchantReportsController, AdminSettlementController]
