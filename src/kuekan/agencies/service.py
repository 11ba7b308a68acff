"""Agency use-cases: key checks and webhook delivery with signed bodies and retries."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Sequence
from typing import Any

import asyncpg
import httpx
import msgspec

from kuekan import metrics
from kuekan.agencies import model, outbound
from kuekan.agencies import repository as repo
from kuekan.errors import DomainError, invalid, known
from kuekan.kit.clock import utcnow
from kuekan.logging import get_logger

log = get_logger("kuekan.agencies")


class Agency(msgspec.Struct, frozen=True):
    key_id: int
    agency: str
    scopes: frozenset[str]


def bad_key() -> DomainError:
    return known("invalid_api_key")


def missing_scope(scope: str) -> DomainError:
    return known("api_key_scope_missing", en=f"This API key lacks the {scope} scope")


async def authenticate(pool: asyncpg.Pool, key: str | None) -> Agency:
    if not key or len(key) > 200:
        raise bad_key()
    row = await repo.key_by_hash(pool, model.hash_key(key))
    if row is None:
        raise bad_key()
    return Agency(key_id=row["id"], agency=row["agency"], scopes=frozenset(row["scopes"]))


async def deliver_due(pool: asyncpg.Pool, client: httpx.AsyncClient,
                      allowed_networks: Sequence[str],
                      limit: int = model.DELIVERY_BATCH) -> dict[str, int]:
    """Send due webhook deliveries once each; failures are retried with backoff, then given
    up after ``DELIVERY_ATTEMPTS_MAX`` attempts. Receivers dedupe on ``X-KueKan-Delivery``.

    Each call goes to an address checked just before it (``outbound.pin``): a URL that now
    resolves to a non-public address is given up at once, without a connection."""
    async with pool.acquire() as conn, conn.transaction():
        due = await repo.claim_due(conn, limit, lease_s=model.DELIVERY_TIMEOUT_S * 6)
    out = {"delivered": 0, "retry": 0, "failed": 0}
    for d in due:
        outcome = await _send(pool, client, d, allowed_networks)
        out[outcome] += 1
        metrics.WEBHOOK_DELIVERIES.labels(outcome).inc()
    return out


async def _send(pool: asyncpg.Pool, client: httpx.AsyncClient, d: asyncpg.Record,
                allowed_networks: Sequence[str]) -> str:
    body = msgspec.json.encode({**d["payload"], "delivery_id": d["id"]})
    headers = {"Content-Type": "application/json",
               model.SIGNATURE_HEADER: model.sign(d["secret"], body, int(time.time())),
               "X-KueKan-Delivery": str(d["id"]), "X-KueKan-Event": d["topic"]}
    status: int | None = None
    error: str | None = None
    refused = False
    try:
        target = await outbound.pin(d["url"], allowed_networks)
        resp = await client.post(
            target.url, content=body, headers={**headers, "Host": target.host_header},
            timeout=model.DELIVERY_TIMEOUT_S,
            extensions={"sni_hostname": target.sni_hostname} if target.sni_hostname else None)
        status = resp.status_code
    except outbound.Refused as exc:
        error, refused = f"refused: {exc}", True
    except httpx.HTTPError as exc:
        # The kind of failure only: an exception's text (addresses, resolver messages) would
        # tell the agency reading /deliveries about the network the worker sits in.
        error = type(exc).__name__
    ok = status is not None and model.delivered(status)
    give_up = refused or (not ok and d["attempts"] >= model.DELIVERY_ATTEMPTS_MAX)
    retry_at = utcnow() + dt.timedelta(seconds=model.backoff_s(d["attempts"]))
    await repo.mark(pool, d["id"], ok=ok, status=status,
                    error=error or (None if ok else f"HTTP {status}"), give_up=give_up,
                    retry_at=retry_at)
    outcome = "delivered" if ok else "failed" if give_up else "retry"
    log.info("webhook_attempt", delivery_id=d["id"], outcome=outcome, status=status,
             attempt=d["attempts"])
    return outcome


async def check_webhook_url(url: str, env: str, allowed_networks: Sequence[str]) -> None:
    """Refuse a webhook URL that is not https (bar local fakes) or not on a public address."""
    if not webhook_url_ok(url, env):
        raise invalid("the webhook URL must be https", "URL ของ webhook ต้องเป็น https")
    try:
        await outbound.pin(url, allowed_networks)
    except outbound.Refused as exc:
        raise known("webhook_url_refused", en=f"Webhook URL refused: {exc}") from None


def webhook_url_ok(url: str, env: str) -> bool:
    """HTTPS only, except plain HTTP on loopback in dev and test (local fakes)."""
    try:
        u = httpx.URL(url)
    except (httpx.InvalidURL, TypeError):
        return False
    if u.scheme == "https" and u.host:
        return True
    return env in {"dev", "test"} and u.scheme == "http" and u.host in {"127.0.0.1", "localhost"}


def key_out(row: asyncpg.Record) -> dict[str, Any]:
    return {"id": row["id"], "agency": row["agency"], "prefix": row["prefix"],
            "scopes": list(row["scopes"]), "created_at": row["created_at"],
            "revoked_at": row["revoked_at"]}
