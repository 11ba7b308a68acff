"""Agency API keys with scopes, read-only stats, and HMAC-signed webhooks that are retried."""

from __future__ import annotations

import json
import time

import asyncpg
import httpx
import redis.asyncio as aioredis
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from kuekan.agencies import model
from kuekan.agencies.service import deliver_due
from tests.conftest import World
from tests.integration.analytics.helpers import MUEANG, drain, emit


async def _key(http: httpx.AsyncClient, pao: dict[str, str], scopes: list[str]) -> dict:  # type: ignore[type-arg]
    r = await http.post("/admin/agencies/keys", headers=pao,
                        json={"agency": "Korat Tourism Office", "scopes": scopes})
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


async def test_agency_keys_are_scoped_revocable_and_managed_by_the_pao_only(
        http: httpx.AsyncClient, world: World) -> None:
    pao, chamber = await world.admin("pao"), await world.admin("chamber")
    denied = await http.post("/admin/agencies/keys", headers=chamber,
                             json={"agency": "x", "scopes": ["stats:read"]})
    assert denied.status_code == 403 and denied.json()["code"] == "forbidden_scope"
    stats = await _key(http, pao, ["stats:read"])
    hooks_only = await _key(http, pao, ["webhooks"])
    ok = await http.get("/agency/stats/daily", headers={"X-Api-Key": stats["key"]})
    assert ok.status_code == 200 and ok.json()["items"]
    assert "member_id" not in json.dumps(ok.json())
    assert (await http.get("/agency/stats/districts", headers={"X-Api-Key": stats["key"]})
            ).json()["type"] == "FeatureCollection"
    no_scope = await http.get("/agency/stats/daily", headers={"X-Api-Key": hooks_only["key"]})
    assert no_scope.status_code == 403 and no_scope.json()["code"] == "api_key_scope_missing"
    assert (await http.get("/agency/stats/daily")).status_code == 401
    assert (await http.get("/agency/stats/daily",
                           headers={"X-Api-Key": stats["key"] + "x"})).status_code == 401
    assert (await http.delete(f"/admin/agencies/keys/{stats['id']}", headers=pao)
            ).status_code == 204
    revoked = await http.get("/agency/stats/daily", headers={"X-Api-Key": stats["key"]})
    assert revoked.status_code == 401 and revoked.json()["code"] == "invalid_api_key"


async def test_webhook_is_signed_retried_after_a_500_and_delivered_once(
        http: httpx.AsyncClient, world: World, pool: asyncpg.Pool, redis: aioredis.Redis,
        httpserver: HTTPServer) -> None:
    pao = await world.admin("pao")
    key = await _key(http, pao, ["stats:read", "webhooks"])
    received: list[Request] = []
    answers = iter([500, 200])

    def handler(request: Request) -> Response:
        received.append(request)
        return Response("ok", status=next(answers))

    httpserver.expect_request("/hook", method="POST").respond_with_handler(handler)
    r = await http.post("/admin/agencies/webhooks", headers=pao, json={
        "agency_key_id": key["id"], "url": httpserver.url_for("/hook"),
        "topics": ["mission.completed"]})
    assert r.status_code == 201, r.text
    hook = r.json()
    await drain(pool, redis)  # earlier events are not delivered to a new webhook
    member_id, _ = await world.member()
    oid = await emit(pool, "checkin.completed", member_id, mission_id=4242, decision="inside",
                     points_awarded=10, lat=MUEANG[0], lon=MUEANG[1])
    await emit(pool, "checkin.completed", member_id, mission_id=4242, decision="outside")
    assert (await drain(pool, redis)).webhooks == 1
    assert (await drain(pool, redis)).webhooks == 0

    async with httpx.AsyncClient() as client:
        first = await deliver_due(pool, client)
        assert first["retry"] == 1 and first["delivered"] == 0
        # Not due yet: backoff holds it back.
        assert (await deliver_due(pool, client)) == {"delivered": 0, "retry": 0, "failed": 0}
        await pool.execute("update webhook_deliveries set next_attempt_at = now()"
                           " where webhook_id = $1", hook["id"])
        second = await deliver_due(pool, client)
        assert second["delivered"] == 1
        await pool.execute("update webhook_deliveries set next_attempt_at = now()"
                           " where webhook_id = $1", hook["id"])
        assert (await deliver_due(pool, client))["delivered"] == 0

    assert len(received) == 2
    req = received[-1]
    body = req.get_data()
    assert model.verify(hook["secret"], body, req.headers[model.SIGNATURE_HEADER],
                        int(time.time()))
    assert not model.verify("whsec_wrong", body, req.headers[model.SIGNATURE_HEADER],
                            int(time.time()))
    payload = json.loads(body)
    assert payload["event"] == "mission.completed" and payload["id"] == oid
    assert payload["mission_id"] == 4242 and payload["district_code"] == "3001"
    assert "member_id" not in payload
    assert req.headers["X-KueKan-Delivery"] == str(payload["delivery_id"])
    row = await pool.fetchrow("select status, attempts, last_status from webhook_deliveries"
                              " where webhook_id = $1", hook["id"])
    assert row is not None
    assert dict(row) == {"status": "delivered", "attempts": 2, "last_status": 200}
