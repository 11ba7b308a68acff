"""Open API for partner agencies: scoped API keys, read-only statistics, signed webhooks."""
