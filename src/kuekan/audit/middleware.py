"""ASGI middleware: one audit row for every state-changing admin or merchant request.

Explicit :func:`kuekan.audit.record` calls inside a domain's transaction record the business
detail atomically; this middleware guarantees that no admin/merchant POST/PUT/PATCH/DELETE goes
unrecorded even when a route forgets, at the cost of being written after the response (a crash
in that instant loses the row; the explicit calls do not have that gap).
"""

from __future__ import annotations

import hashlib
from typing import Any

import asyncpg

from kuekan.audit import record
from kuekan.logging import get_logger

log = get_logger("kuekan.audit")
AUDITED_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
BODY_HASH_BYTES_MAX = 10 * 1024 * 1024


def _principal(scope: Any) -> Any:
    """The caller the route's auth dependency resolved: the guards cache it in the request
    state (``scope["state"]``); a few routes put it on the scope itself."""
    state = scope.get("state")
    principal = state.get("kk_principal") if isinstance(state, dict) else None
    return principal if principal is not None else scope.get("kk_principal")


def audit_middleware(app: Any) -> Any:
    async def middleware(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope.get("method") not in AUDITED_METHODS:
            await app(scope, receive, send)
            return
        digest = hashlib.sha256()
        status: list[int] = []

        async def hashing_receive() -> Any:
            message = await receive()
            if message.get("type") == "http.request":
                digest.update(message.get("body", b""))
            return message

        async def capture_send(message: Any) -> None:
            if message["type"] == "http.response.start":
                status.append(int(message["status"]))
            await send(message)

        await app(scope, hashing_receive, capture_send)
        principal = _principal(scope)
        role = getattr(principal, "role", None)
        if role not in ("admin", "merchant"):
            return
        headers = {k.decode().lower(): v.decode(errors="replace")
                   for k, v in scope.get("headers", [])}
        details = {"status": status[0] if status else None, "body_sha256": digest.hexdigest(),
                   "idempotency_key": headers.get("idempotency-key"),
                   "request_id": headers.get("x-request-id"),
                   "merchant_id": getattr(principal, "merchant_id", None),
                   "org": getattr(principal, "org", None)}
        try:
            state = scope["app"].state
            buffer = getattr(state, "audit_buffer", None)
            action = f"http.{scope['method'].lower()}"
            if buffer is not None:
                await buffer.add(principal.scope, action, scope.get("path", ""), details)
            else:
                await record(state.pool, principal.scope, action, scope.get("path", ""), details)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            log.exception("audit_write_failed", error=type(exc).__name__, path=scope.get("path"))

    return middleware
