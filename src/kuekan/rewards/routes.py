"""Rewards routes: catalogue, redemptions and coupons (members), scans (merchants), admin CRUD."""

from __future__ import annotations

import datetime as dt
import io
from typing import Annotated, Any, Literal

import asyncpg
import segno
from litestar import Controller, Request, Response, delete, get, patch, post
from litestar.di import Provide
from litestar.params import Parameter

from kuekan import metrics
from kuekan.auth import policy
from kuekan.auth import repository as auth_repo
from kuekan.auth.guards import provide_admin, provide_member, provide_merchant
from kuekan.auth.tokens import Principal
from kuekan.errors import known
from kuekan.kit.bounds import PathId, QueryCursor, QueryId, QueryLimit
from kuekan.kit.ttlcache import TtlCache
from kuekan.pagination import next_cursor, page_limit, parse_cursor
from kuekan.rewards import model
from kuekan.rewards import repository as repo
from kuekan.rewards.schemas import (
    BatchIn,
    BatchOut,
    CouponList,
    CouponOut,
    MemberQrOut,
    MerchantPin,
    RedeemIn,
    RewardIn,
    RewardList,
    RewardOut,
    RewardPatch,
    ScanIn,
)
from kuekan.rewards.service import RewardsService
from kuekan.web import idempotency_key, outcome_response

QrFormat = Annotated[Literal["svg", "png"], Parameter(query="format")]


def rewards_service(request: Request[Any, Any, Any]) -> RewardsService:
    """One service per process, made on first use from the app's ledger and token service."""
    state = request.app.state
    svc: RewardsService | None = getattr(state, "rewards_service", None)
    if svc is None:
        svc = RewardsService(state.ledger, state.tokens, state.settings, model.load_config())
        state.rewards_service = svc
    return svc


def _reward_out(row: asyncpg.Record) -> RewardOut:
    pins = [MerchantPin(**m) for m in row["merchants"]]
    return RewardOut(
        id=row["id"], name=row["name_th"], name_en=row["name_en"], category=row["category"],
        cost_points=row["cost_points"], stock=row["stock"],
        per_member_limit=row["per_member_limit"], coupon_valid_days=row["coupon_valid_days"],
        min_tier=row["min_tier"], funder_id=row["funder_id"], status=row["status"],
        merchant_ids=[p.id for p in pins], merchants=pins)


async def _list(request: Request[Any, Any, Any], *, active_only: bool, merchant_id: int | None,
                limit: int | None, cursor: str | None, org: str | None = None) -> RewardList:
    n = page_limit(request.app.state.settings, limit)
    rows = await repo.list_rewards(request.app.state.pool, active_only=active_only,
                                   merchant_id=merchant_id, after_id=parse_cursor(cursor), limit=n,
                                   org=org)
    items = [_reward_out(r) for r in rows]
    return RewardList(items=items, next_cursor=next_cursor(items, n, lambda i: i.id))


CATALOGUE_TTL_S = 5.0
CATALOGUE_CACHE: TtlCache[RewardList] = TtlCache(CATALOGUE_TTL_S, max_items=256)


class RewardsMemberController(Controller):
    """The member's side: browse, redeem, show coupons and the member QR."""

    path = "/"
    dependencies = {"me": Provide(provide_member)}
    tags = ["member"]

    @get("/rewards")
    async def catalogue(self, request: Request[Any, Any, Any], me: Principal,
                        merchant_id: QueryId = None, limit: QueryLimit = None,
                        cursor: QueryCursor = None) -> RewardList:
        """Active rewards, each with the partner merchants (lat/lon) where it can be used.

        The catalogue is the same for every member, so each process keeps a page for
        ``CATALOGUE_TTL_S``: at an event thousands browse at once. Stock shown may lag by that
        much; a redemption always checks the real stock."""
        key = (merchant_id, limit, cursor)
        page = CATALOGUE_CACHE.get(key)
        if page is None:
            page = await _list(request, active_only=True, merchant_id=merchant_id, limit=limit,
                               cursor=cursor)
            CATALOGUE_CACHE.put(key, page)
        return page

    @post("/redemptions", status_code=201)
    async def redeem(self, request: Request[Any, Any, Any], me: Principal,
                     data: RedeemIn) -> Response[Any]:
        key = idempotency_key(request)
        outcome = await rewards_service(request).redeem(me, key, data)
        if outcome.status == 201 and not outcome.replayed:
            metrics.REDEMPTIONS.labels("reserved").inc()
        return outcome_response(outcome)

    @get("/me/qr")
    async def member_qr(self, request: Request[Any, Any, Any], me: Principal) -> MemberQrOut:
        """A short-lived signed token for the merchant to scan: signed, so the member id it
        names cannot be changed, and without the LINE user id (its payload is readable by
        every merchant that scans it, and a LINE id identifies the person beyond KueKan)."""
        state = request.app.state
        now = dt.datetime.now(dt.UTC)
        token = state.tokens.issue(Principal("member", me.subject_id),
                                   typ="member_qr", now=now.timestamp())
        return MemberQrOut(token=token,
                           expires_at=now + dt.timedelta(seconds=state.settings.member_qr_ttl_s))

    @get("/me/coupons")
    async def coupons(self, request: Request[Any, Any, Any], me: Principal,
                      limit: QueryLimit = None, cursor: QueryCursor = None) -> CouponList:
        svc = rewards_service(request)
        n = page_limit(request.app.state.settings, limit)
        rows = await repo.member_coupons(svc.pool, me.subject_id, parse_cursor(cursor), n)
        items = [CouponOut(id=r["id"], code=r["code"],
                           coupon_qr=svc.coupon_qr(r["code"], r["expires_at"]),
                           reward_id=r["reward_id"], reward_name=r["reward_name"],
                           points=r["points"], status=r["status"], expires_at=r["expires_at"],
                           created_at=r["created_at"],
                           redeemed_merchant_id=r["redeemed_merchant_id"],
                           merchant_ids=list(r["merchant_ids"])) for r in rows]
        return CouponList(items=items, next_cursor=next_cursor(items, n, lambda i: i.id))

    @get("/me/coupons/{coupon_id:int}/qr")
    async def coupon_qr_image(self, request: Request[Any, Any, Any], me: Principal,
                              coupon_id: PathId,
                              fmt: QrFormat = "svg") -> Response[bytes]:
        svc = rewards_service(request)
        row = await repo.member_coupon(svc.pool, me.subject_id, coupon_id)
        if row is None:
            raise known("coupon_not_found")
        qr = segno.make(svc.coupon_qr(row["code"], row["expires_at"]), error="m")
        buf = io.BytesIO()
        qr.save(buf, kind=fmt, scale=8, border=2)
        media = "image/svg+xml" if fmt == "svg" else "image/png"
        return Response(content=buf.getvalue(), media_type=media)


class MerchantScanController(Controller):
    """The merchant app's one QR scan: award by purchase or redeem a coupon; offline batches."""

    path = "/merchant/scans"
    dependencies = {"staff": Provide(provide_merchant)}
    tags = ["merchant"]

    @post("/", status_code=201)
    async def scan(self, request: Request[Any, Any, Any], staff: Principal,
                   data: ScanIn) -> Response[Any]:
        key = idempotency_key(request)
        outcome = await rewards_service(request).scan(staff, key, data)
        fresh = outcome.status == 201 and not outcome.replayed
        if fresh and outcome.body.get("action") == "redeem":
            metrics.REDEMPTIONS.labels("posted").inc()
        return outcome_response(outcome)

    @post("/batch", status_code=200)
    async def batch(self, request: Request[Any, Any, Any], staff: Principal,
                    data: BatchIn) -> BatchOut:
        """Per-item results; each item has its own key, so replaying the batch changes nothing."""
        return BatchOut(items=await rewards_service(request).batch(staff, data))


class AdminRewardsController(Controller):
    """Reward catalogue CRUD for admins."""

    path = "/admin/rewards"
    dependencies = {"admin": Provide(provide_admin)}
    tags = ["admin"]

    @staticmethod
    async def after_request(response: Response[Any]) -> Response[Any]:
        # An admin change shows in this process's member catalogue at once (others: TTL).
        CATALOGUE_CACHE.clear()
        return response

    @post("/", status_code=201, opt={"policy": "org"})
    async def create(self, request: Request[Any, Any, Any], admin: Principal,
                     data: RewardIn) -> RewardOut:
        """A reward belongs to its funder's organisation (without a funder: the PAO's) and is
        offered at that organisation's merchants."""
        pool = request.app.state.pool
        ids = sorted(set(data.merchant_ids))
        if await repo.known_merchants(pool, ids) != set(ids):
            raise known("unknown_merchants")
        if data.funder_id is not None:
            await policy.require(pool, admin, "funder", data.funder_id)
        await _own_merchants(pool, admin, ids, funded=data.funder_id is not None)
        if data.min_tier is not None and not await repo.known_tier(pool, data.min_tier):
            raise known("unknown_tier")
        async with pool.acquire() as conn:
            try:
                rid = await repo.create_reward(
                    conn, name_th=data.name, name_en=data.name_en or data.name,
                    category=data.category, cost_points=data.cost_points, stock=data.stock,
                    per_member_limit=data.per_member_limit,
                    coupon_valid_days=data.coupon_valid_days, min_tier=data.min_tier,
                    funder_id=data.funder_id, merchant_ids=ids)
            except asyncpg.ForeignKeyViolationError:
                raise known("funder_not_found", 422) from None
            row = await repo.get_reward(conn, rid)
        assert row is not None
        return _reward_out(row)

    @get("/", opt={"policy": "org"})
    async def list(self, request: Request[Any, Any, Any], admin: Principal,
                   merchant_id: QueryId = None, limit: QueryLimit = None,
                   cursor: QueryCursor = None) -> RewardList:
        return await _list(request, active_only=False, merchant_id=merchant_id, limit=limit,
                           cursor=cursor, org=policy.org_scope(admin))

    @get("/{reward_id:int}", opt={"policy": "org"})
    async def get(self, request: Request[Any, Any, Any], admin: Principal,
                  reward_id: PathId) -> RewardOut:
        await policy.require(request.app.state.pool, admin, "reward", reward_id)
        row = await repo.get_reward(request.app.state.pool, reward_id)
        if row is None:
            raise known("reward_not_found")
        return _reward_out(row)

    @patch("/{reward_id:int}", opt={"policy": "org"})
    async def update(self, request: Request[Any, Any, Any], admin: Principal, reward_id: PathId,
                     data: RewardPatch) -> RewardOut:
        pool = request.app.state.pool
        await policy.require(pool, admin, "reward", reward_id)
        if data.merchant_ids is not None:
            await _own_merchants(pool, admin, sorted(set(data.merchant_ids)), funded=True)
        fields: dict[str, Any] = {"name_th": data.name, "name_en": data.name_en,
                                  "per_member_limit": data.per_member_limit,
                                  "coupon_valid_days": data.coupon_valid_days,
                                  "status": data.status}
        fields = {k: v for k, v in fields.items() if v is not None}
        if data.merchant_ids is not None:
            ids = sorted(set(data.merchant_ids))
            if await repo.known_merchants(pool, ids) != set(ids):
                raise known("unknown_merchants")
        async with pool.acquire() as conn, conn.transaction():
            try:
                found = await repo.update_reward(conn, reward_id, fields, data.stock_delta)
            except asyncpg.CheckViolationError:
                raise known("stock_negative") from None
            if not found:
                raise known("reward_not_found")
            if data.merchant_ids is not None:
                await repo.set_reward_merchants(conn, reward_id, sorted(set(data.merchant_ids)))
            row = await repo.get_reward(conn, reward_id)
        assert row is not None
        return _reward_out(row)

    @delete("/{reward_id:int}", status_code=200, opt={"policy": "org"})
    async def retire(self, request: Request[Any, Any, Any], admin: Principal,
                     reward_id: PathId) -> RewardOut:
        """Retire (never delete: coupons refer to it); issued coupons stay valid."""
        pool = request.app.state.pool
        await policy.require(pool, admin, "reward", reward_id)
        async with pool.acquire() as conn:
            if not await repo.update_reward(conn, reward_id, {"status": "retired"}, None):
                raise known("reward_not_found")
            row = await repo.get_reward(conn, reward_id)
        assert row is not None
        return _reward_out(row)


async def _own_merchants(pool: Any, admin: Principal, ids: list[int], *, funded: bool) -> None:
    """Outside the PAO, a reward has a funder of the admin's and only its merchants."""
    org = policy.org_scope(admin)
    if org is None:
        return
    if not funded or await auth_repo.merchants_outside_org(pool, ids, org):
        raise policy.forbidden_scope()


ROUTES = [RewardsMemberController, MerchantScanController, AdminRewardsController]
