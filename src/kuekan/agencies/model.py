"""Pure rules for agency keys and webhooks: key format, scopes, HMAC signatures, backoff."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Literal

from kuekan.kit import backoff

Scope = Literal["stats:read", "webhooks"]
SCOPES: frozenset[str] = frozenset({"stats:read", "webhooks"})
WEBHOOK_TOPICS: frozenset[str] = frozenset({"mission.completed", "redemption.created",
                                            "redemption.posted"})
KEY_PREFIX = "kk"
SIGNATURE_HEADER = "X-KueKan-Signature"
# Receivers should refuse signatures older than this (replay protection).
SIGNATURE_TOLERANCE_S = 300
DELIVERY_ATTEMPTS_MAX = 10
DELIVERY_BATCH = 100
DELIVERY_TIMEOUT_S = 5.0
BACKOFF_BASE_S = 10.0
BACKOFF_CAP_S = 3600.0


def new_key() -> tuple[str, str, str]:
    """(full key shown once, public prefix, SHA-256 kept in the database)."""
    prefix = secrets.token_hex(4)
    key = f"{KEY_PREFIX}_{prefix}_{secrets.token_urlsafe(32)}"
    return key, prefix, hash_key(key)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


def sign(secret: str, body: bytes, timestamp: int) -> str:
    """``t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>." + body)>``: the timestamp is signed too,
    so a captured delivery cannot be replayed later with a new time."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def verify(secret: str, body: bytes, header: str, now: int,
           tolerance_s: int = SIGNATURE_TOLERANCE_S) -> bool:
    """What a receiver does: check the HMAC in constant time and the timestamp's age."""
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    try:
        ts = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs(now - ts) > tolerance_s:
        return False
    expected = sign(secret, body, ts).split("v1=", 1)[1]
    return hmac.compare_digest(expected, parts.get("v1", ""))


def backoff_s(attempt: int) -> float:
    """Delay before the next delivery: 10 s, 20 s, 40 s ... ≤ 1 h (:mod:`kuekan.kit.backoff`)."""
    return backoff.backoff_s(attempt, BACKOFF_BASE_S, BACKOFF_CAP_S)


def delivered(status: int) -> bool:
    return 200 <= status < 300
