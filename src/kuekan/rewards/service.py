"""Rewards use-cases: redeem a reward, scan a member QR (purchase or coupon), offline batches.

Every effect runs through :class:`kuekan.ledger.service.Ledger`, so the idempotency record is
written in the same transaction as the effect; services never commit on their own.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

import asyncpg

from kuekan.auth.tokens import Principal, TokenService
from kuekan.errors import DomainError, known
from kuekan.idempotency import Outcome, request_hash
from kuekan.kit.clock import bangkok_day, utcnow
from kuekan.kit.ttlcache import TtlCache
from kuekan.ledger import repository as ledger_repo
from kuekan.ledger.service import Ledger
from kuekan.logging import get_logger
from kuekan.rewards import model
from kuekan.rewards import repository as repo
from kuekan.rewards.schemas import BatchIn, BatchItemOut, RedeemIn, ScanIn
from kuekan.settings import Settings

log = get_logger(__name__)


def merchant_scope(merchant_id: int) -> str:
    """Scans are keyed per shop, not per staff member: a batch queued on the shared counter
    device and uploaded by another staff member is still the same batch."""
    return f"shop:{merchant_id}"


class MemberToken:
    """The verified claims of a member QR token that matter to a scan."""

    __slots__ = ("exp", "iat", "jti", "member_id")

    def __init__(self, member_id: int, jti: str | None, iat: int, exp: int) -> None:
        self.member_id = member_id
        self.jti = jti
        self.iat = iat
        self.exp = exp


class RewardsService:
    """Redemptions and merchant scans, idempotent per (caller, key)."""

    def __init__(self, ledger: Ledger, tokens: TokenService, settings: Settings,
                 config: model.RewardsConfig) -> None:
        self.ledger = ledger
        self.pool = ledger.pool
        self.tokens = tokens
        self.settings = settings
        self.config = config
        self._merchants: TtlCache[asyncpg.Record] = TtlCache(config.merchant_cache_s)

    # Coupons ------------------------------------------------------------------------------
    def coupon_qr(self, code: str, expires_at: dt.datetime) -> str:
        kid = self.settings.jwt_active_kid
        return model.sign_coupon(code, expires_at, kid, self.settings.jwt_keys[kid])

    def coupon_code(self, text: str) -> str:
        """The code behind what the merchant app sent: a scanned QR payload or a typed code."""
        if text.startswith(model.COUPON_QR_PREFIX + "."):
            code = model.verify_coupon(text, self.settings.jwt_keys)
            if code is None:
                raise known("coupon_qr_invalid")
            return code
        return model.normalize_code(text)

    async def redeem(self, member: Principal, key: str, data: RedeemIn) -> Outcome:
        """Reserve the reward's cost and issue a coupon (phase one of two)."""
        scope = member.scope

        async def op(conn: asyncpg.Connection) -> tuple[int, Any]:
            res = await repo.redeem_reward(conn, member.subject_id, data.reward_id,
                                           model.code_candidates(), {"idem": f"{scope}:{key}"})
            expires_at = dt.datetime.fromisoformat(res["expires_at"])
            res["coupon_qr"] = self.coupon_qr(res["coupon_code"], expires_at)
            return 201, res

        return await self.ledger.run(scope=scope, key=key, req_hash=request_hash(data), op=op)

    # Scans --------------------------------------------------------------------------------
    def member_token(self, token: str, at: dt.datetime | None) -> MemberToken:
        """Verify a member QR token at ``at`` (offline scans) or now."""
        when = at.timestamp() if at is not None else time.time()
        try:
            claims = self.tokens.decode(token, "member_qr", now=when)
        except DomainError:
            try:  # a genuine token that was valid once is "expired", anything else "invalid"
                self.tokens.decode(token, "member_qr", now=0.0)
            except DomainError:
                raise known("member_token_invalid") from None
            raise known("member_token_expired") from None
        if claims.get("role") != "member" or not claims.get("jti"):
            raise known("member_token_invalid")
        try:
            verified = MemberToken(int(claims["sub"]), str(claims["jti"]), int(claims["iat"]),
                                   int(claims["exp"]))
        except (KeyError, ValueError, TypeError):
            raise known("member_token_invalid") from None
        # A scan may not predate the token (backdated offline items): the database checks
        # the same bound again (kk_qr_claim), this only refuses early.
        if when < verified.iat - self.config.offline_future_skew_s:
            raise known("scan_time_before_token")
        return verified

    async def _merchant(self, merchant_id: int) -> asyncpg.Record:
        """The earn rule, cached briefly per process (admins rarely change it)."""
        hit = self._merchants.get(merchant_id)
        if hit is not None:
            return hit
        row = await repo.merchant_earn_rule(self.pool, merchant_id)
        if row is None:
            raise known("merchant_not_found")
        if row["status"] != "active":
            raise known("merchant_suspended")
        self._merchants.put(merchant_id, row)
        return row

    async def scan(self, staff: Principal, key: str, data: ScanIn,
                   scanned_at: dt.datetime | None = None) -> Outcome:
        """One merchant scan: award by purchase or redeem a coupon, exactly once per key."""
        assert staff.merchant_id is not None
        scope = merchant_scope(staff.merchant_id)
        req_hash = request_hash(data if scanned_at is None else [data, scanned_at])
        try:
            return await self._scan(staff, staff.merchant_id, scope, key, req_hash, data,
                                    scanned_at)
        except DomainError as exc:
            # A retry of a scan that already went through must get its answer back even when
            # the member's 60 s token has expired since: look for the durable record.
            if exc.code.startswith("idempotency_"):
                raise
            stored = await ledger_repo.stored_idem(self.pool, scope, key)
            if stored is None or stored["status"] == 0 or stored["hash"] != req_hash:
                raise
            return Outcome(stored["status"], stored["body"], replayed=True)

    async def _scan(self, staff: Principal, merchant_id: int, scope: str, key: str,
                    req_hash: str, data: ScanIn, scanned_at: dt.datetime | None) -> Outcome:
        if (data.purchase_thb is None) == (data.coupon_code is None):
            raise known("scan_needs_one_action")
        if scanned_at is not None:
            why = model.offline_refusal(scanned_at, utcnow(), self.config.offline_window_h,
                                        self.config.offline_future_skew_s)
            if why is not None:
                raise known(why)
        token = self.member_token(data.member_token, scanned_at)
        ref: dict[str, Any] = {"idem": f"{scope}:{key}", "merchant_id": merchant_id,
                               "staff_id": staff.subject_id,
                               # The token's validity, checked by PostgreSQL (kk_qr_claim).
                               "qr": {"iat": token.iat, "exp": token.exp,
                                      "skew_s": self.config.offline_future_skew_s}}
        if scanned_at is not None:
            ref["scanned_at"] = scanned_at.isoformat()
        if data.coupon_code is not None:
            code = self.coupon_code(data.coupon_code)

            async def redeem(conn: asyncpg.Connection) -> tuple[int, Any]:
                return 201, await repo.scan_coupon(conn, code, token.member_id, merchant_id,
                                                   token.jti, ref, self.settings.budget_slices)

            return await self.ledger.run(scope=scope, key=key, req_hash=req_hash, op=redeem)
        assert data.purchase_thb is not None
        return await self._purchase(staff, merchant_id, scope, key, req_hash, token,
                                    data.purchase_thb, scanned_at, ref)

    async def _purchase(self, staff: Principal, merchant_id: int, scope: str, key: str,
                        req_hash: str, token: MemberToken, purchase_thb: Any,
                        scanned_at: dt.datetime | None, ref: dict[str, Any]) -> Outcome:
        ctx = await repo.scan_context(self.pool, token.member_id, staff.subject_id)
        if ctx is None:
            raise known("member_token_invalid")
        if ctx["is_self"]:
            raise known("self_award_forbidden")
        merchant = await self._merchant(merchant_id)
        points = model.purchase_points(purchase_thb, merchant["thb_per_point"],
                                       merchant["min_spend_thb"], ctx["multiplier"])
        if points <= 0:
            raise known("purchase_below_minimum")
        day = bangkok_day(scanned_at)
        ref |= {"purchase_thb": str(purchase_thb), "tier": ctx["tier"],
                "multiplier": str(ctx["multiplier"])}
        limits = [self.ledger.member_day_limit(token.member_id, day),
                  *self.ledger.merchant_day_limit(merchant_id, day,
                                                  merchant["daily_award_cap_points"])]

        # One round trip: the key, the award, purchase missions and the stored response.
        return await self.ledger.one_call(
            scope=scope, key=key, req_hash=req_hash, amount=points, limits=limits,
            call=lambda: repo.purchase_scan_idem(
                self.pool, scope=scope, key=key, req_hash=req_hash, member_id=token.member_id,
                merchant_id=merchant_id, jti=token.jti, points=points, day=day,
                member_cap=self.settings.member_daily_cap_points, ref=ref,
                slices=self.settings.budget_slices, category=merchant["category"],
                amount_thb=purchase_thb))

    async def batch(self, staff: Principal, data: BatchIn) -> list[BatchItemOut]:
        """Offline scans, in order; each item is its own idempotent scan at its scanned_at."""
        out: list[BatchItemOut] = []
        for item in data.items[: self.config.batch_items_max]:
            scan = ScanIn(member_token=item.member_token, purchase_thb=item.purchase_thb,
                          coupon_code=item.coupon_code)
            try:
                res = await self.scan(staff, item.idempotency_key, scan, item.scanned_at)
            except DomainError as exc:
                out.append(BatchItemOut(item.idempotency_key, exc.status,
                                        problem=exc.to_problem()))
                continue
            if res.status >= 400:
                out.append(BatchItemOut(item.idempotency_key, res.status, problem=res.body,
                                        replayed=res.replayed))
            else:
                out.append(BatchItemOut(item.idempotency_key, res.status, result=res.body,
                                        replayed=res.replayed))
        log.info("offline_batch", merchant_id=staff.merchant_id, items=len(out),
                 accepted=sum(1 for o in out if o.status < 400))
        return out
