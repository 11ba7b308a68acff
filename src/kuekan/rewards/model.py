"""Pure rules of rewards: coupon codes, the earn rule, tiers, the offline window. No I/O."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import os
import secrets
from decimal import ROUND_FLOOR, Decimal

import msgspec

# No 0/O, 1/I/L, 5/S or 2/Z: a code read aloud or typed from a phone screen never has an
# ambiguous character. 28 symbols, 10 of them: ~2.9e14 codes, collisions retried in SQL.
CODE_ALPHABET = "ABCDEFGHJKMNPQRTUVWXY3467890"
CODE_LEN = 10
CODE_CANDIDATES = 3
COUPON_QR_PREFIX = "KKC1"


class RewardsConfig(msgspec.Struct, frozen=True, kw_only=True):
    """Bounds of this domain; overridable with ``KUEKAN_<NAME>`` variables (units last)."""

    offline_window_h: int = 72
    offline_future_skew_s: int = 300
    batch_items_max: int = 200
    coupon_void_batch: int = 500
    expiry_batch: int = 1000
    expiry_batches_max: int = 1000
    tier_review_batch: int = 1000
    qr_use_retention_h: int = 96
    merchant_cache_s: int = 30


def load_config() -> RewardsConfig:
    names = {f: f"KUEKAN_{f.upper()}" for f in RewardsConfig.__struct_fields__}
    raw = {f: os.environ[env] for f, env in names.items() if env in os.environ}
    return msgspec.convert(raw, RewardsConfig, strict=False)


def new_code() -> str:
    """A random coupon code, shown as ``XXXXX-XXXXX``."""
    raw = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LEN))
    return f"{raw[:5]}-{raw[5:]}"


def code_candidates() -> list[str]:
    return [new_code() for _ in range(CODE_CANDIDATES)]


def normalize_code(text: str) -> str:
    """Accept what a cashier types: any case, spaces or dashes, O for 0 and I/L for 1 removed."""
    cleaned = "".join(ch for ch in text.upper() if ch.isalnum())
    cleaned = cleaned.replace("O", "0")
    if len(cleaned) != CODE_LEN:
        return cleaned
    return f"{cleaned[:5]}-{cleaned[5:]}"


def sign_coupon(code: str, expires_at: dt.datetime, kid: str, secret: str) -> str:
    """The coupon's QR payload: ``KKC1.<code>.<exp>.<kid>.<mac>`` (HMAC-SHA256, truncated)."""
    body = f"{COUPON_QR_PREFIX}.{code}.{int(expires_at.timestamp())}.{kid}"
    mac = hmac.new(f"coupon:{secret}".encode(), body.encode(), hashlib.sha256).digest()[:16]
    return f"{body}.{base64.urlsafe_b64encode(mac).decode().rstrip('=')}"


def verify_coupon(payload: str, keys: dict[str, str]) -> str | None:
    """The coupon code of a genuine QR payload, or None when forged or malformed."""
    parts = payload.split(".")
    if len(parts) != 5 or parts[0] != COUPON_QR_PREFIX or parts[3] not in keys:
        return None
    body = ".".join(parts[:4])
    mac = hmac.new(f"coupon:{keys[parts[3]]}".encode(), body.encode(), hashlib.sha256).digest()[:16]
    given = parts[4] + "=" * (-len(parts[4]) % 4)
    try:
        ok = hmac.compare_digest(base64.urlsafe_b64decode(given), mac)
    except (ValueError, TypeError):
        return None
    return parts[1] if ok else None


def purchase_points(purchase_thb: Decimal, thb_per_point: Decimal, min_spend_thb: Decimal,
                    multiplier: Decimal) -> int:
    """Earn rule: floor(THB / THB-per-point) x tier multiplier, floored; 0 below the minimum."""
    assert thb_per_point > 0
    assert multiplier > 0
    if purchase_thb < min_spend_thb or purchase_thb <= 0:
        return 0
    base = (purchase_thb / thb_per_point).to_integral_value(rounding=ROUND_FLOOR)
    return int((base * multiplier).to_integral_value(rounding=ROUND_FLOOR))


def best_tier(earned_points: int, tiers: list[tuple[str, int]]) -> str:
    """The highest tier whose threshold ``earned_points`` reaches (tiers: (code, threshold))."""
    reached = [(threshold, code) for code, threshold in tiers if threshold <= earned_points]
    return max(reached)[1] if reached else "standard"


def offline_refusal(scanned_at: dt.datetime, now: dt.datetime, window_h: int,
                    future_skew_s: int) -> str | None:
    """Why an offline scan time is not accepted, or None."""
    if scanned_at.tzinfo is None:
        return "scanned_at_needs_offset"
    if scanned_at > now + dt.timedelta(seconds=future_skew_s):
        return "scanned_at_in_future"
    if scanned_at < now - dt.timedelta(hours=window_h):
        return "offline_window_expired"
    return None
