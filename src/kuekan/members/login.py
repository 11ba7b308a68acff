"""Sign-in and sessions: POST /auth/line (members), /auth/staff/line (staff and admins, by
invitation), /auth/refresh (rotating), /auth/logout; admin invitations and staff disabling."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

import msgspec
from litestar import Controller, Request, get, post
from litestar.di import Provide
from litestar.params import Parameter

from kuekan import audit
from kuekan.auth import policy
from kuekan.auth import repository as repo
from kuekan.auth.guards import provide_admin
from kuekan.auth.line import LineVerifier
from kuekan.auth.staff import (
    Sessions,
    StaffGate,
    code_hash,
    invitation_invalid,
    member_banned,
    new_invitation_code,
    staff_disabled,
    staff_not_invited,
)
from kuekan.auth.tokens import Principal
from kuekan.errors import invalid, known
from kuekan.members import repository as members
from kuekan.members.schemas import MeOut
from kuekan.pagination import page_limit, parse_cursor

Id = Annotated[int, msgspec.Meta(ge=1, le=2**62)]
StaffId = Annotated[int, Parameter(ge=1, le=2**62)]
IdToken = Annotated[str, msgspec.Meta(min_length=10, max_length=8192)]
Nonce = Annotated[str, msgspec.Meta(max_length=255)]


class LineLoginIn(msgspec.Struct, forbid_unknown_fields=True):
    id_token: IdToken
    nonce: Nonce | None = None
    flow: Literal["liff", "web"] = "liff"


class StaffLineLoginIn(msgspec.Struct, forbid_unknown_fields=True):
    id_token: IdToken
    nonce: Nonce | None = None
    flow: Literal["liff", "web"] = "liff"
    # The first sign-in of a LINE account redeems the invitation an admin gave it.
    invitation_code: Annotated[str, msgspec.Meta(min_length=8, max_length=64)] | None = None


class RefreshIn(msgspec.Struct, forbid_unknown_fields=True):
    refresh_token: Annotated[str, msgspec.Meta(min_length=10, max_length=8192)]


class StaffOut(msgspec.Struct):
    id: int
    role: str
    merchant_id: int | None
    org: str | None
    status: str = "active"
    display_name: str = ""


class TokensOut(msgspec.Struct, omit_defaults=True):
    access_token: str
    refresh_token: str
    expires_in: int
    token_type: str = "Bearer"  # noqa: S105 - the OAuth token type, not a secret
    member: MeOut | None = None
    staff: StaffOut | None = None


class InvitationIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    role: Literal["merchant", "admin"]
    merchant_id: Id | None = None
    org: Annotated[str, msgspec.Meta(min_length=1, max_length=64)] | None = None
    ttl_h: Annotated[int, msgspec.Meta(ge=1, le=24 * 30)] | None = None


class InvitationOut(msgspec.Struct):
    id: int
    code: str
    role: str
    merchant_id: int | None
    org: str | None
    expires_at: dt.datetime


def _sessions(request: Request[Any, Any, Any]) -> Sessions:
    sessions: Sessions = request.app.state.sessions
    return sessions


class AuthController(Controller):
    path = "/auth"
    tags = ["auth"]

    @post("/line", status_code=200)
    async def line_login(self, request: Request[Any, Any, Any], data: LineLoginIn) -> TokensOut:
        state = request.app.state
        verifier: LineVerifier = state.line_verifier
        claims = await verifier.verify(data.id_token, data.flow, data.nonce)
        pool = state.pool
        member_id = (await members.ensure_members(pool, [claims["sub"]]))[claims["sub"]]
        if claims.get("name"):
            await members.set_display_name(pool, member_id, str(claims["name"])[:200])
        row = await members.get_member(pool, member_id)
        assert row is not None
        if row["status"] == "banned":
            raise member_banned()
        principal = Principal(role="member", subject_id=member_id, line_sub=claims["sub"])
        async with pool.acquire() as conn:
            access, refresh, ttl = await _sessions(request).issue(conn, principal)
        return TokensOut(
            access_token=access, refresh_token=refresh, expires_in=ttl,
            member=MeOut(id=row["id"], line_sub=row["line_sub"], display_name=row["display_name"],
                         tier=row["tier"], status=row["status"], segment=row["segment"]))

    @post("/staff/line", status_code=200)
    async def staff_line_login(self, request: Request[Any, Any, Any],
                               data: StaffLineLoginIn) -> TokensOut:
        """Staff and admins sign in with LINE Login; the first time with an invitation code."""
        state = request.app.state
        verifier: LineVerifier = state.line_verifier
        claims = await verifier.verify(data.id_token, data.flow, data.nonce)
        sub, name = str(claims["sub"]), str(claims.get("name") or "")[:200]
        async with state.pool.acquire() as conn, conn.transaction():
            if data.invitation_code is not None:
                inv = await repo.redeem_invitation(conn, code_hash(data.invitation_code))
                if inv is None:
                    raise invitation_invalid()
                linked = await repo.link_staff(conn, sub, inv["role"], inv["merchant_id"],
                                               inv["org"], name)
                if linked is None:
                    raise staff_disabled()
                await repo.mark_invitation_staff(conn, inv["id"], linked["id"])
                await audit.record(conn, f"s:{linked['id']}", "staff.invitation_redeemed",
                                   f"invitation:{inv['id']}", {"role": inv["role"]})
            row = await repo.staff_by_line_sub(conn, sub)
            if row is None:
                raise staff_not_invited()
            if row["status"] != "active":
                raise staff_disabled()
            principal = Principal(row["role"], row["id"], sub, merchant_id=row["merchant_id"],
                                  org=row["org"], version=row["token_version"])
            access, refresh, ttl = await _sessions(request).issue(conn, principal)
        state.staff_gate.forget(row["id"])
        return TokensOut(access_token=access, refresh_token=refresh, expires_in=ttl,
                         staff=StaffOut(id=row["id"], role=row["role"],
                                        merchant_id=row["merchant_id"], org=row["org"],
                                        display_name=row["display_name"]))

    @post("/refresh", status_code=200)
    async def refresh(self, request: Request[Any, Any, Any], data: RefreshIn) -> TokensOut:
        """Rotate: the refresh token is used up; using it again revokes its whole family."""
        _, access, refresh, ttl = await _sessions(request).refresh(data.refresh_token)
        return TokensOut(access_token=access, refresh_token=refresh, expires_in=ttl)

    @post("/logout", status_code=200)
    async def logout(self, request: Request[Any, Any, Any], data: RefreshIn) -> dict[str, Any]:
        return {"revoked": await _sessions(request).revoke(data.refresh_token)}


def _staff_out(row: Any) -> StaffOut:
    return StaffOut(id=row["id"], role=row["role"], merchant_id=row["merchant_id"],
                    org=row["org"], status=row["status"], display_name=row["display_name"])


class StaffAdminController(Controller):
    """Invitations and disabling, each admin within its own organisation (the PAO: all)."""

    path = "/admin"
    dependencies = {"admin": Provide(provide_admin)}
    tags = ["admin", "auth"]

    @post("/invitations", status_code=201, opt={"policy": "org"})
    async def invite(self, request: Request[Any, Any, Any], admin: Principal,
                     data: InvitationIn) -> InvitationOut:
        state = request.app.state
        pool = state.pool
        if data.role == "merchant":
            if data.merchant_id is None or data.org is not None:
                raise invalid("a merchant invitation names merchant_id (and no org)",
                              "คำเชิญพนักงานร้านต้องระบุ merchant_id")
            await policy.require(pool, admin, "merchant", data.merchant_id)
        else:
            org = data.org or admin.org
            if data.merchant_id is not None or org is None:
                raise invalid("an admin invitation names org (and no merchant_id)",
                              "คำเชิญผู้ดูแลต้องระบุหน่วยงาน")
            if not await repo.org_exists(pool, org):
                raise known("org_not_found")
            if not policy.may_act_for(admin, org):
                raise policy.forbidden_scope()
            data = msgspec.structs.replace(data, org=org)
        code = new_invitation_code()
        ttl_h = data.ttl_h or state.settings.staff_invitation_ttl_h
        expires = dt.datetime.now(dt.UTC) + dt.timedelta(hours=ttl_h)
        async with pool.acquire() as conn, conn.transaction():
            row = await repo.create_invitation(conn, code_hash(code), data.role, data.merchant_id,
                                               data.org, admin.scope, expires)
            await audit.record(conn, admin.scope, "staff.invite", f"invitation:{row['id']}",
                               {"role": data.role, "merchant_id": data.merchant_id,
                                "org": data.org})
        # The code is shown once; only its SHA-256 is stored.
        return InvitationOut(id=row["id"], code=code, role=row["role"],
                             merchant_id=row["merchant_id"], org=row["org"],
                             expires_at=row["expires_at"])

    @get("/staff", opt={"policy": "org"})
    async def list_staff(self, request: Request[Any, Any, Any], admin: Principal,
                         limit: int | None = None, cursor: str | None = None) -> dict[str, Any]:
        n = page_limit(request.app.state.settings, limit)
        rows = await repo.list_staff(request.app.state.pool, policy.org_scope(admin),
                                     parse_cursor(cursor), n)
        items = [_staff_out(r) for r in rows]
        return {"items": items, "next_cursor": str(items[-1].id) if len(items) == n else None}

    @post("/staff/{staff_id:int}/disable", status_code=200, opt={"policy": "org"})
    async def disable(self, request: Request[Any, Any, Any], admin: Principal,
                      staff_id: StaffId) -> StaffOut:
        """Refused within seconds on every process; refresh tokens revoked at once."""
        return await self._set(request, admin, staff_id, active=False)

    @post("/staff/{staff_id:int}/enable", status_code=200, opt={"policy": "org"})
    async def enable(self, request: Request[Any, Any, Any], admin: Principal,
                     staff_id: StaffId) -> StaffOut:
        """Active again; tokens issued before the disabling stay invalid (sign in again)."""
        return await self._set(request, admin, staff_id, active=True)

    async def _set(self, request: Request[Any, Any, Any], admin: Principal, staff_id: int,
                   *, active: bool) -> StaffOut:
        pool = request.app.state.pool
        await policy.require(pool, admin, "staff", staff_id)
        async with pool.acquire() as conn, conn.transaction():
            await repo.set_staff_status(conn, staff_id, active, admin.scope)
            if not active:
                await repo.revoke_subject(conn, "staff", staff_id)
            await audit.record(conn, admin.scope, "staff.enable" if active else "staff.disable",
                               f"staff:{staff_id}", {})
            row = await repo.staff_state(conn, staff_id)
        gate: StaffGate = request.app.state.staff_gate
        gate.forget(staff_id)
        assert row is not None
        return _staff_out(row)
