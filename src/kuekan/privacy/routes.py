"""Member PDPA routes: consents, export (JSON), erasure (pseudonymisation)."""

from __future__ import annotations

import hashlib
from typing import Annotated, Any

import asyncpg
import msgspec
from asyncpg.pool import PoolConnectionProxy
from litestar import Controller, Request, get, post
from litestar.di import Provide

from kuekan import audit
from kuekan.auth.guards import provide_member
from kuekan.auth.tokens import Principal
from kuekan.errors import DomainError, known

Conn = asyncpg.Connection | PoolConnectionProxy

EXPORT_TRANSFERS_MAX = 100_000


class ConsentIn(msgspec.Struct):
    purpose: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    version: Annotated[str, msgspec.Meta(min_length=1, max_length=32)]
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
        """Pseudonymise personal fields; transfers, lots and balances stay untouched, so the
        ledger stays balanced and auditable under the pseudonym."""
        if not data.confirm:
            raise DomainError("confirmation_required", 422, "Set confirm to true to erase",
                              "กรุณายืนยันการลบข้อมูล")
        alias = pseudonym(request.app.state.settings.privacy_pseudonym_salt, me.subject_id)
        async with request.app.state.pool.acquire() as conn, conn.transaction():
            await erase_member(conn, me.subject_id, alias)
            await audit.record(conn, me.scope, "member.erasure", f"member:{me.subject_id}",
                               {"pseudonym": alias})
        return {"member_id": me.subject_id, "status": "erased", "pseudonym": alias}


async def erase_member(conn: Conn, member_id: int, alias: str) -> None:
    await conn.execute(
        "update members set line_sub = $2, display_name = '', district_code = null,"
        " hold_reason = null, status = 'erased' where id = $1", member_id, alias)
    await conn.execute("update notify_prefs set phone = null, phone_verified_at = null,"
                       " line_opt_in = false where member_id = $1", member_id)
    await conn.execute("update otp_challenges set phone = '' where member_id = $1", member_id)
    await conn.execute("update fraud_checkins set lat = null, lon = null, device_id = null"
                       " where member_id = $1", member_id)
    await conn.execute("insert into erasures (member_id, pseudonym) values ($1, $2)"
                       " on conflict do nothing", member_id, alias)
