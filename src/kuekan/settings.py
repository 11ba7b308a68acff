"""Typed settings: ``config/base.toml``, then ``config/<env>.toml``, then ``KUEKAN_*`` variables.

Every bound the service has (pool sizes, TTLs, caps, page sizes) is a field here with its default,
so operators change numbers in config, never in code. The config files are package data
(``kuekan.kit.resources.config_dir``). In ``prod``, :func:`unsafe_for_prod` lists every secret
still at a development default or too short, and the CLI refuses to start on any of them.
"""

from __future__ import annotations

import os
import tomllib
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import msgspec

from kuekan.kit.resources import config_dir

ENVIRONMENTS = ("dev", "test", "prod")
# Keyed hashes (HMAC) are only as strong as their key: shorter keys are refused in prod.
MIN_SECRET_BYTES = 32


class Settings(msgspec.Struct, kw_only=True, frozen=True):
    """All settings of API and worker processes; units are last in names."""

    env: str = "dev"
    # Storage.
    database_url: str = "postgresql://postgres@127.0.0.1:5432/kuekan"
    # The schema owner's URL, used by `migrate` only ("" = database_url, as in dev and test).
    # In prod the app logs in as a role that is a member of kuekan_app and owns nothing, so the
    # audit log's REVOKE and triggers bind it; `migrate` grants kuekan_app to that login.
    migrate_database_url: str = ""
    redis_url: str = "redis://127.0.0.1:6379/0"
    db_pool_min: int = 2
    db_pool_max: int = 20
    db_command_timeout_s: float = 10.0
    # Auth. jwt_keys maps key id -> HS256 secret; the active kid signs, all listed kids verify.
    jwt_keys: dict[str, str] = msgspec.field(
        default_factory=lambda: {"dev1": "dev-secret-change-me-0123456789abcdef"})
    jwt_active_kid: str = "dev1"
    jwt_issuer: str = "kuekan"
    access_ttl_s: int = 900
    refresh_ttl_s: int = 30 * 24 * 3600
    member_qr_ttl_s: int = 60
    # Staff and admin access tokens from LINE sign-in live this long; each request of a staff or
    # admin token is checked against the staff row (disabled, re-linked), cached this long per
    # process, so disabling someone takes effect within staff_check_cache_s.
    staff_access_ttl_s: int = 300
    staff_check_cache_s: float = 2.0
    # Invitation codes for staff and admins expire after this many hours unless given.
    staff_invitation_ttl_h: int = 72
    # LINE Login: ID tokens are verified locally.
    line_channel_id: str = "1650000000"
    line_channel_secret: str = "line-dev-channel-secret"  # noqa: S105 - dev default only
    line_issuer: str = "https://access.line.me"
    line_jwks_url: str = "https://api.line.me/oauth2/v2.1/certs"
    line_jwks_cache_s: int = 3600
    line_api_base: str = "https://api.line.me"
    line_channel_access_token: str = ""
    # Request rate limits (per IP, per member). Business limits are never switched off.
    rate_limits: bool = True
    rate_limit_ip_per_min: int = 6000
    rate_limit_member_per_min: int = 120
    # Reverse proxies (CIDRs, e.g. "10.0.0.0/8") whose X-Forwarded-For is believed: the per-IP
    # limit then counts the client the proxy saw. Empty (the default): the header is ignored,
    # since anyone can send it. KUEKAN_TRUSTED_PROXIES takes a comma-separated list.
    trusted_proxies: list[str] = msgspec.field(default_factory=list)
    # Networks agency webhooks may reach although not public (kuekan.agencies.outbound): only
    # for local fakes in dev and test; empty in prod. KUEKAN_WEBHOOK_ALLOWED_NETWORKS: a list.
    webhook_allowed_networks: list[str] = msgspec.field(default_factory=list)
    # Business limits.
    member_daily_cap_points: int = 1000
    budget_slices: int = 16
    # Group commit of check-ins (kuekan.missions.batch): most check-ins per kk_checkin_batch
    # call (1..32), 0 = every check-in its own transaction.
    checkin_batch_max: int = 16
    points_expiry_months: int = 12
    # Idempotency.
    idempotency_retention_days: int = 30
    idempotency_inflight_ttl_s: int = 30
    # Lists.
    page_limit_default: int = 50
    page_limit_max: int = 200
    log_level: str = "info"
    log_json: bool = True
    # Workers (kuekan.outbox): relay batches, job retries with capped exponential backoff.
    outbox_batch_size: int = 500
    outbox_poll_interval_s: float = 0.2
    outbox_max_tries: int = 8
    outbox_retry_base_s: float = 2.0
    outbox_retry_cap_s: float = 600.0
    outbox_job_timeout_s: int = 120
    outbox_orphan_after_s: float = 60.0
    outbox_sweep_limit: int = 1000
    # Fraud thresholds (kuekan.fraud); each rule has its reason code in kuekan.fraud.model.
    fraud_velocity_window_s: int = 600
    fraud_velocity_max_checkins: int = 5
    fraud_travel_max_kmh: float = 150.0
    fraud_travel_min_km: float = 1.0
    fraud_device_max_accounts: int = 3
    fraud_device_window_days: int = 30
    fraud_burst_window_s: int = 3600
    fraud_burst_factor: float = 5.0
    fraud_burst_min_awards: int = 30
    fraud_burst_baseline_days: int = 7
    fraud_loop_window_h: int = 24
    fraud_loop_min_cycles: int = 3
    fraud_accuracy_perfect_m: float = 1.0
    fraud_accuracy_repeat_count: int = 3
    fraud_geofence_burst_window_s: int = 60
    fraud_geofence_burst_max: int = 200
    fraud_strikes_to_ban: int = 3
    # Notifications (kuekan.notify): LINE digest hour (Asia/Bangkok), SMS gateway, OTP.
    line_digest_hour_local: int = 20
    line_district_audiences: dict[str, int] = msgspec.field(default_factory=dict)
    sms_api_base: str = ""
    sms_api_key: str = ""
    otp_ttl_s: int = 300
    otp_attempts_max: int = 5
    # OTP SMS a caller may ask for per fixed hour (kuekan.notify.otplimit): each one is a paid
    # SMS to a number the caller picks, so one account, one phone and the whole service are
    # each bounded.
    otp_per_member_per_hour: int = 5
    otp_per_phone_per_hour: int = 3
    otp_global_per_hour: int = 2000
    # Audit hash chain: each row's hash is an HMAC-SHA256 keyed with this secret, so rewriting
    # rows and recomputing the chain needs the key (ops/RUNBOOK.md: rotating it). The prod
    # value comes from KUEKAN_AUDIT_HMAC_KEY.
    audit_hmac_key: str = "dev-audit-hmac-key-change-me"
    # Keys that sealed older rows, still accepted by verify-audit after a rotation.
    audit_hmac_retired_keys: list[str] = msgspec.field(default_factory=list)
    # Rows hashed before the chain was keyed (migration 0110) verify as plain SHA-256 up to
    # this id; any later unkeyed row is a rewrite.
    audit_legacy_max_id: int = 0
    # PDPA: salt of the pseudonym an erased member's LINE id is replaced with.
    privacy_pseudonym_salt: str = "dev-pseudonym-salt-change-me"
    # Processed outbox rows keep personal payload keys (coordinates, phones...) this long.
    outbox_personal_retention_h: int = 24
    # Worker Prometheus endpoint (0: off, as in tests where several workers share a machine).
    worker_metrics_port: int = 9100


    @property
    def migrations_database_url(self) -> str:
        return self.migrate_database_url or self.database_url


class SettingsError(RuntimeError):
    """Settings that cannot be read or do not type-check; the message names the field."""


def _read_toml(path: Path) -> dict[str, Any]:
    with path.open("rb") as f:
        return tomllib.load(f)


def _env_overrides(fields: set[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in fields:
        raw = os.environ.get(f"KUEKAN_{name.upper()}")
        if raw is None:
            continue
        if name in {"trusted_proxies", "webhook_allowed_networks", "audit_hmac_retired_keys"}:
            out[name] = [item.strip() for item in raw.split(",") if item.strip()]  # a list
        elif name == "jwt_keys":
            # "kid1:secret1,kid2:secret2" keeps secrets out of files.
            out[name] = dict(pair.split(":", 1) for pair in raw.split(",") if ":" in pair)
        elif raw.lower() in {"off", "false", "no", "0"} and name in {"rate_limits", "log_json"}:
            out[name] = False
        elif raw.lower() in {"on", "true", "yes", "1"} and name in {"rate_limits", "log_json"}:
            out[name] = True
        else:
            out[name] = raw
    return out


def load_settings(env: str | None = None) -> Settings:
    """Build settings for ``env`` (default ``KUEKAN_ENV`` or ``dev``)."""
    env = env or os.environ.get("KUEKAN_ENV", "dev")
    if env not in ENVIRONMENTS:
        raise SettingsError(f"KUEKAN_ENV={env!r}: expected one of {', '.join(ENVIRONMENTS)}")
    folder = config_dir()
    merged: dict[str, Any] = {}
    merged.update(_read_toml(folder / "base.toml"))
    merged.update(_read_toml(folder / f"{env}.toml"))
    merged.update(_env_overrides(set(Settings.__struct_fields__)))
    merged["env"] = env
    try:
        return msgspec.convert(merged, Settings, strict=False)
    except msgspec.ValidationError as exc:
        raise SettingsError(f"settings: {exc}") from exc


# Every variable production must set (the Kubernetes Secret, compose and ops/RUNBOOK.md name each).
PROD_SECRETS = (
    "KUEKAN_DATABASE_URL", "KUEKAN_MIGRATE_DATABASE_URL", "KUEKAN_REDIS_URL",
    "KUEKAN_JWT_KEYS", "KUEKAN_JWT_ACTIVE_KID", "KUEKAN_LINE_CHANNEL_ID",
    "KUEKAN_LINE_CHANNEL_SECRET", "KUEKAN_LINE_CHANNEL_ACCESS_TOKEN",
    "KUEKAN_PRIVACY_PSEUDONYM_SALT", "KUEKAN_AUDIT_HMAC_KEY",
)

# Secrets and their development defaults: in prod, none may keep its default.
_DEV_DEFAULTS = Settings()
_SECRETS = ("line_channel_secret", "line_channel_id", "privacy_pseudonym_salt",
            "audit_hmac_key")
_HMAC_KEYS = ("privacy_pseudonym_salt", "audit_hmac_key")


def unsafe_for_prod(settings: Settings) -> list[str]:
    """Why ``settings`` must not run in production (empty when they may)."""
    reasons: list[str] = []
    dev_keys = set(_DEV_DEFAULTS.jwt_keys.values())
    if not settings.jwt_keys:
        reasons.append("KUEKAN_JWT_KEYS is empty")
    for kid, secret in settings.jwt_keys.items():
        if secret in dev_keys:
            reasons.append(f"JWT key {kid!r} is the development default")
        elif len(secret.encode()) < MIN_SECRET_BYTES:
            reasons.append(f"JWT key {kid!r} is shorter than {MIN_SECRET_BYTES} bytes")
    if settings.jwt_active_kid not in settings.jwt_keys:
        reasons.append(f"KUEKAN_JWT_ACTIVE_KID={settings.jwt_active_kid!r} names no key of "
                       f"KUEKAN_JWT_KEYS ({', '.join(settings.jwt_keys) or 'none'})")
    for name in _SECRETS:
        value = getattr(settings, name)
        if not value or value == getattr(_DEV_DEFAULTS, name):
            reasons.append(f"KUEKAN_{name.upper()} is unset or the development default")
    if not settings.migrate_database_url or (
            _login(settings.migrate_database_url) == _login(settings.database_url)):
        reasons.append("KUEKAN_MIGRATE_DATABASE_URL must be set and log in as the schema owner, "
                       "a different role from KUEKAN_DATABASE_URL's (the app must own nothing)")
    reasons.extend(f"KUEKAN_{name.upper()} is shorter than {MIN_SECRET_BYTES} bytes"
                   for name in _HMAC_KEYS
                   if len(getattr(settings, name).encode()) < MIN_SECRET_BYTES)
    return reasons


def _login(url: str) -> str:
    return urlsplit(url).username or ""


def require_safe(settings: Settings) -> None:
    """Stop here, saying why, when ``settings`` are ``prod`` with development secrets."""
    if settings.env != "prod":
        return
    reasons = unsafe_for_prod(settings)
    if reasons:
        raise UnsafeSettingsError(
            "refusing to run with KUEKAN_ENV=prod: " + "; ".join(reasons)
            + " (ops/RUNBOOK.md, 'Secrets', lists every variable prod needs)")


class UnsafeSettingsError(RuntimeError):
    """Production settings with a development secret, a short key or a dangling key id."""


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()
