"""Time helpers: UTC in storage, Asia/Bangkok for business days."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

BANGKOK = ZoneInfo("Asia/Bangkok")


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def bangkok_day(at: dt.datetime | None = None) -> dt.date:
    """The Asia/Bangkok calendar day of ``at`` (default: now)."""
    return (at or utcnow()).astimezone(BANGKOK).date()


def month_start(day: dt.date) -> dt.date:
    return day.replace(day=1)
