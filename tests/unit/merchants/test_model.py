"""Settlement netting and report periods (kuekan.merchants.model)."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kuekan.errors import DomainError
from kuekan.merchants.model import REPORT_DAYS_MAX, day_range, month_range, netting

ROW = st.fixed_dictionaries({
    "funder_id": st.integers(1, 6), "merchant_id": st.integers(1, 6),
    "merchant_funder_id": st.integers(1, 6), "points": st.integers(0, 10**9)})


@given(rows=st.lists(ROW, max_size=60))
def test_netting_balances_what_funders_owe_with_what_merchants_receive(
        rows: list[dict[str, int]]) -> None:
    report = netting(rows)
    payable = sum(p["points"] for p in report["payable_by_funder"])
    receivable = sum(r["points"] for r in report["receivable_by_merchant"])
    assert payable - receivable == 0
    # Everything spent is either owed or self-funded, nothing lost or made up.
    self_funded = sum(r["points"] for r in rows if r["funder_id"] == r["merchant_funder_id"])
    assert payable + self_funded == sum(r["points"] for r in rows)
    assert [p["owed_points"] for p in report["pairs"]] == [
        0 if r["funder_id"] == r["merchant_funder_id"] else r["points"] for r in rows]


@given(rows=st.lists(ROW, max_size=30))
def test_netting_per_funder_equals_its_rows(rows: list[dict[str, int]]) -> None:
    by_funder = {p["funder_id"]: p["points"] for p in netting(rows)["payable_by_funder"]}
    for funder, owed in by_funder.items():
        assert owed == sum(r["points"] for r in rows if r["funder_id"] == funder
                           and r["funder_id"] != r["merchant_funder_id"])


def test_a_merchant_spending_its_own_points_moves_no_money() -> None:
    report = netting([{"funder_id": 7, "merchant_id": 3, "merchant_funder_id": 7, "points": 50},
                      {"funder_id": 1, "merchant_id": 3, "merchant_funder_id": 7, "points": 20}])
    assert report["payable_by_funder"] == [{"funder_id": 1, "points": 20},
                                           {"funder_id": 7, "points": 0}]
    assert report["receivable_by_merchant"] == [{"merchant_id": 3, "points": 20}]


def test_day_and_month_ranges_default_to_today_and_are_bounded() -> None:
    today = dt.date(2026, 12, 8)
    assert day_range(None, None, today) == (today, today)
    assert month_range("2026-02", None, today) == (dt.date(2026, 2, 1), dt.date(2026, 2, 28))
    assert month_range(None, None, today) == (dt.date(2026, 12, 1), dt.date(2026, 12, 31))
    last = today + dt.timedelta(days=REPORT_DAYS_MAX)
    for start, end in [("2026-12-09", "2026-12-08"), ("2026-12-08", last.isoformat()),
                       ("8/12/2026", None)]:
        with pytest.raises(DomainError) as caught:
            day_range(start, end, today)
        assert caught.value.code == "validation_failed"
