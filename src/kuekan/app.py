"""create_app(): every route, dependency, plugin and exception handler, in one place."""

from __future__ import annotations

import decimal
import functools
import gc
import ipaddress
import itertools
import re
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import msgspec
import structlog
from asyncpg.exceptions import _base as pg_base
from litestar import Litestar, Request, Response, Router, get
from litestar.config.cors import CORSConfig
from litestar.enums import ScopeType
from litestar.exceptions import (
    HTTPException,
    NotAuthorizedException,
    NotFoundException,
    PermissionDeniedException,
    ValidationException,
)
from litestar.middleware import DefineMiddleware
from litestar.openapi import OpenAPIConfig
from litestar.plugins.prometheus import PrometheusConfig, PrometheusController
from litestar.types import ASGIApp, Receive, Scope, Send
from redis.exceptions import RedisError
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from kuekan import metrics, ratelimit
from kuekan.agencies.routes import AgencyAdminController, AgencyStatsController
from kuekan.analytics.routes import AnalyticsAdminController, MerchantAnalyticsController
from kuekan.audit import buffer as audit_buffer
from kuekan.audit.middleware import audit_middleware
from kuekan.auth.line import JwksCache, LineVerifier
from kuekan.auth.policy import api_guard
from kuekan.auth.staff import Sessions, StaffGate
from kuekan.auth.tokens import TokenService
from kuekan.cache import create_redis
from kuekan.db import create_pool
from kuekan.errors import DomainError, known
from kuekan.fraud.routes import FraudAdminController
from kuekan.geo.routes import AdminGeofenceController
from kuekan.idempotency import Gate
from kuekan.inputguard import input_guard_middleware
from kuekan.ledger.routes import AdminLedgerController
from kuekan.ledger.service import Ledger
from kuekan.logging import configure_logging, get_logger
from kuekan.members.login import AuthController, StaffAdminController
from kuekan.members.routes import MeController
from kuekan.merchants.routes import ROUTES as MERCHANTS_ROUTES
from kuekan.missions import service as missions_service
from kuekan.missions.routes import MISSIONS_ROUTES
from kuekan.notify.routes import BroadcastAdminController, LineWebhookController, PhoneOtpController
from kuekan.outbox.routes import OutboxAdminController
from kuekan.privacy.routes import PrivacyController
from kuekan.ratelimit import rate_limit_middleware
from kuekan.rewards.routes import ROUTES as REWARDS_ROUTES
from kuekan.settings import Settings, get_settings
from kuekan.web import PROBLEM_JSON

log = get_logger("kuekan.app")

# Every controller of every domain, mounted under /api/v1: this list is the whole API.
DOMAIN_ROUTES: list[Any] = [
    AuthController, StaffAdminController,
    MeController,
    AdminLedgerController,
    *REWARDS_ROUTES, *MERCHANTS_ROUTES,
    AnalyticsAdminController, MerchantAnalyticsController,
    AgencyAdminController, AgencyStatsController,
    AdminGeofenceController, *MISSIONS_ROUTES,
    OutboxAdminController, FraudAdminController, PrivacyController,
    LineWebhookController, BroadcastAdminController, PhoneOtpController,
]


def _problem(code: str, request: Request[Any, Any, Any], status: int | None = None,
             en: str | None = None, th: str | None = None, **extra: Any) -> Response[Any]:
    exc = known(code, status, en=en, th=th, **extra)
    return Response(content=exc.to_problem(request.url.path), status_code=exc.status,
                    media_type=PROBLEM_JSON)


def domain_error_handler(request: Request[Any, Any, Any], exc: DomainError) -> Response[Any]:
    metrics.REFUSALS.labels(exc.code).inc()
    retry = exc.extra.get("retry_after_s") if exc.status == 429 else None
    return Response(content=exc.to_problem(request.url.path), status_code=exc.status,
                    media_type=PROBLEM_JSON,
                    headers={"Retry-After": str(retry)} if retry is not None else None)


def validation_handler(request: Request[Any, Any, Any], exc: ValidationException) -> Response[Any]:
    errors = exc.extra if isinstance(exc.extra, list) else []
    return _problem("validation_failed", request, en=f"Invalid request: {exc.detail}",
                    errors=errors)


def http_error_handler(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    if exc.status_code == 400:
        return _problem("validation_failed", request, en=f"Invalid request: {exc.detail}")
    code = HTTP_CODES.get(exc.status_code, "http_error")
    return _problem(code, request, exc.status_code, en=str(exc.detail))


# Litestar's own HTTP errors by status; their codes and Thai texts are in the catalogue.
HTTP_CODES = {401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
              413: "payload_too_large", 415: "unsupported_media_type"}


def unique_violation_handler(request: Request[Any, Any, Any],
                             exc: asyncpg.UniqueViolationError) -> Response[Any]:
    """A duplicate a caller provoked (a code, a name, a link that exists): 409, never a 500.

    Routes that expect a duplicate answer it with their own code (``funder_code_taken``); this
    is the answer for every other unique index, named by its constraint so it stays stable."""
    constraint = exc.constraint_name or "unique"
    metrics.REFUSALS.labels("already_exists").inc()
    return _problem("already_exists", request, constraint=constraint)


def out_of_range_handler(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """A value past what PostgreSQL, Python's dates or Decimal hold that no bound stopped.

    Bounds in kuekan.kit.bounds should refuse such input at decoding; this is the net under
    them, logged so the missing bound gets added. The statement failed, so nothing was written
    by it (its transaction rolled back)."""
    log.warning("input_out_of_range", error=type(exc).__name__, path=request.url.path)
    return _problem("validation_failed", request, en="Invalid request: a value is out of range",
                    th="ข้อมูลที่ส่งมาไม่ถูกต้อง: ค่าอยู่นอกช่วงที่รับได้")


# Failures a retry with the same Idempotency-Key can get past: 503, never a 500.
TRANSIENT_ERRORS = (
    asyncpg.exceptions.SerializationError, asyncpg.DeadlockDetectedError,
    asyncpg.exceptions.ConnectionDoesNotExistError, asyncpg.exceptions.InterfaceError,
    asyncpg.InternalClientError, asyncpg.PostgresConnectionError,
    asyncpg.exceptions.TooManyConnectionsError, asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.AdminShutdownError, asyncpg.exceptions.QueryCanceledError,
    RedisError, OSError, TimeoutError,
)


def internal_error_handler(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    if isinstance(exc, TRANSIENT_ERRORS):
        log.warning("transient_failure", error=type(exc).__name__, path=request.url.path)
        return _problem("temporarily_unavailable", request)
    log.exception("unhandled_error", path=request.url.path)
    return _problem("internal_error", request)


# A caller's X-Request-Id is kept only when it is short and plain; anything else (non-UTF-8,
# over-long, spaces, markup) is replaced by a generated id before any log line or audit row
# sees it.
REQUEST_ID_OK = re.compile(rb"^[A-Za-z0-9._-]{1,64}$")


def request_id_middleware(app: ASGIApp) -> ASGIApp:
    """Bind a request id to every log line of the request and echo it as X-Request-Id.

    Ids made here are a random prefix, drawn when the app is built (in each server process,
    after the fork), and a counter: unique across processes and restarts, and cheaper than a
    uuid4 per request (0.8 % of the API's CPU in the event flood)."""
    prefix = secrets.token_hex(8)
    counter = itertools.count(1)

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await app(scope, receive, send)
            return
        given = next((v for k, v in scope.get("headers", []) if k == b"x-request-id"), None)
        if given is not None and REQUEST_ID_OK.match(given):
            rid = given.decode()
        else:
            rid = f"{prefix}{next(counter):x}"
            if given is not None:  # downstream (the audit row) sees the id we answer with
                scope["headers"] = [(k, rid.encode() if k == b"x-request-id" else v)
                                    for k, v in scope["headers"]]
        structlog.contextvars.bind_contextvars(request_id=rid)

        async def send_rid(message: Any) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), (b"x-request-id", rid.encode())]
            await send(message)

        try:
            await app(scope, receive, send_rid)
        finally:
            structlog.contextvars.clear_contextvars()

    return middleware


# Every exception answered as problem+json, most specific first (Litestar matches the MRO).
EXCEPTION_HANDLERS: dict[Any, Any] = {
    DomainError: domain_error_handler,
    ValidationException: validation_handler,
    NotAuthorizedException: http_error_handler,
    PermissionDeniedException: http_error_handler,
    NotFoundException: http_error_handler,
    HTTPException: http_error_handler,
    asyncpg.UniqueViolationError: unique_violation_handler,
    asyncpg.DataError: out_of_range_handler,
    # asyncpg's client-side "invalid input for query argument" (e.g. int64 overflow);
    # an InterfaceError, which would otherwise be answered as a transient 503.
    pg_base.DataError: out_of_range_handler,
    OverflowError: out_of_range_handler,
    decimal.InvalidOperation: out_of_range_handler,  # e.g. a quantize past Decimal's precision
    Exception: internal_error_handler,
}


@get("/healthz", include_in_schema=False, sync_to_thread=False)
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@get("/readyz", include_in_schema=False)
async def readyz(request: Request[Any, Any, Any]) -> Response[Any]:
    state = request.app.state
    checks: dict[str, str] = {}
    try:
        await state.pool.fetchval("select 1")
        checks["postgres"] = "ok"
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        checks["postgres"] = f"down: {type(exc).__name__}"
    try:
        await state.redis.ping()
        checks["redis"] = "ok"
    except (RedisError, OSError) as exc:
        checks["redis"] = f"down: {type(exc).__name__}"
    ok = all(v == "ok" for v in checks.values())
    return Response(content={"status": "ready" if ok else "not_ready", **checks},
                    status_code=200 if ok else 503)


def proxy_middleware(settings: Settings) -> list[DefineMiddleware]:
    """Believe X-Forwarded-For only from the configured proxies (``trusted_proxies``).

    uvicorn's ProxyHeadersMiddleware takes the rightmost address not in those networks as the
    client, so an address a client writes into the header itself is never taken while a
    trusted proxy appended the real one. With no proxies configured the header is ignored:
    otherwise anyone could pick the per-IP bucket they are counted in. ``kuekan serve`` turns
    uvicorn's own handling off (it trusts 127.0.0.1 by default), so this is the only one."""
    if not settings.trusted_proxies:
        return []
    for cidr in settings.trusted_proxies:
        ipaddress.ip_network(cidr)  # a typo would otherwise silently trust nothing
    proxy_headers: Any = ProxyHeadersMiddleware  # a plain ASGI3 class; Litestar's types differ
    return [DefineMiddleware(proxy_headers, trusted_hosts=settings.trusted_proxies)]


def create_app(settings: Settings | None = None) -> Litestar:
    """Build the API application; storage is opened in the lifespan, once per process."""
    settings = settings or get_settings()
    configure_logging(settings.log_level, json=settings.log_json)

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        state = app.state
        state.settings = settings
        state.pool = await create_pool(settings)
        state.redis = create_redis(settings)
        state.gate = Gate(state.redis, lease_s=settings.idempotency_inflight_ttl_s,
                          keep_s=86400)
        state.ledger = Ledger(state.pool, state.gate, settings)
        state.tokens = TokenService(settings)
        state.jwks = JwksCache(settings.line_jwks_url, settings.line_jwks_cache_s)
        state.line_verifier = LineVerifier(settings, state.jwks)
        state.staff_gate = StaffGate(state.pool, settings.staff_check_cache_s)
        state.sessions = Sessions(state.pool, state.tokens, settings)
        for hook in STARTUP_HOOKS:
            await hook(app)
        # What geo's admin routes call after a change: reload this process's mission and fence
        # catalogue (the other processes hear the Redis nudge).
        state.reload_catalog = functools.partial(missions_service.reload, app)
        # Everything loaded so far (code, settings, the fence index) lives as long as the
        # process: keep it out of the collector, and collect less often, so thousands of open
        # connections do not pay for full collections in their latency.
        gc.collect()
        gc.freeze()
        gc.set_threshold(50_000, 50, 100)
        try:
            yield
        finally:
            for hook in SHUTDOWN_HOOKS:
                await hook(app)
            await state.pool.close()
            await state.redis.aclose()

    prometheus = PrometheusConfig(app_name="kuekan", prefix="litestar", group_path=True,
                                  exclude=["/metrics", "/healthz", "/readyz"])
    # api_guard: every /admin route must declare a policy; staff and admin tokens are checked
    # against their staff row on each request (kuekan.auth.policy, kuekan.auth.staff).
    api = Router(path="/api/v1", route_handlers=DOMAIN_ROUTES, guards=[api_guard])
    return Litestar(
        route_handlers=[api, healthz, readyz, PrometheusController],
        lifespan=[lifespan],
        # The rate-limit middleware is left out entirely when limits are off (load tests).
        middleware=[*proxy_middleware(settings),
                    request_id_middleware, input_guard_middleware, prometheus.middleware,
                    *([rate_limit_middleware] if settings.rate_limits else []),
                    audit_middleware],
        exception_handlers=EXCEPTION_HANDLERS,
        openapi_config=OpenAPIConfig(title="KueKan API", version="1.0.0", path="/schema"),
        cors_config=CORSConfig(allow_origins=["*"], allow_headers=["*"]),
        type_encoders={msgspec.Struct: msgspec.to_builtins},
        debug=False,
        request_max_body_size=10 * 1024 * 1024,
    )


# Domains that keep per-process state (e.g. the geofence index) register start/stop hooks.
STARTUP_HOOKS: list[Any] = [missions_service.startup, audit_buffer.startup, ratelimit.startup]
SHUTDOWN_HOOKS: list[Any] = [missions_service.shutdown, audit_buffer.shutdown,
                              ratelimit.shutdown]
