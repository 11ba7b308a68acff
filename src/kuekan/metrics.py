"""Domain metrics (Prometheus). HTTP RED metrics come from Litestar's Prometheus middleware,
labelled by route template, never by raw path."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

CHECKINS = Counter("kuekan_checkins_total", "Check-ins by decision", ["decision"])
CHECKIN_BATCH_SIZE = Histogram(
    "kuekan_checkin_batch_size", "Check-ins per group-commit batch (kk_checkin_batch call)",
    buckets=(1, 2, 4, 8, 16, 32))
CHECKIN_BATCH_FALLBACKS = Counter(
    "kuekan_checkin_batch_fallbacks", "Check-ins run alone after their batch failed as a whole")
AWARDS = Counter("kuekan_awards_total", "Point awards committed", ["kind"])
AWARDED_POINTS = Counter("kuekan_awarded_points_total", "Points awarded", ["kind"])
REDEMPTIONS = Counter("kuekan_redemptions_total", "Coupons issued and posted", ["phase"])
REFUSALS = Counter("kuekan_refusals_total", "Business refusals by code", ["code"])
REPLAYS = Counter("kuekan_idempotent_replays_total", "Responses replayed for a reused key")
FRAUD_ALERTS = Counter("kuekan_fraud_alerts_total", "Fraud alerts raised", ["rule"])
LINE_429 = Counter("kuekan_line_429_total", "LINE API 429 answers")
OUTBOX_LAG = Gauge("kuekan_outbox_lag_seconds", "Age of the oldest unrelayed outbox row")
OUTBOX_PENDING = Gauge("kuekan_outbox_pending", "Unrelayed outbox rows")
LINE_QUOTA_REMAINING = Gauge("kuekan_line_quota_remaining", "LINE messages left this month")
ANALYTICS_EVENTS = Counter("kuekan_analytics_events_total", "Outbox rows folded into analytics",
                           ["topic"])
ANALYTICS_LAG = Gauge("kuekan_analytics_lag_seconds", "Age of the oldest outbox row not yet"
                      " folded into analytics")
ANALYTICS_PENDING = Gauge("kuekan_analytics_pending", "Outbox rows not yet folded into analytics")
WEBHOOK_DELIVERIES = Counter("kuekan_webhook_deliveries_total", "Agency webhook delivery attempts",
                             ["outcome"])
