"""Pure foundation rules: settings, expiry dates, idempotency keys and hashes."""

from __future__ import annotations

import datetime as dt

import pytest

from kuekan.errors import DomainError
from kuekan.idempotency import Stored, request_hash, resolve_stored, validate_key
from kuekan.kit.clock import BANGKOK, bangkok_day
from kuekan.members.model import expiry_cutoff, lot_expires_at
from kuekan.settings import load_settings


def test_env_overrides_toml(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUEKAN_MEMBER_DAILY_CAP_POINTS", "1500")
    monkeypatch.setenv("KUEKAN_RATE_LIMITS", "off")
    monkeypatch.setenv("KUEKAN_JWT_KEYS", "a:secret-a,b:secret-b")
    s = load_settings("dev")
    assert s.member_daily_cap_points == 1500
    assert s.rate_limits is False
    assert s.jwt_keys == {"a": "secret-a", "b": "secret-b"}


def test_points_expire_at_the_end_of_the_12th_month_after_earning() -> None:
    assert lot_expires_at(dt.date(2026, 11, 1), 12) == dt.datetime(2027, 12, 1, tzinfo=BANGKOK)
    assert lot_expires_at(dt.date(2026, 1, 1), 12) == dt.datetime(2027, 2, 1, tzinfo=BANGKOK)
    # On 2027-12-01 the November 2026 lot has expired, the December 2026 lot has not.
    assert expiry_cutoff(dt.date(2027, 12, 1), 12) == dt.date(2026, 12, 1)
    assert expiry_cutoff(dt.date(2027, 11, 30), 12) == dt.date(2026, 11, 1)


def test_business_day_is_asia_bangkok() -> None:
    late_utc = dt.datetime(2026, 11, 22, 18, 30, tzinfo=dt.UTC)  # 01:30 on the 23rd in Korat
    assert bangkok_day(late_utc) == dt.date(2026, 11, 23)


@pytest.mark.parametrize("key", [None, "", "x" * 256, "bad\nkey"])
def test_invalid_idempotency_keys_are_refused(key: str | None) -> None:
    with pytest.raises(DomainError) as err:
        validate_key(key)
    assert err.value.code == "idempotency_key_required" and err.value.status == 400


def test_stored_key_replays_only_the_same_body() -> None:
    h = request_hash({"points": 5})
    stored = Stored(hash=h, status=201, body={"transfer_id": 1})
    assert resolve_stored(stored, h).body == {"transfer_id": 1}
    with pytest.raises(DomainError) as err:
        resolve_stored(stored, request_hash({"points": 6}))
    assert err.value.code == "idempotency_key_reused" and err.value.status == 422
    with pytest.raises(DomainError) as busy:
        resolve_stored(Stored(hash=h, status=0, body=None), h)
    assert busy.value.code == "idempotency_key_in_flight"
