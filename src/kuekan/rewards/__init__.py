"""Rewards: catalogue, two-phase redemption with coupons, member QR scans, tiers, expiry."""
