"""Every operation of /schema/openapi.json fuzzed by schemathesis, as each kind of caller.

For each caller (admin, merchant staff, member, anonymous) and each operation, schemathesis
generates requests that fit the schema (positive) and requests that break it (negative: wrong
types, out-of-range numbers, over-long strings, missing fields). The service must answer every
one without a 5xx, and every 4xx must be ``application/problem+json`` with a ``code``.

Budget: ``FUZZ_EXAMPLES`` requests per operation and caller for the callers the operation is
meant for, ``FUZZ_EXAMPLES_OTHER`` for callers its guard refuses (the request never gets past the
guard, so a few are enough), no shrinking. 87 operations x 4 callers stay well under two minutes
on the 2-core reference machine; ``KUEKAN_FUZZ_EXAMPLES`` raises the budget for a longer run.
"""

from __future__ import annotations

import os
import time
from decimal import Decimal
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode

from kuekan.auth.tokens import Principal
from kuekan.members import repository as members_repo
from kuekan.merchants import repository as merchants_repo
from tests.conftest import World

FUZZ_EXAMPLES = int(os.environ.get("KUEKAN_FUZZ_EXAMPLES", "12"))
FUZZ_EXAMPLES_OTHER = max(2, FUZZ_EXAMPLES // 4)
ROLE_BUDGET_S = 60.0 * max(1, FUZZ_EXAMPLES // 12)  # a tripwire, far above a normal run
PREFIX_BY_ROLE = {"admin": ("/api/v1/admin",), "merchant": ("/api/v1/merchant",),
                  "member": ("/api/v1/me", "/api/v1/missions", "/api/v1/checkins",
                             "/api/v1/rewards", "/api/v1/redemptions"),
                  "anonymous": ("/api/v1/auth", "/api/v1/line", "/api/v1/agency", "/metrics")}


@pytest.fixture(scope="module")
def openapi(api_url: str) -> Any:
    return schemathesis.openapi.from_url(f"{api_url}/schema/openapi.json")


@pytest.fixture(scope="module")
async def callers(pool: Any, tokens: Any, settings: Any) -> dict[str, dict[str, str]]:
    world = World(pool, tokens, settings)
    _, member = await world.member("Ufuzz")
    funder = await world.funder()
    merchant_id = await merchants_repo.create_merchant(
        pool, name="Fuzz shop", district_code="3001", lat=14.97, lon=102.1, category="food",
        thb_per_point=Decimal(10), min_spend_thb=Decimal(0), funder_id=funder,
        daily_award_cap_points=None)
    sid = await members_repo.ensure_staff(pool, "Ufuzz-staff", "merchant", merchant_id, None)
    merchant = world.auth(Principal("merchant", sid, "Ufuzz-staff", merchant_id=merchant_id))
    return {"admin": await world.admin(), "merchant": merchant, "member": member,
            "anonymous": {}}


def _problems(response: schemathesis.Response) -> str | None:
    """What is wrong with one answer, or None."""
    if response.status_code >= 500:
        return f"{response.status_code}: {response.text[:300]}"
    if response.status_code >= 400:
        content_type = (response.headers.get("content-type") or [""])[0]
        if not content_type.startswith("application/problem+json"):
            return f"{response.status_code} not problem+json: {response.text[:200]}"
        try:
            body = response.json()
        except ValueError:
            return f"{response.status_code} body is not JSON: {response.text[:200]}"
        if not isinstance(body, dict) or not body.get("code"):
            return f"{response.status_code} problem without a code: {response.text[:200]}"
    return None


def _fuzz_operation(operation: Any, base_url: str, headers: dict[str, str], examples: int,
                    session: requests.Session) -> list[str]:
    failures: list[str] = []
    strategy = st.one_of(operation.as_strategy(GenerationMode.POSITIVE),
                         operation.as_strategy(GenerationMode.NEGATIVE))

    @settings(max_examples=examples, deadline=None, database=None, derandomize=True,
              phases=[Phase.explicit, Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(case=strategy)
    def run(case: Any) -> None:
        try:
            response = case.call(base_url=base_url, session=session,
                                 headers={**headers, "Idempotency-Key": os.urandom(8).hex()},
                                 timeout=30)
        except requests.RequestException as exc:
            failures.append(f"{operation.label}: {type(exc).__name__}: {exc}")
            return
        problem = _problems(response)
        if problem and len(failures) < 5:
            failures.append(f"{operation.label}: {problem}\n    "
                            f"{case.as_curl_command(base_url=base_url)[:600]}")

    run()
    return failures


@pytest.mark.parametrize("role", ["admin", "merchant", "member", "anonymous"])
def test_no_operation_answers_5xx_or_a_4xx_without_a_problem_code(
        role: str, openapi: Any, callers: dict[str, dict[str, str]], api_url: str) -> None:
    operations = [r.ok() for r in openapi.get_all_operations()]
    assert len(operations) >= 80, "the OpenAPI document lost operations"
    started = time.monotonic()
    failures: list[str] = []
    with requests.Session() as session:
        for operation in operations:
            own = operation.path.startswith(PREFIX_BY_ROLE[role])
            failures += _fuzz_operation(operation, api_url, callers[role],
                                        FUZZ_EXAMPLES if own else FUZZ_EXAMPLES_OTHER, session)
    elapsed = time.monotonic() - started
    assert not failures, "\n".join(failures)
    assert elapsed < ROLE_BUDGET_S, f"fuzzing as {role} took {elapsed:.0f} s"
