"""Analytics: outbox consumer, rollups, real-time dashboard, cohorts, heat map, ROI, exports."""

from kuekan.analytics import refusals as refusals  # registers this domain's codes
