"""Worker jobs of the rewards domain; each is idempotent and bounded.

* ``void_expired_coupons`` (every minute): unused coupons past expiry return points and stock.
* ``expire_points`` (nightly): lots older than the expiry window move to the expired account.
* ``tier_yearly_review`` (1 January, Asia/Bangkok): tiers follow the last 12 months, up or down.
* ``cleanup_qr_uses`` (hourly): forget member QR token uses older than any offline window.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from arq import cron

from kuekan.kit.clock import bangkok_day, utcnow
from kuekan.ledger import repository as ledger_repo
from kuekan.logging import get_logger
from kuekan.members.model import expiry_cutoff
from kuekan.rewards import model
from kuekan.rewards import repository as repo

log = get_logger(__name__)


async def void_expired_coupons(ctx: dict[str, Any], now: dt.datetime | None = None) -> int:
    """Void every coupon expired at ``now``; a coupon is voided once even if two runs overlap
    (the status guard in ``kk_void_coupon`` under the coupon's row lock)."""
    config = model.load_config()
    now = now or utcnow()
    voided = 0
    for _ in range(1000):
        ids = await repo.expired_coupon_ids(ctx["pool"], now, config.coupon_void_batch)
        for coupon_id in ids:
            voided += await repo.void_coupon(ctx["pool"], coupon_id, now)
        if len(ids) < config.coupon_void_batch:
            break
    log.info("coupons_voided", count=voided)
    return voided


async def expire_points(ctx: dict[str, Any], today: dt.date | None = None) -> int:
    """Expire what is left of every lot older than the window (never from a total)."""
    settings = ctx["settings"]
    config = model.load_config()
    cutoff = expiry_cutoff(today or bangkok_day(), settings.points_expiry_months)
    total = 0
    for _ in range(config.expiry_batches_max):
        async with ctx["pool"].acquire() as conn, conn.transaction():
            rows = await ledger_repo.expire_lots(conn, cutoff, config.expiry_batch,
                                                 settings.budget_slices)
        total += sum(r["points"] for r in rows)
        if len(rows) < config.expiry_batch:
            break
    log.info("points_expired", cutoff=cutoff.isoformat(), points=total)
    return total


async def tier_yearly_review(ctx: dict[str, Any], today: dt.date | None = None) -> int:
    """Set every member to the tier their rolling 12 months earn; the only downgrade path."""
    config = model.load_config()
    today = today or bangkok_day()
    after, changed = 0, 0
    while True:
        async with ctx["pool"].acquire() as conn, conn.transaction():
            rows = await repo.tier_review(conn, today, after, config.tier_review_batch)
        changed += sum(1 for r in rows if r["from_tier"] != r["to_tier"])
        if len(rows) < config.tier_review_batch:
            break
        after = rows[-1]["member_id"]
    log.info("tier_review_done", changed=changed)
    return changed


async def cleanup_qr_uses(ctx: dict[str, Any]) -> int:
    config = model.load_config()
    before = utcnow() - dt.timedelta(hours=config.qr_use_retention_h)
    return await repo.delete_old_qr_uses(ctx["pool"], before)


JOBS = [void_expired_coupons, expire_points, tier_yearly_review, cleanup_qr_uses]
CRON = [
    cron(void_expired_coupons, second={5}),  # every minute
    cron(expire_points, hour={17}, minute={5}),  # 00:05 Asia/Bangkok
    cron(tier_yearly_review, month={12}, day={31}, hour={17}, minute={30}),  # 1 Jan 00:30 +07
    cron(cleanup_qr_uses, minute={40}),
]
