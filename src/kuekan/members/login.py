"""POST /auth/line (LINE Login / LIFF ID token → KueKan tokens) and POST /auth/refresh.

Signing in finds or creates the member, so the controller belongs to the members domain;
:mod:`kuekan.auth` keeps the tokens, LINE verification and guards every domain uses."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from litestar import Controller, Request, post

from kuekan.auth.line import LineVerifier
from kuekan.auth.tokens import Principal, TokenService, principal_from_claims
from kuekan.members import repository as members
from kuekan.members.schemas import MeOut


class LineLoginIn(msgspec.Struct, forbid_unknown_fields=True):
    id_token: Annotated[str, msgspec.Meta(min_length=10, max_length=8192)]
    nonce: Annotated[str, msgspec.Meta(max_length=255)] | None = None
    flow: Literal["liff", "web"] = "liff"


class RefreshIn(msgspec.Struct, forbid_unknown_fields=True):
    refresh_token: Annotated[str, msgspec.Meta(min_length=10, max_length=8192)]


class TokensOut(msgspec.Struct):
    access_token: str
    refresh_token: str
    expires_in: int
    token_type: str = "Bearer"  # noqa: S105 - the OAuth token type, not a secret
    member: MeOut | None = None


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
        tokens: TokenService = state.tokens
        principal = Principal(role="member", subject_id=member_id, line_sub=claims["sub"])
        return TokensOut(
            access_token=tokens.issue(principal), refresh_token=tokens.issue(principal, "refresh"),
            expires_in=state.settings.access_ttl_s,
            member=MeOut(id=row["id"], line_sub=row["line_sub"], display_name=row["display_name"],
                         tier=row["tier"], status=row["status"], segment=row["segment"]))

    @post("/refresh", status_code=200)
    async def refresh(self, request: Request[Any, Any, Any], data: RefreshIn) -> TokensOut:
        tokens: TokenService = request.app.state.tokens
        principal = principal_from_claims(tokens.decode(data.refresh_token, "refresh"))
        return TokensOut(access_token=tokens.issue(principal),
                         refresh_token=tokens.issue(principal, "refresh"),
                         expires_in=request.app.state.settings.access_ttl_s)
