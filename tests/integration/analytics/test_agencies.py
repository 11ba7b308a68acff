"""Agency API keys with scopes, read-only stats, and HMAC-signed webhooks that are retried."""

from __future__ import annotations

import json
import time

import asyncpg
import httpx
import pytest
import redis.asyncio as aioredis
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from kuekan.agencies import model
from kuekan.agencies.service import deliver_due
from tests.conftest import World
from tests.integration.analytics.helpers import MUEANG, drain, emit

# The test config lets webhooks reach the local fake receiver on loopback.
LOCAL = ["127.0.0.0/8"]


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
        first = await deliver_due(pool, client, LOCAL)
        assert first["retry"] == 1 and first["delivered"] == 0
        # Not due yet: backoff holds it back.
        assert (await deliver_due(pool, client, LOCAL)) == {"delivered": 0, "retry": 0, "failed": 0}
        await pool.execute("update webhook_deliveries set next_attempt_at = now()"
                           " where webhook_id = $1", hook["id"])
        second = await deliver_due(pool, client, LOCAL)
        assert second["delivered"] == 1
        await pool.execute("update webhook_deliveries set next_attempt_at = now()"
                           " where webhook_id = $1", hook["id"])
        assert (await deliver_due(pool, client, LOCAL))["delivered"] == 0

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


@pytest.mark.parametrize("url", [
    "https://10.0.0.5/hook", "https://169.254.169.254/latest/meta-data/",
    "https://192.168.1.10/hook", "https://100.100.100.200/hook", "https://[fd00:ec2::254]/",
    "https://[::ffff:10.0.0.1]/hook", "https://224.0.0.1/hook", "https://host.invalid/hook",
])
async def test_a_webhook_to_a_non_public_address_is_refused(
        http: httpx.AsyncClient, world: World, url: str) -> None:
    pao = await world.admin("pao")
    key = await _key(http, pao, ["webhooks"])
    r = await http.post("/admin/agencies/webhooks", headers=pao, json={
        "agency_key_id": key["id"], "url": url, "topics": ["mission.completed"]})
    assert r.status_code == 422, r.text
    assert r.json()["code"] == "webhook_url_refused"


async def test_a_webhook_whose_address_is_no_longer_allowed_is_given_up_without_a_call(
        http: httpx.AsyncClient, world: World, pool: asyncpg.Pool, redis: aioredis.Redis,
        httpserver: HTTPServer) -> None:
    """The address is checked again at each delivery (DNS may have changed since the webhook
    was created): here the loopback exemption of the test config is gone, as in prod."""
    pao = await world.admin("pao")
    key = await _key(http, pao, ["webhooks"])
    httpserver.expect_request("/rebound", method="POST").respond_with_data("ok")
    r = await http.post("/admin/agencies/webhooks", headers=pao, json={
        "agency_key_id": key["id"], "url": httpserver.url_for("/rebound"),
        "topics": ["mission.completed"]})
    assert r.status_code == 201, r.text
    hook = r.json()
    await drain(pool, redis)
    member_id, _ = await world.member()
    await emit(pool, "checkin.completed", member_id, mission_id=4243, decision="inside",
               points_awarded=10, lat=MUEANG[0], lon=MUEANG[1])
    assert (await drain(pool, redis)).webhooks >= 1  # earlier tests' webhooks get it too
    async with httpx.AsyncClient() as client:
        outcome = await deliver_due(pool, client, [])
    assert outcome["failed"] >= 1 and outcome["delivered"] == 0, outcome
    assert httpserver.log == []
    row = await pool.fetchrow("select status, last_error from webhook_deliveries"
                              " where webhook_id = $1", hook["id"])
    assert row["status"] == "failed" and row["last_error"].startswith("refused:"), dict(row)
