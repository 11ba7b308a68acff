"""Bad input on every route of the OpenAPI document: a clear problem+json, never a 5xx."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import World

JSON = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner,
                                                                max_size=5),
    max_leaves=12,
)


async def _routes(http: httpx.AsyncClient) -> list[tuple[str, str]]:
    schema = (await http.get("/../../schema/openapi.json")).json()
    out = []
    for path, ops in schema["paths"].items():
        for method in ops:
            if method in {"post", "put", "patch", "delete", "get"}:
                concrete = path.replace("{", "").replace("}", "")
                concrete = "".join(
                    "1" if part.endswith("_id") or part == "id" else part
                    for part in concrete.split("/")) if "{" in path else path
                out.append((method.upper(), concrete.removeprefix("/api/v1")))
    return out


async def test_every_route_answers_garbage_with_a_problem_not_a_5xx(
        http: httpx.AsyncClient, world: World) -> None:
    routes = await _routes(http)
    assert len(routes) >= 8
    _, member = await world.member()
    admin = await world.admin()
    bodies: list[Any] = [None, {}, [], "x", 12, {"points": "many"}, {"member_id": -1},
                         {"points": 10**30}, {"a": {"b": [1, 2, {"c": None}]}}]
    for method, path in routes:
        for headers in (member, admin, {}):
            for body in bodies:
                r = await http.request(method, path, headers=headers | {
                    "Idempotency-Key": uuid.uuid4().hex}, json=body)
                assert r.status_code < 500, (method, path, body, r.status_code, r.text[:300])
                if r.status_code >= 400:
                    assert r.headers["content-type"].startswith("application/problem+json"), (
                        method, path, r.text[:200])
                    problem = r.json()
                    assert problem["code"] and problem["message_th"], problem
                    assert "Traceback" not in r.text


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(body=JSON)
async def test_award_endpoint_survives_arbitrary_json(
        http: httpx.AsyncClient, world: World, body: Any) -> None:
    admin = await world.admin()
    r = await http.post("/admin/awards", headers=admin | {"Idempotency-Key": uuid.uuid4().hex},
                        json=body)
    assert r.status_code in {201, 400, 404, 409, 422}, r.text
