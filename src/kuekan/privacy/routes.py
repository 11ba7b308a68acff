"""Member PDPA routes: consents, export (JSON), erasure (pseudonymisation)."""

from __future__ import annotations

import hashlib
from typing import Any

import asyncpg
import msgspec
from asyncpg.pool import PoolConnectionProxy
from litestar import Controller, Request, get, post
from litestar.di import Provide

from kuekan import audit
from kuekan.auth import repository as auth_repo
from kuekan.auth.guards import provide_member
from kuekan.auth.tokens import Principal
from kuekan.db.pool import map_db_error
from kuekan.errors import DomainError, known

Conn = asyncpg.Connection | PoolConnectionProxy

EXPORT_TRANSFERS_MAX = 100_000
EXPORT_ROWS_MAX = 100_000  # check-ins, coupons: far above any real member's count


def erasure_refused() -> DomainError:
    return DomainError("erasure_refused_on_hold", 403,
                       "Erasure is not possible while the account is on hold or banned",
                       "ไม่สามารถลบข้อมูลได้ขณะที่บัญชีถูกระงับหรือถูกแบน")


class ConsentIn(msgspec.Struct):
    purpose: str
    version: str
    granted: bool


class EraseIn(msgspec.Struct):
    confirm: bool


def pseudonym(salt: str, member_id: int) -> str:
    return "erased-" + hashlib.sha256(f"{salt}:{member_id}".encode()).hexdigest()[:24]


async def export(conn: Conn, member_id: int) -> dict[str, Any]:
    member = await conn.fetchrow(
        "select id, line_sub, display_name, tier, status, segment, district_code, created_at"
        " from members where id = $1", member_id)
    if member is None:
        raise known("member_not_found", 404)

    async def rows(sql: str) -> list[dict[str, Any]]:
        return [dict(r) for r in await conn.fetch(sql, member_id)]

    return {
        "member": dict(member),
        "pocket": next(iter(await rows("select posted as balance, reserved from"
                                       " member_balances where member_id = $1")), None),
        "transfers": [dict(r) for r in await conn.fetch(
            "select id, kind, amount, funder_id, ref, created_at from transfers"
            " where member_id = $1 order by id limit $2", member_id, EXPORT_TRANSFERS_MAX)],
        "consents": await rows("select purpose, version, granted, at from consents"
                               " where member_id = $1 order by id"),
        "notification_preferences": await rows("select line_opt_in, lang, phone,"
                                               " phone_verified_at from notify_prefs"
                                               " where member_id = $1"),
        "checkins_seen_by_fraud_checks": await rows(
            "select at, lat, lon, accuracy_m, device_id from fraud_checkins"
            " where member_id = $1 order by at"),
        "checkins": [dict(r) for r in await conn.fetch(
            "select id, mission_id, geofence_id, lat, lon, accuracy_m, distance_to_edge_m,"
            " decision, device_id, status, refusal_code, points, created_at from checkins"
            " where member_id = $1 order by id limit $2", member_id, EXPORT_ROWS_MAX)],
        "coupons": [dict(r) for r in await conn.fetch(
            "select c.id, c.code, c.reward_id, r.name_th as reward_name, c.points, c.status,"
            " c.expires_at, c.created_at, c.resolved_at, c.redeemed_merchant_id from coupons c"
            " join rewards r on r.id = c.reward_id where c.member_id = $1 order by c.id"
            " limit $2", member_id, EXPORT_ROWS_MAX)],
    }


class PrivacyController(Controller):
    path = "/me"
    dependencies = {"me": Provide(provide_member)}
    tags = ["member", "privacy"]

    @post("/consents", status_code=201)
    async def consent(self, request: Request[Any, Any, Any], me: Principal,
                      data: ConsentIn) -> dict[str, Any]:
        row = await request.app.state.pool.fetchrow(
            "insert into consents (member_id, purpose, version, granted) values ($1,$2,$3,$4)"
            " returning purpose, version, granted, at", me.subject_id, data.purpose,
            data.version, data.granted)
        return dict(row)

    @get("/consents")
    async def consents(self, request: Request[Any, Any, Any], me: Principal) -> dict[str, Any]:
        rows = await request.app.state.pool.fetch(
            "select distinct on (purpose) purpose, version, granted, at from consents"
            " where member_id = $1 order by purpose, id desc", me.subject_id)
        return {"items": [dict(r) for r in rows]}

    @get("/export")
    async def export(self, request: Request[Any, Any, Any], me: Principal) -> dict[str, Any]:
        async with request.app.state.pool.acquire() as conn:
            return await export(conn, me.subject_id)

    @post("/erasure", status_code=200)
    async def erase(self, request: Request[Any, Any, Any], me: Principal,
                    data: EraseIn) -> dict[str, Any]:
        """Pseudonymise every personal field (kk_erase_member: LINE id, name, phone,
        coordinates, device ids, outbox payloads, notification recipients, webhook user ids,
        fraud evidence); transfers, lots and balances stay untouched, so the ledger stays
        balanced and auditable under the pseudonym. Refused (403 erasure_refused_on_hold)
        while on hold or banned; the member's sessions end (refresh tokens revoked)."""
        if not data.confirm:
            raise DomainError("confirmation_required", 422, "Set confirm to true to erase",
                              "กรุณายืนยันการลบข้อมูล")
        alias = pseudonym(request.app.state.settings.privacy_pseudonym_salt, me.subject_id)
        async with request.app.state.pool.acquire() as conn, conn.transaction():
            await erase_member(conn, me.subject_id, alias)
            await auth_repo.revoke_subject(conn, "member", me.subject_id)
            await audit.record(conn, me.scope, "member.erasure", f"member:{me.subject_id}",
                               {"pseudonym": alias})
        return {"member_id": me.subject_id, "status": "erased", "pseudonym": alias}


async def erase_member(conn: Conn, member_id: int, alias: str) -> None:
    """Every personal value of the member, in one statement (sql/functions/kk_erase_member.sql)."""
    try:
        await conn.execute("select kk_erase_member($1, $2)", member_id, alias)
    except asyncpg.PostgresError as exc:
        mapped = map_db_error(exc)
        if mapped is None:
            raise
        if mapped.code == "erasure_refused_on_hold":
            raise erasure_refused() from None
        raise mapped from None
