"""The access policy and the staff-row check, without storage."""

from __future__ import annotations

from typing import Any

import pytest

from kuekan.auth import policy
from kuekan.auth.staff import row_matches
from kuekan.auth.tokens import Principal


@pytest.mark.parametrize(("role", "org", "declared", "allowed"), [
    ("admin", "pao", "pao", True), ("admin", "chamber", "pao", False),
    ("admin", "sponsor", "pao", False), ("admin", "chamber", "org", True),
    ("admin", "sponsor", "shared", True), ("merchant", None, "org", False),
    ("member", None, "shared", False), ("admin", None, "org", False),
    ("admin", "chamber", "access:business", True), ("admin", "sponsor", "access:aggregate", False),
    ("merchant", None, "access:shop", True), ("admin", "pao", "access:shop", False),
])
def test_allows_by_role_organisation_and_policy(role: str, org: str | None, declared: str,
                                                allowed: bool) -> None:
    assert policy.allows(role, org, declared) is allowed


def test_route_policy_reads_policy_or_analytics_access_and_nothing_else() -> None:
    assert policy.route_policy({"policy": "org"}) == "org"
    assert policy.route_policy({"access": "members"}) == "access:members"
    assert policy.route_policy({"policy": "everyone"}) is None
    assert policy.route_policy({}) is None


def test_only_the_pao_acts_for_every_organisation() -> None:
    pao = Principal("admin", 1, org="pao")
    chamber = Principal("admin", 2, org="chamber")
    assert policy.org_scope(pao) is None and policy.org_scope(chamber) == "chamber"
    assert policy.may_act_for(pao, "chamber") and policy.may_act_for(chamber, "chamber")
    assert not policy.may_act_for(chamber, "pao") and not policy.may_act_for(chamber, None)


def _row(**kw: Any) -> dict[str, Any]:
    return {"status": "active", "token_version": 3, "role": "merchant", "merchant_id": 7,
            "org": None, **kw}


def test_a_staff_token_matches_only_its_live_row_at_the_same_version() -> None:
    p = Principal("merchant", 5, merchant_id=7, version=3)
    assert row_matches(p, _row())
    assert not row_matches(p, None)
    assert not row_matches(p, _row(status="disabled"))
    assert not row_matches(p, _row(token_version=4))
    assert not row_matches(p, _row(merchant_id=8))
    assert not row_matches(p, _row(role="admin", org="pao"))
