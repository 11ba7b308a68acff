"""Pure helpers for reports and settlement: periods and netting (files: kuekan.kit.export)."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from kuekan.errors import invalid
from kuekan.kit.years import YEAR_MAX, YEAR_MIN, out_of_range

REPORT_DAYS_MAX = 366


def _check_years(*days: dt.date) -> None:
    if any(out_of_range(d) for d in days):
        raise invalid(f"from/to must be between {YEAR_MIN} and {YEAR_MAX}",
                      f"from/to ต้องอยู่ระหว่างปี {YEAR_MIN} ถึง {YEAR_MAX}")


def day_range(start: str | None, end: str | None, today: dt.date) -> tuple[dt.date, dt.date]:
    """Inclusive [from, to] Asia/Bangkok days; defaults to today; bounded to a year."""
    try:
        first = dt.date.fromisoformat(start) if start else today
        last = dt.date.fromisoformat(end) if end else first
    except ValueError:
        raise invalid("from/to must be YYYY-MM-DD", "from/to ต้องอยู่ในรูปแบบ YYYY-MM-DD") from None
    _check_years(first, last)
    if last < first or (last - first).days >= REPORT_DAYS_MAX:
        raise invalid(f"to must be on or after from, at most {REPORT_DAYS_MAX} days",
                      "ช่วงวันที่ไม่ถูกต้อง")
    return first, last


def month_range(start: str | None, end: str | None, today: dt.date) -> tuple[dt.date, dt.date]:
    """Inclusive months given as YYYY-MM, returned as (first day, last day)."""
    try:
        first = dt.date.fromisoformat(f"{start}-01") if start else today.replace(day=1)
        last_m = dt.date.fromisoformat(f"{end}-01") if end else first
    except ValueError:
        raise invalid("from/to must be YYYY-MM", "from/to ต้องอยู่ในรูปแบบ YYYY-MM") from None
    _check_years(first, last_m)
    nxt = (last_m.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
    last = nxt - dt.timedelta(days=1)
    if last < first or (last - first).days >= 5 * REPORT_DAYS_MAX:
        raise invalid("to must be on or after from (at most 5 years)", "ช่วงเดือนไม่ถูกต้อง")
    return first, last


def netting(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """What each funder owes each merchant for points spent there.

    Rows are gross (funder, merchant, points). Points a merchant funded itself and that were
    spent at the same merchant need no money to move, so they net to zero and are left out of
    payables; everything else is owed by the funder to the merchant.
    """
    payable: dict[int, int] = defaultdict(int)
    receivable: dict[int, int] = defaultdict(int)
    pairs: list[dict[str, Any]] = []
    for r in rows:
        self_funded = r["funder_id"] == r["merchant_funder_id"]
        owed = 0 if self_funded else int(r["points"])
        payable[r["funder_id"]] += owed
        receivable[r["merchant_id"]] += owed
        pairs.append({"funder_id": r["funder_id"], "merchant_id": r["merchant_id"],
                      "points": int(r["points"]), "self_funded": self_funded,
                      "owed_points": owed})
    return {
        "pairs": pairs,
        "payable_by_funder": [{"funder_id": k, "points": v} for k, v in sorted(payable.items())],
        "receivable_by_merchant": [{"merchant_id": k, "points": v}
                                   for k, v in sorted(receivable.items())],
    }
