"""Every operation of /schema/openapi.json fuzzed by schemathesis, as each kind of caller.

For each caller (admin, merchant staff, member, anonymous) and each operation, schemathesis
generates requests that fit the schema (positive) and requests that break it (negative: wrong
types, out-of-range numbers, over-long strings, missing fields). The service must answer every
one without a 5xx, and every 4xx must be ``application/problem+json`` with a ``code``.

Random generation rarely steps past a bound the schema does not state, so each operation also
gets explicit edge cases (``_edge_cases``: ids past int64, NUL, over-long text, year 9999 in each
parameter) and hostile twins of its first generated bodies (``_hostile_twin``).

Budget: ``FUZZ_EXAMPLES`` generated requests per operation for the callers the operation is
meant for, ``FUZZ_EXAMPLES_OTHER`` for callers its guard refuses (the request never gets past the
guard, so a few are enough), derandomized (the same cases every run), no shrinking. The four
callers over ~90 operations take about a minute on the 2-core reference machine;
``KUEKAN_FUZZ_EXAMPLES`` raises the budget for a longer run.
"""

from __future__ import annotations

import os
import time
from decimal import Decimal
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode

from kuekan.auth.tokens import Principal
from kuekan.members import repository as members_repo
from kuekan.merchants import repository as merchants_repo
from tests.conftest import World

FUZZ_EXAMPLES = int(os.environ.get("KUEKAN_FUZZ_EXAMPLES", "25"))
FUZZ_EXAMPLES_OTHER = max(2, FUZZ_EXAMPLES // 4)
ROLE_BUDGET_S = 60.0 * max(1, FUZZ_EXAMPLES // 25)  # a tripwire, far above a normal run
TWINS_PER_OPERATION = 2
HOSTILE: dict[str, list[Any]] = {
    "integer": [2**63, -(2**63) - 1, 2**64],
    "string": ["a\x00b", "x" * 5000],
    "date": ["9999-12-31", "0001-01-01"],
    "date-time": ["9999-12-31T23:59:59+00:00", "0001-01-01T00:00:00+00:00"],
}
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


def _kind(schema: dict[str, Any]) -> str:
    for option in [schema, *schema.get("oneOf", []), *schema.get("anyOf", [])]:
        types = option.get("type")
        for kind in types if isinstance(types, list) else [types]:
            if kind == "string" and option.get("format") in HOSTILE:
                return str(option["format"])
            if kind in HOSTILE:
                return str(kind)
    return ""


def _edge_cases(operation: Any) -> list[Any]:
    """Past-the-bound values in each path and query parameter, one parameter at a time: the
    values random generation rarely reaches (a schema without bounds gives it nothing to step
    past), and which once answered 500."""
    plain = {p.name: 1 for p in operation.path_parameters}
    cases = []
    for where, params in (("path", operation.path_parameters), ("query", operation.query)):
        for param in params:
            for value in HOSTILE.get(_kind(param.definition.get("schema", {})), []):
                if where == "path":
                    cases.append(operation.Case(path_parameters={**plain, param.name: value}))
                else:
                    cases.append(operation.Case(path_parameters=plain, query={param.name: value}))
    return cases


def _hostile_twin(body: dict[str, Any]) -> dict[str, Any]:
    """The same body with every top-level integer past int64 and every string carrying a NUL."""
    return {k: (2**63 if isinstance(v, int) and not isinstance(v, bool)
                else f"{v}\x00" if isinstance(v, str) else v) for k, v in body.items()}


def _fuzz_operation(operation: Any, base_url: str, headers: dict[str, str], examples: int,
                    session: requests.Session) -> list[str]:
    failures: list[str] = []
    twins_left = [TWINS_PER_OPERATION]
    strategy = st.one_of(operation.as_strategy(GenerationMode.POSITIVE),
                         operation.as_strategy(GenerationMode.NEGATIVE))

    def send(case: Any) -> None:
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

    @settings(max_examples=examples, deadline=None, database=None, derandomize=True,
              phases=[Phase.explicit, Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(case=strategy)
    def run(case: Any) -> None:
        send(case)
        if twins_left[0] and isinstance(case.body, dict) and case.body:
            twins_left[0] -= 1
            send(operation.Case(path_parameters=case.path_parameters, query=case.query,
                                body=_hostile_twin(case.body), media_type=case.media_type))

    for edge in _edge_cases(operation):
        run = example(case=edge)(run)
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
