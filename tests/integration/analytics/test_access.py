"""The access policy as a matrix over every admin and merchant route registered in the app and
every kind of caller (anonymous, member, merchant staff, an admin of each organisation: the
PAO, the Chamber, a sponsor), and the Chamber never receiving a member's name or LINE id."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import httpx
import pytest
import redis.asyncio as aioredis
from litestar.routes import HTTPRoute

from kuekan.app import create_app
from kuekan.auth import policy
from kuekan.settings import Settings
from tests.conftest import World, idem
from tests.integration.analytics.helpers import (
    concrete,
    drain,
    emit,
    merchant,
    merchant_staff,
)

PREFIX = "/api/v1"
DENIAL_CODES = {"unauthorized", "forbidden", "forbidden_role", "forbidden_scope"}
MULTIPART_ROUTES = {f"{PREFIX}/admin/geofences/import"}
CALLERS = ("anonymous", "member", "merchant", "admin:pao", "admin:chamber", "admin:sponsor")
SPONSOR_ORG = "sponsor"


def _routes(settings: Settings) -> list[tuple[str, str, dict[str, Any]]]:
    """(method, template, opt) of every admin/merchant handler the app registers."""
    app = create_app(settings)
    return [(method, route.path, dict(handler.opt))
            for route in app.routes
            if isinstance(route, HTTPRoute)
            and route.path.startswith((f"{PREFIX}/admin", f"{PREFIX}/merchant"))
            for handler in route.route_handlers
            for method in sorted(handler.http_methods) if method not in {"HEAD", "OPTIONS"}]


def _expected(caller: str, path: str, opt: dict[str, Any]) -> bool:
    """The policy module decides every /admin route (each must declare one); a /merchant route
    that declares none is for merchant staff only."""
    if caller == "anonymous":
        return False
    role, _, org = caller.partition(":")
    declared = policy.route_policy(opt)
    if declared is None:
        assert path.startswith(f"{PREFIX}/merchant"), path
        return role == "merchant"
    return policy.allows(role, org or None, declared)


@pytest.fixture(scope="module")
def routes(settings: Settings) -> list[tuple[str, str, dict[str, Any]]]:
    found = _routes(settings)
    assert len(found) >= 15, found  # the analytics and agency routes alone are more than this
    return found


async def test_every_admin_and_merchant_route_obeys_the_policy_for_every_caller(
        http: httpx.AsyncClient, world: World, pool: asyncpg.Pool,
        routes: list[tuple[str, str, dict[str, Any]]]) -> None:
    funder = await world.funder()
    shop = await merchant(pool, funder)
    _, member = await world.member()
    await pool.execute("insert into organisations (code, name) values ($1, 'A sponsor')"
                       " on conflict do nothing", SPONSOR_ORG)
    headers = {"anonymous": {}, "member": member,
               "merchant": await merchant_staff(world, shop),
               "admin:pao": await world.admin("pao"),
               "admin:chamber": await world.admin("chamber"),
               "admin:sponsor": await world.admin(SPONSOR_ORG)}
    failures = []
    for method, template, opt in routes:
        url = concrete(template).removeprefix(PREFIX)
        for caller in CALLERS:
            kw: dict[str, Any] = {"headers": headers[caller] | idem()}
            if method in {"POST", "PUT", "PATCH"}:
                kw["json"] = {}
            r = await http.request(method, url, **kw)
            code = _code(r)
            denied = (r.status_code in {401, 403} and code in DENIAL_CODES) or (
                # Litestar parses a multipart body before guards run: a refused caller with an
                # empty upload gets 422, which still shows and changes nothing.
                r.status_code == 422 and template in MULTIPART_ROUTES
                and not _expected(caller, template, opt))
            if denied == _expected(caller, template, opt) or r.status_code >= 500:
                failures.append((method, template, caller, r.status_code, code))
    assert not failures, "\n".join(map(str, failures))


def _code(r: httpx.Response) -> str | None:
    try:
        body = r.json()
    except ValueError:
        return None
    return body.get("code") if isinstance(body, dict) else None


def test_every_admin_route_declares_a_policy_of_the_one_policy_module(
        routes: list[tuple[str, str, dict[str, Any]]]) -> None:
    """A new /admin route without ``opt={"policy": ...}`` (or an analytics data class) fails
    here, and api_guard refuses it at run time."""
    admin = [(m, p, o) for m, p, o in routes if p.startswith(f"{PREFIX}/admin")]
    assert len(admin) >= 60, len(admin)
    undeclared = [(m, p) for m, p, o in admin if policy.route_policy(o) is None]
    assert not undeclared, undeclared
    # Both kinds of declaration name a known class.
    for _, _, opt in admin:
        declared = policy.route_policy(opt)
        assert declared in policy.POLICIES or declared in {
            f"access:{a}" for a in ("aggregate", "business", "members", "pao")}, declared


def test_an_admin_route_registered_without_a_policy_is_refused_for_every_caller(
        settings: Settings, database: str) -> None:
    """api_guard is deny-by-default: register a route with no policy and call it as the PAO."""
    from litestar import Controller, get
    from litestar.testing import TestClient

    from kuekan import app as app_module
    from kuekan.auth.tokens import Principal, TokenService

    class Undeclared(Controller):
        path = "/admin/undeclared"

        @get("/")
        async def leak(self) -> dict[str, str]:
            return {"secret": "all of it"}

    app_module.DOMAIN_ROUTES.append(Undeclared)
    try:
        app = create_app(settings)
    finally:
        app_module.DOMAIN_ROUTES.remove(Undeclared)
    token = TokenService(settings).issue(Principal("admin", 1, "Ux", org="pao"))
    # A sync client: its own loop in a portal thread, away from the suite's session loop.
    with TestClient(app, raise_server_exceptions=False) as client:
        r = client.get("/api/v1/admin/undeclared", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 403 and r.json()["code"] == "forbidden_scope", r.text
    assert "all of it" not in r.text


def test_every_analytics_and_agency_route_declares_its_data_class(
        routes: list[tuple[str, str, dict[str, Any]]]) -> None:
    ours = [(m, p, o) for m, p, o in routes if "/analytics" in p or "/agencies" in p
            or p.endswith("/dashboard/realtime")]
    assert len(ours) >= 14
    for method, path, opt in ours:
        assert opt.get("access") in {"aggregate", "business", "members", "pao", "shop"}, \
            (method, path)


async def test_merchant_staff_only_ever_see_their_own_shop(
        http: httpx.AsyncClient, world: World, pool: asyncpg.Pool) -> None:
    funder = await world.funder()
    mine, theirs = await merchant(pool, funder), await merchant(pool, funder)
    staff = await merchant_staff(world, mine)
    own = await http.get("/merchant/analytics/daily", headers=staff)
    assert own.status_code == 200 and own.json()["merchant_id"] == mine
    other = await http.get("/merchant/analytics/daily", headers=staff,
                           params={"merchant_id": theirs})
    assert other.status_code == 403 and other.json()["code"] == "forbidden_scope"
    admin_view = await http.get(f"/admin/analytics/merchants/{theirs}/daily", headers=staff)
    assert admin_view.status_code == 403


async def test_chamber_never_receives_a_members_name_or_line_id(
        http: httpx.AsyncClient, world: World, pool: asyncpg.Pool, redis: aioredis.Redis,
        routes: list[tuple[str, str, dict[str, Any]]]) -> None:
    member_id, _ = await world.member()
    name = f"สมหญิง ใจดี {uuid.uuid4().hex[:6]}"
    await pool.execute("update members set display_name = $2 where id = $1", member_id, name)
    line_sub = await pool.fetchval("select line_sub from members where id = $1", member_id)
    # Busy enough to rank among the top members whatever other tests did earlier in the session
    # (the ranking is by activity events, ties to the oldest member).
    for _ in range(50):
        await emit(pool, "scan.purchase", member_id, merchant_id=1, amount_thb="80", points=8)
    await drain(pool, redis)
    pao, chamber = await world.admin("pao"), await world.admin("chamber")

    # The PAO sees the member whole, so the data really is there to leak.
    top = await http.get("/admin/analytics/members/top", headers=pao, params={"limit": 200})
    assert top.status_code == 200
    assert any(r.get("display_name") == name and r.get("line_sub") == line_sub
               for r in top.json()["items"])
    pao_csv = await http.get("/admin/analytics/export", headers=pao,
                             params={"report": "members", "format": "csv"})
    assert name in pao_csv.content.decode("utf-8-sig")

    # The Chamber: every GET admin route, and both export formats of every report.
    bodies = []
    for method, template, _ in routes:
        if method == "GET" and template.startswith(f"{PREFIX}/admin"):
            r = await http.get(concrete(template).removeprefix(PREFIX), headers=chamber,
                               params={"limit": 200})
            bodies.append((template, r.content))
    for report in ("daily", "members", "campaigns", "districts", "segments"):
        for fmt in ("csv", "xlsx"):
            r = await http.get("/admin/analytics/export", headers=chamber,
                               params={"report": report, "format": fmt})
            assert r.status_code == 200, (report, fmt, r.text)
            bodies.append((f"export {report}.{fmt}", _xlsx_text(r.content) if fmt == "xlsx"
                           else r.content))
    chamber_top = await http.get("/admin/analytics/members/top", headers=chamber,
                                 params={"limit": 200})
    assert any(r["member_id"] == member_id for r in chamber_top.json()["items"])
    for where, body in bodies:
        assert name.encode() not in body, where
        assert line_sub.encode() not in body, where


def _xlsx_text(content: bytes) -> bytes:
    """The workbook's strings (xlsx is a zip; text lives in its XML parts)."""
    import io
    import zipfile

    assert content[:2] == b"PK"
    with zipfile.ZipFile(io.BytesIO(content)) as z:
        return b"".join(z.read(n) for n in z.namelist() if n.endswith(".xml"))
