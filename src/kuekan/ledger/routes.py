"""Admin ledger routes: funders, manual awards and adjustments, reversals."""

from __future__ import annotations

from typing import Any

import asyncpg
from litestar import Controller, Request, Response, get, post
from litestar.di import Provide

from kuekan.auth import policy
from kuekan.auth.guards import provide_admin
from kuekan.auth.tokens import Principal
from kuekan.errors import known
from kuekan.idempotency import request_hash
from kuekan.kit.bounds import PathId
from kuekan.ledger import repository as repo
from kuekan.ledger.schemas import AwardIn, FunderIn, FunderList, FunderOut, ReverseIn
from kuekan.ledger.service import Ledger
from kuekan.outbox.repository import emit
from kuekan.web import idempotency_key, outcome_response


def _funder_out(row: asyncpg.Record) -> FunderOut:
    return FunderOut(id=row["id"], code=row["code"], name=row["name"], org=row["org"],
                     budget_points=row["budget_points"],
                     budget_remaining_points=row["budget_remaining_points"],
                     liability_points=row["liability_points"])


class AdminLedgerController(Controller):
    path = "/admin"
    dependencies = {"admin": Provide(provide_admin)}
    tags = ["admin"]

    @post("/funders", status_code=201, opt={"policy": "org"})
    async def create_funder(self, request: Request[Any, Any, Any], admin: Principal,
                            data: FunderIn) -> FunderOut:
        state = request.app.state
        if data.org is not None and not policy.may_act_for(admin, data.org):
            raise policy.forbidden_scope()
        async with state.pool.acquire() as conn:
            try:
                row = await repo.create_funder(conn, data.code, data.name, data.org or admin.org,
                                               data.budget_points, state.settings.budget_slices)
            except asyncpg.UniqueViolationError:
                raise known("funder_code_taken") from None
            full = await repo.get_funder(conn, row["id"])
        assert full is not None
        return _funder_out(full)

    @get("/funders", opt={"policy": "org"})
    async def list_funders(self, request: Request[Any, Any, Any], admin: Principal) -> FunderList:
        rows = await repo.list_funders(request.app.state.pool, policy.org_scope(admin))
        return FunderList(items=[_funder_out(r) for r in rows])

    @get("/funders/{funder_id:int}", opt={"policy": "org"})
    async def get_funder(self, request: Request[Any, Any, Any], admin: Principal,
                         funder_id: PathId) -> FunderOut:
        await policy.require(request.app.state.pool, admin, "funder", funder_id)
        row = await repo.get_funder(request.app.state.pool, funder_id)
        if row is None:
            raise known("funder_not_found", 404)
        return _funder_out(row)

    @post("/awards", status_code=201, opt={"policy": "org"})
    async def award(self, request: Request[Any, Any, Any], admin: Principal,
                    data: AwardIn) -> Response[Any]:
        """Manual award (points > 0) or adjustment down (points < 0); not counted against the
        member's daily cap, and allowed while the member is on hold (an audited correction).

        An admin awards only from its own organisation's funders. Adjusting down takes from
        the member's pocket whoever funded it, so it is the PAO's; other organisations correct
        their own awards by reversing them."""
        key = idempotency_key(request)
        ledger: Ledger = request.app.state.ledger
        if data.points == 0:
            raise known("invalid_amount", en="points must not be zero",
                        th="จำนวนแต้มต้องไม่เป็นศูนย์")
        if data.points < 0 and policy.org_scope(admin) is not None:
            raise policy.forbidden_scope()
        await policy.require(ledger.pool, admin, "funder", data.funder_id)
        ref = {"reason": data.reason, "by": admin.scope, "org": admin.org}
        h = request_hash(data)
        if data.points > 0:
            budget_total = await repo.funder_budget(ledger.pool, data.funder_id)
            outcome = await ledger.award(
                scope=admin.scope, key=key, req_hash=h, member_id=data.member_id,
                funder_id=data.funder_id, points=data.points, kind="adjust",
                counts_toward_daily_cap=False, check_hold=False,
                budget_keys=[f"funder:{data.funder_id}"],
                limits=ledger.budget_limit(f"funder:{data.funder_id}", budget_total),
                ref=ref, outbox_topic="points.adjusted", extra={"funder_id": data.funder_id},
            )
            return outcome_response(outcome)

        async def adjust_down(conn: asyncpg.Connection) -> tuple[int, Any]:
            row = await repo.adjust_down(conn, data.member_id, -data.points,
                                         {**ref, "idem": f"{admin.scope}:{key}"},
                                         ledger.settings.budget_slices)
            body = {"transfer_id": row["transfer_id"], "balance": row["balance"],
                    "available": row["available"], "points": data.points,
                    "member_id": data.member_id}
            await emit(conn, "points.adjusted", body, data.member_id)
            return 201, body

        return outcome_response(await ledger.run(scope=admin.scope, key=key, req_hash=h,
                                                 op=adjust_down))

    @post("/transfers/{transfer_id:int}/reverse", status_code=201, opt={"policy": "org"})
    async def reverse(self, request: Request[Any, Any, Any], admin: Principal,
                      transfer_id: PathId, data: ReverseIn) -> Response[Any]:
        """Reverse a transfer funded by the admin's organisation (the PAO: any)."""
        key = idempotency_key(request)
        ledger: Ledger = request.app.state.ledger
        await policy.require(ledger.pool, admin, "transfer", transfer_id)

        async def op(conn: asyncpg.Connection) -> tuple[int, Any]:
            row = await repo.reverse(conn, transfer_id,
                                     {"reason": data.reason, "by": admin.scope,
                                      "idem": f"{admin.scope}:{key}"},
                                     ledger.settings.budget_slices)
            return 201, {"transfer_id": row["transfer_id"], "reverses": transfer_id,
                         "balance": row["balance"], "available": row["available"]}

        return outcome_response(await ledger.run(
            scope=admin.scope, key=key, req_hash=request_hash([transfer_id, data]), op=op))
