"""Open API for partner agencies: scoped API keys, read-only statistics, signed webhooks."""

from kuekan.agencies import refusals as refusals  # registers this domain's codes
