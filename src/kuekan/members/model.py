"""Pure rules for the member's pocket."""

from __future__ import annotations

import datetime as dt

from kuekan.kit.clock import BANGKOK


def add_months(month: dt.date, months: int) -> dt.date:
    total = month.year * 12 + month.month - 1 + months
    return dt.date(total // 12, total % 12 + 1, 1)


def lot_expires_at(month: dt.date, expiry_months: int) -> dt.datetime:
    """Points earned in ``month`` expire at the end of the ``expiry_months``-th month after it
    (Asia/Bangkok): earned in Nov 2026 with 12 → expire at 2027-12-01 00:00 +07:00."""
    end = add_months(month, expiry_months + 1)
    return dt.datetime(end.year, end.month, 1, tzinfo=BANGKOK)


def expiry_cutoff(today: dt.date, expiry_months: int) -> dt.date:
    """Lots with a month before this date have expired on ``today``."""
    return add_months(today.replace(day=1), -expiry_months)
