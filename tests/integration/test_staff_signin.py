"""Staff and admins sign in with LINE by invitation, are disabled within seconds, refresh
tokens rotate (reuse revokes the family) and re-check the principal, and the token CLI refuses
to mint in prod (issue #14 point 3). LINE ID tokens are signed by a local fake JWKS server."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from typing import Any

import asyncpg
import httpx
from pytest_httpserver import HTTPServer

from kuekan.settings import Settings
from tests.conftest import REPO, World
from tests.integration.rewards.helpers import merchant
from tests.integration.test_auth import _id_token, line_api, line_keys  # noqa: F401

LineKeys = tuple[HTTPServer, Any, str]


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def _invite(http: httpx.AsyncClient, admin: dict[str, str], **body: Any) -> str:
    r = await http.post("/admin/invitations", headers=admin, json=body)
    assert r.status_code == 201, r.text
    assert r.json()["code"] and r.json()["role"] == body["role"]
    return str(r.json()["code"])


async def test_an_invited_staff_member_signs_in_with_line_and_is_disabled_within_seconds(
        http: httpx.AsyncClient, world: World, pool: asyncpg.Pool, settings: Settings,
        line_api: str, line_keys: LineKeys) -> None:  # noqa: F811
    _, key, kid = line_keys
    pao = await world.admin("pao")
    shop = await merchant(http, world)
    code = await _invite(http, pao, role="merchant", merchant_id=shop)
    sub = f"U{uuid.uuid4().hex}"
    async with httpx.AsyncClient(base_url=line_api) as c:
        unknown = await c.post("/auth/staff/line", json={
            "id_token": _id_token(key, kid, sub=sub), "nonce": "n-1"})
        assert unknown.status_code == 403 and unknown.json()["code"] == "staff_not_invited"
        r = await c.post("/auth/staff/line", json={
            "id_token": _id_token(key, kid, sub=sub), "nonce": "n-1", "invitation_code": code})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["staff"]["role"] == "merchant" and body["staff"]["merchant_id"] == shop
        assert body["expires_in"] == settings.staff_access_ttl_s < settings.access_ttl_s
        staff_id = body["staff"]["id"]
        reports = await c.get("/merchant/reports/daily", headers=_bearer(body["access_token"]))
        assert reports.status_code == 200, reports.text
        # One invitation, one account.
        reused = await c.post("/auth/staff/line", json={
            "id_token": _id_token(key, kid), "nonce": "n-1", "invitation_code": code})
        assert reused.status_code == 403 and reused.json()["code"] == "invitation_invalid"
        # Signing in again needs no code.
        again = await c.post("/auth/staff/line", json={
            "id_token": _id_token(key, kid, sub=sub), "nonce": "n-1"})
        assert again.status_code == 200 and again.json()["staff"]["id"] == staff_id

        # The admin disables them (through the other API process): refused within seconds.
        off = await http.post(f"/admin/staff/{staff_id}/disable", headers=pao)
        assert off.status_code == 200 and off.json()["status"] == "disabled", off.text
        started = time.monotonic()
        while True:
            r = await c.get("/merchant/reports/daily", headers=_bearer(body["access_token"]))
            if r.status_code != 200:
                break
            assert time.monotonic() - started < settings.staff_check_cache_s + 3
            await asyncio.sleep(0.2)
        assert r.status_code == 401 and r.json()["code"] == "staff_disabled"
        for rt in (body["refresh_token"], again.json()["refresh_token"]):
            ref = await c.post("/auth/refresh", json={"refresh_token": rt})
            assert ref.status_code == 401, ref.text
        back = await c.post("/auth/staff/line", json={
            "id_token": _id_token(key, kid, sub=sub), "nonce": "n-1"})
        assert back.status_code == 401 and back.json()["code"] == "staff_disabled"
        # Enabled again, the old access token stays dead: a fresh sign-in is needed.
        assert (await http.post(f"/admin/staff/{staff_id}/enable",
                                headers=pao)).status_code == 200
        await asyncio.sleep(settings.staff_check_cache_s + 0.5)
        old = await c.get("/merchant/reports/daily", headers=_bearer(body["access_token"]))
        assert old.status_code == 401
        fresh = await c.post("/auth/staff/line", json={
            "id_token": _id_token(key, kid, sub=sub), "nonce": "n-1"})
        assert fresh.status_code == 200
        ok = await c.get("/merchant/reports/daily",
                         headers=_bearer(fresh.json()["access_token"]))
        assert ok.status_code == 200, ok.text


async def test_admins_are_invited_into_an_organisation_only_by_its_admins_or_the_pao(
        http: httpx.AsyncClient, world: World, line_api: str,  # noqa: F811
        line_keys: LineKeys) -> None:  # noqa: F811
    _, key, kid = line_keys
    chamber, pao = await world.admin("chamber"), await world.admin("pao")
    r = await http.post("/admin/invitations", headers=chamber, json={"role": "admin",
                                                                     "org": "pao"})
    assert r.status_code == 403 and r.json()["code"] == "forbidden_scope"
    pao_shop = await merchant(http, world)
    r = await http.post("/admin/invitations", headers=chamber,
                        json={"role": "merchant", "merchant_id": pao_shop})
    assert r.status_code == 403 and r.json()["code"] == "forbidden_scope"
    code = await _invite(http, chamber, role="admin")
    async with httpx.AsyncClient(base_url=line_api) as c:
        r = await c.post("/auth/staff/line", json={
            "id_token": _id_token(key, kid), "nonce": "n-1", "invitation_code": code})
        assert r.status_code == 200, r.text
        assert r.json()["staff"] == {"id": r.json()["staff"]["id"], "role": "admin",
                                     "merchant_id": None, "org": "chamber", "status": "active",
                                     "display_name": "สมชาย ใจดี"}
        admin = _bearer(r.json()["access_token"])
        assert (await c.get("/admin/funders", headers=admin)).status_code == 200
        assert (await c.get("/admin/fraud/alerts", headers=admin)).status_code == 403
    # The Chamber lists its own people; the PAO everyone; the Chamber cannot disable the PAO's.
    listed = (await http.get("/admin/staff", headers=chamber, params={"limit": 200})).json()
    assert {s["org"] for s in listed["items"] if s["role"] == "admin"} == {"chamber"}
    pao_row = await world.pool.fetchval("select id from staff where org = 'pao' limit 1")
    r = await http.post(f"/admin/staff/{pao_row}/disable", headers=chamber)
    assert r.status_code == 403 and r.json()["code"] == "forbidden_scope"
    assert (await http.get("/admin/staff", headers=pao)).status_code == 200
    for bad in ("99999999999999999999999", "0"):
        r = await http.post(f"/admin/staff/{bad}/disable", headers=pao)
        assert r.status_code == 422 and r.json()["code"] == "validation_failed", r.text
    r = await http.post("/admin/staff/99999/disable", headers=pao)
    assert r.status_code == 404 and r.json()["code"] == "staff_not_found"


async def test_refresh_tokens_rotate_and_a_reused_one_revokes_its_family(
        line_api: str, line_keys: LineKeys) -> None:  # noqa: F811
    _, key, kid = line_keys
    async with httpx.AsyncClient(base_url=line_api) as c:
        login = (await c.post("/auth/line", json={"id_token": _id_token(key, kid),
                                                  "nonce": "n-1"})).json()
        first = login["refresh_token"]
        r1 = await c.post("/auth/refresh", json={"refresh_token": first})
        assert r1.status_code == 200, r1.text
        second = r1.json()["refresh_token"]
        assert second != first
        stolen = await c.post("/auth/refresh", json={"refresh_token": first})
        assert stolen.status_code == 401 and stolen.json()["code"] == "refresh_token_reused"
        # The whole family is gone, the legitimate holder's newer token too.
        r2 = await c.post("/auth/refresh", json={"refresh_token": second})
        assert r2.status_code == 401
        # A new sign-in starts a new family; logging out revokes it.
        login = (await c.post("/auth/line", json={"id_token": _id_token(key, kid),
                                                  "nonce": "n-1"})).json()
        out = await c.post("/auth/logout", json={"refresh_token": login["refresh_token"]})
        assert out.status_code == 200 and out.json()["revoked"] == 1
        after = await c.post("/auth/refresh", json={"refresh_token": login["refresh_token"]})
        assert after.status_code == 401


async def test_a_banned_or_erased_member_gets_no_new_tokens(
        pool: asyncpg.Pool, line_api: str, line_keys: LineKeys) -> None:  # noqa: F811
    _, key, kid = line_keys
    for status in ("banned", "erased"):
        sub = f"U{uuid.uuid4().hex}"
        async with httpx.AsyncClient(base_url=line_api) as c:
            login = (await c.post("/auth/line", json={"id_token": _id_token(key, kid, sub=sub),
                                                      "nonce": "n-1"})).json()
            await pool.execute("update members set status = $2 where id = $1",
                               login["member"]["id"], status)
            r = await c.post("/auth/refresh", json={"refresh_token": login["refresh_token"]})
            assert r.status_code == 403 and r.json()["code"] == "member_banned", (status, r.text)
            if status == "banned":
                again = await c.post("/auth/line", json={
                    "id_token": _id_token(key, kid, sub=sub), "nonce": "n-1"})
                assert again.status_code == 403 and again.json()["code"] == "member_banned"


def test_the_token_cli_refuses_to_mint_in_prod(pool: asyncpg.Pool) -> None:
    sub = f"Uprod-{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "KUEKAN_ENV": "prod"}
    proc = subprocess.run(
        [sys.executable, "-m", "kuekan", "token", "--role", "admin", "--org", "pao",
         "--line-sub", sub], env=env, cwd=REPO, capture_output=True, text=True, timeout=60,
        check=False)
    assert proc.returncode != 0
    assert "prod" in proc.stderr and proc.stdout.strip() == ""
    dev = subprocess.run(
        [sys.executable, "-m", "kuekan", "token", "--role", "admin", "--org", "pao",
         "--line-sub", sub], env={**os.environ, "KUEKAN_ENV": "test"}, cwd=REPO,
        capture_output=True, text=True, timeout=60, check=False)
    assert dev.returncode == 0 and dev.stdout.count(".") == 2, dev.stderr


async def test_expired_refresh_tokens_are_forgotten_a_day_later(pool: asyncpg.Pool) -> None:
    import datetime as dt

    from kuekan.auth import jobs

    old, live = uuid.uuid4().hex, uuid.uuid4().hex
    now = dt.datetime.now(dt.UTC)
    await pool.execute(
        "insert into refresh_tokens (jti, family, kind, subject_id, expires_at) values"
        " ($1, 'f-old', 'member', 1, $3), ($2, 'f-live', 'member', 1, $4)", old, live,
        now - dt.timedelta(days=2), now + dt.timedelta(days=2))
    assert await jobs.cleanup_refresh_tokens({"pool": pool}) >= 1
    left = await pool.fetch("select jti from refresh_tokens where jti = any($1::text[])",
                            [old, live])
    assert [r["jti"] for r in left] == [live]
