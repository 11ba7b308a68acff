"""Rewards: catalogue, two-phase redemption with coupons, member QR scans, tiers, expiry."""

from kuekan.rewards import refusals as refusals  # registers this domain's codes
