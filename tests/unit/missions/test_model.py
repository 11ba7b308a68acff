"""Mission rules (kuekan.missions.model): activity windows, geofence decisions, venue codes,
validation of what an admin submits."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kuekan.errors import CATALOGUE, DomainError
from kuekan.missions import model

T0 = dt.datetime(2026, 12, 8, tzinfo=dt.UTC)


def _spec(**kw: object) -> model.MissionSpec:
    base: dict[str, object] = {"code": "m1", "kind": "checkin", "title_th": "ภารกิจ",
                               "title_en": "Mission", "points": 10, "funder_id": 1,
                               "starts_at": T0, "geofence_id": 3}
    return model.MissionSpec(**(base | kw))  # type: ignore[arg-type]


def _mission(**kw: object) -> model.Mission:
    base: dict[str, object] = {"id": 1, "code": "m1", "kind": "checkin", "title_th": "ภ",
                               "title_en": "M", "points": 10, "funder_id": 1, "starts_at": T0}
    return model.Mission(**(base | kw))  # type: ignore[arg-type]


@given(offset_h=st.integers(-100, 100))
def test_a_mission_is_active_inside_its_window_only(offset_h: int) -> None:
    m = _mission(ends_at=T0 + dt.timedelta(hours=24))
    now = T0 + dt.timedelta(hours=offset_h)
    assert m.is_active(now) == (0 <= offset_h < 24)
    assert not _mission(status="disabled").is_active(T0)


def test_geofence_decisions_map_to_catalogued_refusals() -> None:
    assert model.decision_refusal("inside") is None
    assert model.decision_refusal("edge") is None
    for decision in ("outside", "inaccurate"):
        code = model.decision_refusal(decision)
        assert code in CATALOGUE and CATALOGUE[code].status == 403


@given(now_s=st.floats(min_value=1e9, max_value=2e9), rotate_s=st.integers(10, 120),
       grace_s=st.integers(0, 600), age_s=st.floats(min_value=0, max_value=1200))
def test_a_venue_code_is_accepted_within_its_window_and_grace_only(
        now_s: float, rotate_s: int, grace_s: int, age_s: float) -> None:
    secret = "ab" * 32
    shown_at = now_s - age_s
    code = model.venue_code(secret, 7, model.venue_window(shown_at, rotate_s))
    ok = model.verify_venue_code(code, secret=secret, mission_id=7, now_s=now_s,
                                 rotate_s=rotate_s, grace_s=grace_s)
    if age_s <= grace_s:
        assert ok
    if model.venue_window(shown_at, rotate_s) < model.venue_window(now_s - grace_s, rotate_s):
        assert not ok
    # Another mission's code, or a mangled one, never passes.
    assert not model.verify_venue_code(code, secret=secret, mission_id=8, now_s=shown_at,
                                       rotate_s=rotate_s, grace_s=grace_s)
    assert not model.verify_venue_code(None, secret=secret, mission_id=7, now_s=now_s,
                                       rotate_s=rotate_s, grace_s=grace_s)


def test_valid_specs_pass_and_broken_ones_name_their_rule() -> None:
    assert model.validate_spec(_spec()) is not None
    broken = [
        _spec(ends_at=T0),  # ends before it starts
        _spec(starts_at=T0.replace(tzinfo=None)),  # no offset
        _spec(geofence_id=None),  # a check-in needs a place or a venue code
        _spec(kind="event", ends_at=None),
        _spec(kind="purchase", geofence_id=None),  # no minimum spend
        _spec(reward_multiplier=2),  # without its days
    ]
    for spec in broken:
        with pytest.raises(DomainError) as caught:
            model.validate_spec(spec)
        assert caught.value.code == "validation_failed" and caught.value.status == 422
        assert caught.value.message_en != CATALOGUE["validation_failed"].en
