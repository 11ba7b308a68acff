"""Who may call which route, and which organisation's objects an admin may touch.

Every admin route declares its policy in ``opt={"policy": ...}`` (the analytics and agency
routes keep their data classes in ``opt={"access": ...}``, decided by
``kuekan.analytics.model.allowed``). :func:`api_guard` runs on every route of ``/api/v1``: it
refuses an ``/admin`` route that declares no policy (so a new route cannot be registered
unguarded; ``tests/integration/analytics/test_access.py`` also walks ``app.routes``), checks
each staff or admin token against its staff row (:mod:`kuekan.auth.staff`), and applies the
route's policy.

Policies (docs/ARCHITECTURE.md "Threat model: who may do what"):

- ``pao``: PAO admins only — fraud evidence and reviews, member holds, blacklists,
  broadcasts, geofence changes, the outbox dead letters, agencies. These carry members'
  personal data (coordinates, device ids) or speak to every citizen.
- ``org``: an admin of any organisation, on its own organisation's objects only: funders
  belong to an organisation, and merchants, missions, rewards, transfers, settlement rows and
  staff belong to their funder's. The PAO sees and acts on all; the Chamber and sponsors only
  on their own. Handlers check single objects with :func:`require` and filter lists in SQL
  with :func:`org_scope`.
- ``shared``: any admin, on province-wide data with no owner (geofences, testing a location).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Literal

from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler

from kuekan.auth import repository as repo
from kuekan.auth.guards import wrong_role
from kuekan.auth.staff import StaffGate
from kuekan.auth.tokens import Principal, TokenService, unauthorized
from kuekan.errors import DomainError, known

Policy = Literal["pao", "org", "shared"]
POLICIES: frozenset[str] = frozenset({"pao", "org", "shared"})
FULL_VIEW_ORG = "pao"
ADMIN_PREFIX = "/api/v1/admin"
AUTH_PREFIX = "/api/v1/auth/"


def forbidden_scope() -> DomainError:
    return known("forbidden_scope")


def undeclared_policy() -> DomainError:
    return known("forbidden_scope", en="This route declares no access policy",
                 th="เส้นทางนี้ไม่ได้กำหนดนโยบายการเข้าถึง")


def route_policy(opt: dict[str, Any]) -> str | None:
    """The route's declared policy: ``opt["policy"]``, or ``access:<class>`` for analytics."""
    if opt.get("policy") in POLICIES:
        return str(opt["policy"])
    if opt.get("access") is not None:
        return f"access:{opt['access']}"
    return None


# The rule for ``opt={"access": ...}`` routes, registered by the analytics domain at import
# (auth sits below the domains and names none of them). Unregistered: every such route denied.
_access_rules: list[Callable[[str, str | None, Any], bool]] = []


def register_access_rule(rule: Callable[[str, str | None, Any], bool]) -> None:
    """Decide ``access:<class>`` policies with ``rule(role, org, class)``."""
    _access_rules[:] = [rule]


def allows(role: str, org: str | None, policy: str) -> bool:
    """Whether a caller with ``role``/``org`` passes ``policy`` (before object scoping)."""
    if policy.startswith("access:"):
        return bool(_access_rules) and _access_rules[0](role, org, policy.removeprefix("access:"))
    if role != "admin" or not org:
        return False
    if policy == "pao":
        return org == FULL_VIEW_ORG
    return policy in ("org", "shared")


def org_scope(admin: Principal) -> str | None:
    """The organisation an admin's lists are filtered to; None for the PAO (sees all)."""
    return None if admin.org == FULL_VIEW_ORG else admin.org


def may_act_for(admin: Principal, owner_org: str | None) -> bool:
    return admin.org == FULL_VIEW_ORG or (owner_org is not None and owner_org == admin.org)


Lookup = Callable[[repo.Db, int], Awaitable[tuple[bool, str | None]]]
OWNERS: dict[str, tuple[Lookup, str]] = {
    "funder": (repo.funder_org, "funder_not_found"),
    "merchant": (repo.merchant_org, "merchant_not_found"),
    "mission": (repo.mission_org, "mission_not_found"),
    "reward": (repo.reward_org, "reward_not_found"),
    "transfer": (repo.transfer_org, "transfer_not_found"),
    "staff": (repo.staff_org, "staff_not_found"),
}


async def require(db: repo.Db, admin: Principal, kind: str, ident: int) -> None:
    """Refuse unless ``kind`` ``ident`` exists (404) and belongs to the admin's organisation
    (403 ``forbidden_scope``); the PAO may act on every organisation's objects."""
    lookup, missing = OWNERS[kind]
    found, owner = await lookup(db, ident)
    if not found:
        raise known(missing, 404)
    if not may_act_for(admin, owner):
        raise forbidden_scope()


def _bearer(connection: ASGIConnection[Any, Any, Any, Any]) -> str | None:
    scheme, _, token = connection.headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def principal_of(connection: ASGIConnection[Any, Any, Any, Any]) -> Principal:
    """The caller's verified principal, cached on the scope for the route's own guards."""
    cached = connection.scope.get("kk_principal")
    if isinstance(cached, Principal):
        return cached
    token = _bearer(connection)
    if token is None:
        raise unauthorized()
    tokens: TokenService = connection.app.state.tokens
    principal = tokens.principal(token)
    connection.scope["kk_principal"] = principal  # type: ignore[typeddict-unknown-key]
    return principal


async def api_guard(connection: ASGIConnection[Any, Any, Any, Any],
                    handler: BaseRouteHandler) -> None:
    """The one gate in front of every /api/v1 route (see the module docstring)."""
    if connection.scope.get("method") == "OPTIONS":
        return  # CORS preflight: no data, no principal
    policy = route_policy(handler.opt)
    path = connection.scope["path"]
    if path.startswith(ADMIN_PREFIX) and policy is None:
        raise undeclared_policy()
    if path.startswith(AUTH_PREFIX):
        return  # sign-in and refresh read no bearer (a stale one must not block signing in)
    if _bearer(connection) is None:
        if policy is not None:
            raise unauthorized()
        return
    try:
        principal = principal_of(connection)
    except DomainError:
        if policy is not None:
            raise
        return  # the route's own dependency refuses it (or the route needs no token)
    if principal.role in ("merchant", "admin"):
        gate: StaffGate = connection.app.state.staff_gate
        await gate.check(principal)
    if policy is not None and not allows(principal.role, principal.org, policy):
        if principal.role != "admin" and not policy.startswith("access:"):
            raise wrong_role("admin")
        raise forbidden_scope()
