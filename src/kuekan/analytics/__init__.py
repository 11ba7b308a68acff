"""Analytics: outbox consumer, rollups, real-time dashboard, cohorts, heat map, ROI, exports."""

from kuekan.analytics import refusals as refusals  # registers this domain's codes
from kuekan.analytics.model import allowed as _allowed
from kuekan.auth.policy import register_access_rule as _register

_register(_allowed)  # analytics routes' access classes, decided by this domain's rule
