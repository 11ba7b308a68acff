"""Dependencies that authenticate the caller and check the role (each role only its routes)."""

from __future__ import annotations

from typing import Any

from litestar import Request

from kuekan.auth.tokens import Principal, TokenService, unauthorized
from kuekan.errors import DomainError, known


def _bearer(request: Request[Any, Any, Any]) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise unauthorized()
    return token.strip()


def _principal(request: Request[Any, Any, Any]) -> Principal:
    cached: Principal | None = getattr(request.state, "kk_principal", None)
    if cached is not None:
        return cached
    tokens: TokenService = request.app.state.tokens
    principal = tokens.principal(_bearer(request))
    request.state.kk_principal = principal
    return principal


def wrong_role(role: str) -> DomainError:
    return known("forbidden_role", en=f"This route needs the {role} role")


async def provide_member(request: Request[Any, Any, Any]) -> Principal:
    p = _principal(request)
    if p.role != "member":
        raise wrong_role("member")
    return p


async def provide_merchant(request: Request[Any, Any, Any]) -> Principal:
    p = _principal(request)
    if p.role != "merchant" or p.merchant_id is None:
        raise wrong_role("merchant")
    return p


async def provide_admin(request: Request[Any, Any, Any]) -> Principal:
    p = _principal(request)
    if p.role != "admin" or p.org is None:
        raise wrong_role("admin")
    return p
