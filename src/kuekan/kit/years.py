"""The years a caller's dates may fall in: pure, so domain models can check them too."""

from __future__ import annotations

import datetime as dt

YEAR_MIN = 2000
YEAR_MAX = 2100
DAY_MIN = dt.date(YEAR_MIN, 1, 1)
DAY_MAX = dt.date(YEAR_MAX, 12, 31)


def out_of_range(value: dt.date | dt.datetime | None) -> bool:
    """Whether a caller's day or instant falls outside YEAR_MIN..YEAR_MAX (None is in range)."""
    return value is not None and not YEAR_MIN <= value.year <= YEAR_MAX

__all__ = ["DAY_MAX", "DAY_MIN", "YEAR_MAX", "YEAR_MIN", "out_of_range"]
