"""Per-IP and per-member request rate limits in Redis, with ``RateLimit-*`` headers.

A fixed one-minute window (one INCR per key, one script call per request). The per-IP limit is
generous on purpose: thousands of members behind one event Wi-Fi NAT share an address, and the
per-member limit does the real work. ``KUEKAN_RATE_LIMITS=off`` turns both off for load tests;
business limits (daily caps, budgets) are never turned off. Fails open when Redis is down.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

import jwt
import msgspec
from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from redis.exceptions import RedisError

from kuekan import cache
from kuekan.logging import get_logger

log = get_logger(__name__)
WINDOW_S = 60
EXEMPT_PREFIXES = ("/healthz", "/readyz", "/metrics", "/schema")


def _member_key(headers: Iterable[tuple[bytes, bytes]]) -> str | None:
    for name, value in headers:
        if name == b"authorization" and value[:7].lower() == b"bearer ":
            try:
                # Only to pick the bucket: the signature is verified by the route's guard.
                claims = jwt.decode(value[7:].decode(), options={"verify_signature": False})
            except (jwt.PyJWTError, UnicodeDecodeError):
                return None
            return f"{claims.get('role', '?')}:{claims.get('sub', '?')}"
    return None


def _problem(limit: int, reset: int) -> bytes:
    return msgspec.json.encode({
        "type": "https://kuekan.dev/problems/rate-limited", "title": "Too many requests",
        "status": 429, "detail": f"More than {limit} requests a minute; retry in {reset} s",
        "code": "rate_limited", "message_th": "มีคำขอมากเกินไป โปรดลองใหม่ภายหลัง",
        "message_en": "Too many requests"})


def rate_limit_middleware(app: ASGIApp) -> ASGIApp:
    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        state: Any = scope["app"].state
        settings = state.settings
        path = scope.get("path", "")
        exempt = path.startswith(EXEMPT_PREFIXES)
        if scope["type"] != ScopeType.HTTP or not settings.rate_limits or exempt:
            await app(scope, receive, send)
            return
        window = int(time.time()) // WINDOW_S
        reset = WINDOW_S - int(time.time()) % WINDOW_S
        client = scope.get("client")
        ip = client[0] if client else "unknown"
        checks = [(f"kk:rl:ip:{ip}:{window}", settings.rate_limit_ip_per_min)]
        member = _member_key(scope.get("headers", []))
        if member:
            checks.append((f"kk:rl:u:{member}:{window}", settings.rate_limit_member_per_min))
        try:
            counts = await state.rate_script(keys=[k for k, _ in checks], args=[WINDOW_S])
        except RedisError as exc:
            log.warning("redis_unavailable", op="rate_limit", error=str(exc))
            await app(scope, receive, send)
            return
        # Report the tightest bucket.
        remaining, limit = min((lim - int(c), lim) for c, (_, lim) in zip(counts, checks,
                                                                           strict=True))
        headers = [(b"ratelimit-limit", str(limit).encode()),
                   (b"ratelimit-remaining", str(max(remaining, 0)).encode()),
                   (b"ratelimit-reset", str(reset).encode())]
        if remaining < 0:
            body = _problem(limit, reset)
            start: Any = {"type": "http.response.start", "status": 429, "headers": [
                (b"content-type", b"application/problem+json"),
                (b"retry-after", str(reset).encode()),
                (b"content-length", str(len(body)).encode()), *headers]}
            await send(start)
            end: Any = {"type": "http.response.body", "body": body}
            await send(end)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *headers]
            await send(message)

        await app(scope, receive, send_with_headers)

    return middleware


def rate_script(redis: Any) -> Any:
    return redis.register_script(cache.RATE)
