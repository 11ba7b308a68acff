"""Merchants: partner shops, their reports, and settlement by funder."""
