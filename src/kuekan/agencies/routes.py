"""PAO-managed agency keys and webhooks, and the agencies' read-only statistics API."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from litestar import Controller, Request, delete, get, post
from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler
from litestar.params import QueryParameter

from kuekan.agencies import model
from kuekan.agencies import repository as repo
from kuekan.agencies import service as agency_service
from kuekan.agencies.schemas import KeyIn, WebhookIn
from kuekan.analytics import service as analytics
from kuekan.analytics.model import allowed
from kuekan.auth.guards import policy_guard, principal_of
from kuekan.errors import invalid, known
from kuekan.kit.bounds import PathId

From = Annotated[dt.date | None, QueryParameter(name="from", required=False)]
To = Annotated[dt.date | None, QueryParameter(name="to", required=False)]


class AgencyAdminController(Controller):
    """Key and webhook administration: PAO only (policy class ``pao``)."""

    path = "/admin/agencies"
    guards = [policy_guard(allowed, lambda: known("forbidden_scope"))]
    tags = ["admin", "agencies"]

    @post("/keys", status_code=201, opt={"access": "pao"})
    async def create_key(self, request: Request[Any, Any, Any], data: KeyIn) -> dict[str, Any]:
        key, prefix, key_hash = model.new_key()
        row = await repo.create_key(request.app.state.pool, data.agency, prefix, key_hash,
                                    sorted(set(data.scopes)), principal_of(request).scope)
        # The key is shown once; only its SHA-256 is stored.
        return {**agency_service.key_out(row), "key": key}

    @get("/keys", opt={"access": "pao"})
    async def list_keys(self, request: Request[Any, Any, Any]) -> dict[str, Any]:
        rows = await repo.list_keys(request.app.state.pool)
        return {"items": [agency_service.key_out(r) for r in rows]}

    @delete("/keys/{key_id:int}", status_code=204, opt={"access": "pao"})
    async def revoke_key(self, request: Request[Any, Any, Any], key_id: PathId) -> None:
        if not await repo.revoke_key(request.app.state.pool, key_id):
            raise known("api_key_not_found")

    @post("/webhooks", status_code=201, opt={"access": "pao"})
    async def create_webhook(self, request: Request[Any, Any, Any],
                             data: WebhookIn) -> dict[str, Any]:
        state = request.app.state
        bad = sorted(set(data.topics) - model.WEBHOOK_TOPICS)
        if bad:
            raise invalid(f"unknown topics {bad}; use {sorted(model.WEBHOOK_TOPICS)}")
        await agency_service.check_webhook_url(data.url, state.settings.env,
                                               state.settings.webhook_allowed_networks)
        key = await repo.get_key(state.pool, data.agency_key_id)
        if key is None or key["revoked_at"] is not None:
            raise known("api_key_not_found")
        if "webhooks" not in key["scopes"]:
            raise agency_service.missing_scope("webhooks")
        secret = model.new_secret()
        row = await repo.create_webhook(state.pool, data.agency_key_id, data.url, secret,
                                        sorted(set(data.topics)))
        # The signing secret is shown once, to be configured at the receiver.
        return {**dict(row), "topics": list(row["topics"]), "secret": secret}

    @get("/webhooks/{webhook_id:int}/deliveries", opt={"access": "pao"})
    async def deliveries(self, request: Request[Any, Any, Any],
                         webhook_id: PathId) -> dict[str, Any]:
        rows = await repo.deliveries(request.app.state.pool, webhook_id, 200)
        return {"items": [dict(r) for r in rows]}


async def agency_guard(connection: ASGIConnection[Any, Any, Any, Any],
                       handler: BaseRouteHandler) -> None:
    """Authenticate ``X-Api-Key`` and require the route's scope (``opt["scope"]``)."""
    agency = await agency_service.authenticate(connection.app.state.pool,
                                               connection.headers.get("x-api-key"))
    scope = handler.opt.get("scope", "stats:read")
    if scope not in agency.scopes:
        raise agency_service.missing_scope(scope)
    connection.scope["kk_agency"] = agency  # type: ignore[typeddict-unknown-key]


def _not_personal(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    if any(k in r for r in rows for k in ("member_id", "display_name", "line_sub")):
        raise known("internal_error", en="personal data in an agency response")
    return rows


class AgencyStatsController(Controller):
    """Read-only, aggregated statistics for partner agencies (no member-level data)."""

    path = "/agency/stats"
    guards = [agency_guard]
    tags = ["agency"]

    @get("/daily", opt={"scope": "stats:read"})
    async def daily(self, request: Request[Any, Any, Any], start: From = None,
                    end: To = None) -> dict[str, Any]:
        a, b = analytics.date_range(start, end)
        return {"items": _not_personal(await analytics.daily_report(request.app.state.pool,
                                                                     a, b))}

    @get("/districts", opt={"scope": "stats:read"})
    async def districts(self, request: Request[Any, Any, Any], start: From = None,
                        end: To = None) -> dict[str, Any]:
        a, b = analytics.date_range(start, end)
        return await analytics.heatmap(request.app.state.pool, a, b, "district")

    @get("/segments", opt={"scope": "stats:read"})
    async def segments(self, request: Request[Any, Any, Any], start: From = None,
                       end: To = None) -> dict[str, Any]:
        a, b = analytics.date_range(start, end)
        return {"items": await analytics.segments(request.app.state.pool, a, b)}
