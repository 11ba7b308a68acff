"""Dependencies that authenticate the caller and check the role (each role only its routes)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from litestar import Request
from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler

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


def principal_of(connection: ASGIConnection[Any, Any, Any, Any]) -> Principal:
    """The caller's principal from the bearer token, cached on the scope (for route guards)."""
    cached = connection.scope.get("kk_principal")
    if isinstance(cached, Principal):
        return cached
    scheme, _, token = connection.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise unauthorized()
    tokens: TokenService = connection.app.state.tokens
    principal = tokens.principal(token.strip())
    connection.scope["kk_principal"] = principal  # type: ignore[typeddict-unknown-key]
    return principal


Guard = Callable[[ASGIConnection[Any, Any, Any, Any], BaseRouteHandler], None]


def policy_guard(allowed: Callable[[str, str | None, Any], bool],
                 refuse: Callable[[], DomainError]) -> Guard:
    """A route guard: each route declares its data class in ``opt={"access": ...}``, and
    ``allowed(role, org, access)`` decides; a route without a declared class is denied."""

    def guard(connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
        access = handler.opt.get("access")
        if access is None:  # a route without a declared class is a bug: deny, never allow
            raise refuse()
        p = principal_of(connection)
        if not allowed(p.role, p.org, access):
            raise refuse()

    return guard
