"""Thai/English templates rendered to LINE text messages."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from kuekan.notify.templates import KINDS, TemplateError, render

PARAMS: dict[str, dict[str, Any]] = {
    "points_digest": {"points": 120, "checkins": 3},
    "coupon_expiring": {"coupon_name": "ผัดหมี่โคราช ลด 20%", "days": 3,
                        "expires_on": dt.date(2025, 12, 25)},
    "points_expiring": {"points": 1_500, "expires_on": dt.date(2026, 1, 31)},
    "mission_nearby": {"mission_title": "Check in at Thao Suranari Monument",
                       "district": "Mueang Nakhon Ratchasima"},
    "province_broadcast": {"title": "Korat Creative Splash", "body": "Water zones open 10:00"},
    "disaster_alert": {"hazard": "Flood", "district": "Pak Chong",
                       "instructions": "Move vehicles to higher ground."},
}


def test_every_kind_has_example_params() -> None:
    assert set(PARAMS) == set(KINDS)


def test_points_digest_in_english_reads_as_specified() -> None:
    assert render("points_digest", "en", points=120, checkins=3) == {
        "type": "text", "text": "You earned 120 points from 3 check-ins today",
    }


def test_points_digest_in_english_uses_the_singular_for_one() -> None:
    text = render("points_digest", "en", points=1, checkins=1)["text"]
    assert text == "You earned 1 point from 1 check-in today"


def test_points_digest_in_thai() -> None:
    text = render("points_digest", "th", points=1_200, checkins=4)["text"]
    assert text == "วันนี้คุณได้รับ 1,200 แต้ม จากการเช็กอิน 4 ครั้ง"


def test_thai_dates_use_the_buddhist_era_year() -> None:
    th = render("coupon_expiring", "th", **PARAMS["coupon_expiring"])["text"]
    en = render("coupon_expiring", "en", **PARAMS["coupon_expiring"])["text"]
    assert "25 ธ.ค. 2568" in th
    assert "3 วัน" in th
    assert "25 Dec 2025" in en
    assert "expires in 3 days" in en


@pytest.mark.parametrize("kind", sorted(PARAMS))
@pytest.mark.parametrize("lang", ["th", "en"])
def test_every_kind_renders_its_params_in_both_languages(kind: str, lang: str) -> None:
    message = render(kind, lang, **PARAMS[kind])

    assert message["type"] == "text"
    for value in PARAMS[kind].values():
        if isinstance(value, str):
            assert value in message["text"]
    assert "{" not in message["text"]


def test_thai_and_english_differ() -> None:
    for kind, params in PARAMS.items():
        assert render(kind, "th", **params) != render(kind, "en", **params)


def test_missing_param_is_named() -> None:
    with pytest.raises(TemplateError, match=r"missing params \['checkins'\]"):
        render("points_digest", "en", points=5)


def test_unexpected_param_is_named() -> None:
    with pytest.raises(TemplateError, match=r"unexpected params \['pionts'\]"):
        render("points_digest", "en", points=5, checkins=1, pionts=5)


@pytest.mark.parametrize(
    "params",
    [
        {"points": "5", "checkins": 1},
        {"points": True, "checkins": 1},
        {"points": -5, "checkins": 1},
    ],
)
def test_mistyped_or_negative_param_is_refused(params: dict[str, Any]) -> None:
    with pytest.raises(TemplateError, match="points"):
        render("points_digest", "en", **params)


def test_datetime_is_not_accepted_for_a_date() -> None:
    with pytest.raises(TemplateError, match="expires_on"):
        render("points_expiring", "en", points=5,
               expires_on=dt.datetime(2026, 1, 31, tzinfo=dt.UTC))


def test_unknown_kind_and_language_are_refused() -> None:
    with pytest.raises(TemplateError, match="unknown template"):
        render("lottery_win", "en")
    with pytest.raises(TemplateError, match="unknown language"):
        render("points_digest", "fr", points=1, checkins=1)


def test_text_over_line_limit_is_refused() -> None:
    with pytest.raises(TemplateError, match="5,000"):
        render("province_broadcast", "en", title="t", body="x" * 5_000)
