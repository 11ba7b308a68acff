"""Auth: our JWTs, LINE ID tokens against a local fake JWKS server, roles, rate limits."""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from pytest_httpserver import HTTPServer

from kuekan.auth.tokens import Principal, TokenService
from kuekan.members import repository as members_repo
from kuekan.settings import Settings
from tests.conftest import World, idem, start_server, stop_server


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


async def _member_token(world: World, **kw: Any) -> tuple[int, str]:
    mid, _ = await world.member()
    return mid, world.tokens.issue(Principal("member", mid, "Ux"), **kw)


async def test_a_valid_member_token_reaches_me(http: httpx.AsyncClient, world: World) -> None:
    mid, token = await _member_token(world)
    r = await http.get("/me", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200 and r.json()["id"] == mid


@pytest.mark.parametrize("case", ["expired", "forged", "wrong_kid", "alg_none", "hs_es_confusion",
                                  "refresh_as_access", "garbage", "missing"])
async def test_bad_tokens_are_refused_with_401(http: httpx.AsyncClient, world: World,
                                               settings: Settings, case: str) -> None:
    mid, good = await _member_token(world)
    now = int(time.time())
    claims = {"iss": settings.jwt_issuer, "sub": str(mid), "role": "member", "typ": "access",
              "iat": now, "exp": now + 600}
    kid = settings.jwt_active_kid
    secret = settings.jwt_keys[kid]
    if case == "expired":
        token = world.tokens.issue(Principal("member", mid), ttl_s=-5)
    elif case == "forged":
        token = jwt.encode(claims, "not-the-secret-0123456789abcdef0123", algorithm="HS256",
                           headers={"kid": kid})
    elif case == "wrong_kid":
        token = jwt.encode(claims, secret, algorithm="HS256", headers={"kid": "retired"})
    elif case == "alg_none":
        header = _b64(json.dumps({"alg": "none", "typ": "JWT", "kid": kid}).encode())
        token = f"{header}.{_b64(json.dumps(claims).encode())}."
    elif case == "hs_es_confusion":
        key = ec.generate_private_key(ec.SECP256R1())
        token = jwt.encode(claims, key, algorithm="ES256", headers={"kid": kid})
    elif case == "refresh_as_access":
        token = world.tokens.issue(Principal("member", mid), "refresh")
    elif case == "garbage":
        token = "abc.def.ghi"
    else:
        token = ""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    r = await http.get("/me", headers=headers)
    assert r.status_code == 401, (case, r.text)
    assert r.json()["code"] == "unauthorized" and r.json()["message_th"]
    assert good != token


async def test_keys_rotate_by_kid(settings: Settings) -> None:
    old = TokenService(settings)
    token = old.issue(Principal("member", 1))
    rotated = msgspec_replace(settings, jwt_keys={**settings.jwt_keys, "k2": "x" * 40},
                              jwt_active_kid="k2")
    new = TokenService(rotated)
    assert new.principal(token).subject_id == 1  # old tokens still verify during rotation
    assert jwt.get_unverified_header(new.issue(Principal("member", 1)))["kid"] == "k2"
    retired = TokenService(msgspec_replace(rotated, jwt_keys={"k2": "x" * 40}))
    with pytest.raises(Exception, match="unknown key"):
        retired.principal(token)


def msgspec_replace(s: Settings, **changes: Any) -> Settings:
    import msgspec

    return msgspec.structs.replace(s, **changes)


async def test_each_role_reaches_only_its_routes(http: httpx.AsyncClient, world: World) -> None:
    mid, member = await world.member()
    admin = await world.admin()
    # A real staff row: staff and admin tokens are checked against theirs on each request.
    funder = await world.funder()
    shop = await world.pool.fetchval(
        "with a as (insert into accounts (kind, owner_id) values ('merchant_redemption',"
        " nextval(pg_get_serial_sequence('merchants', 'id'))) returning id, owner_id)"
        " insert into merchants (id, name, district_code, lat, lon, category, thb_per_point,"
        " funder_id, redemption_account_id) overriding system value"
        " select a.owner_id, 'Roles shop', '3001', 14.97, 102.09, 'food', 10, $1, a.id from a"
        " returning id", funder)
    sub = f"Ustaff-{uuid.uuid4().hex[:10]}"
    sid = await members_repo.ensure_staff(world.pool, sub, "merchant", shop, None)
    merchant = world.auth(Principal("merchant", sid, sub, merchant_id=shop))
    assert (await http.get("/me", headers=member)).status_code == 200
    assert (await http.get("/admin/funders", headers=admin)).status_code == 200
    for headers in (member, merchant):
        r = await http.get("/admin/funders", headers=headers)
        assert r.status_code == 403 and r.json()["code"] == "forbidden_role"
        r = await http.post("/admin/awards", headers=headers | idem(), json={
            "member_id": mid, "points": 5, "funder_id": 1, "reason": "x"})
        assert r.status_code == 403
    for headers in (admin, merchant):
        assert (await http.get("/me/pocket", headers=headers)).status_code == 403


# --- LINE Login: ID tokens verified against a local fake JWKS server ------------------------

@pytest.fixture(scope="module")
def line_keys() -> Iterator[tuple[HTTPServer, Any, str]]:
    key = ec.generate_private_key(ec.SECP256R1())
    kid = "line-test-key"
    jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key.public_key()))
    jwk.update({"kid": kid, "alg": "ES256", "use": "sig"})
    server = HTTPServer(host="127.0.0.1", port=0)
    server.expect_request("/oauth2/v2.1/certs").respond_with_json({"keys": [jwk]})
    server.start()
    yield server, key, kid
    server.clear()
    server.stop()


@pytest.fixture(scope="module")
def line_api(line_keys: tuple[HTTPServer, Any, str], database: str) -> Iterator[str]:
    server, _, _ = line_keys
    proc, base = start_server({"KUEKAN_LINE_JWKS_URL": server.url_for("/oauth2/v2.1/certs"),
                               "KUEKAN_LINE_CHANNEL_ID": "1650000000",
                               "KUEKAN_LINE_CHANNEL_SECRET": "web-login-secret"})
    yield f"{base}/api/v1"
    stop_server(proc)


def _id_token(key: Any, kid: str, alg: str = "ES256", **overrides: Any) -> str:
    now = int(time.time())
    claims = {"iss": "https://access.line.me", "sub": f"U{uuid.uuid4().hex}",
              "aud": "1650000000", "iat": now, "exp": now + 600, "nonce": "n-1",
              "name": "สมชาย ใจดี", **overrides}
    return jwt.encode(claims, key, algorithm=alg, headers={"kid": kid})


async def test_line_login_exchanges_a_valid_id_token_for_kuekan_tokens(
        line_api: str, line_keys: tuple[HTTPServer, Any, str]) -> None:
    _, key, kid = line_keys
    async with httpx.AsyncClient(base_url=line_api) as c:
        r = await c.post("/auth/line", json={"id_token": _id_token(key, kid), "nonce": "n-1"})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["member"]["display_name"] == "สมชาย ใจดี"
        me = await c.get("/me", headers={"Authorization": f"Bearer {body['access_token']}"})
        assert me.status_code == 200 and me.json()["id"] == body["member"]["id"]
        again = await c.post("/auth/refresh", json={"refresh_token": body["refresh_token"]})
        assert again.status_code == 200 and again.json()["access_token"]


@pytest.mark.parametrize("case", ["wrong_aud", "wrong_iss", "expired", "nonce", "other_key",
                                  "hs256_in_liff", "unknown_kid"])
async def test_line_login_refuses_bad_id_tokens(
        line_api: str, line_keys: tuple[HTTPServer, Any, str], case: str) -> None:
    _, key, kid = line_keys
    token = {
        "wrong_aud": lambda: _id_token(key, kid, aud="999"),
        "wrong_iss": lambda: _id_token(key, kid, iss="https://evil.example"),
        "expired": lambda: _id_token(key, kid, exp=int(time.time()) - 10),
        "nonce": lambda: _id_token(key, kid, nonce="other"),
        "other_key": lambda: _id_token(ec.generate_private_key(ec.SECP256R1()), kid),
        "hs256_in_liff": lambda: _id_token("web-login-secret", kid, alg="HS256"),
        "unknown_kid": lambda: _id_token(key, "nope"),
    }[case]()
    async with httpx.AsyncClient(base_url=line_api) as c:
        r = await c.post("/auth/line", json={"id_token": token, "nonce": "n-1", "flow": "liff"})
    assert r.status_code == 401, r.text
    assert r.json()["code"] == "invalid_id_token"


async def test_hs256_id_token_is_accepted_only_in_the_web_flow(
        line_api: str, line_keys: tuple[HTTPServer, Any, str]) -> None:
    _, _, kid = line_keys
    token = _id_token("web-login-secret", kid, alg="HS256")
    async with httpx.AsyncClient(base_url=line_api) as c:
        r = await c.post("/auth/line", json={"id_token": token, "nonce": "n-1", "flow": "web"})
        assert r.status_code == 200, r.text
        forged = _id_token("guessed-secret", kid, alg="HS256")
        r = await c.post("/auth/line", json={"id_token": forged, "nonce": "n-1", "flow": "web"})
        assert r.status_code == 401


# --- Rate limits ---------------------------------------------------------------------------

async def test_rate_limits_per_member_with_headers(database: str, world: World) -> None:
    proc, base = start_server({"KUEKAN_RATE_LIMITS": "on", "KUEKAN_RATE_LIMIT_MEMBER_PER_MIN": "5",
                               "KUEKAN_RATE_LIMIT_IP_PER_MIN": "1000"})
    try:
        _, member = await world.member()
        _, other = await world.member()
        async with httpx.AsyncClient(base_url=f"{base}/api/v1") as c:
            codes = []
            for _ in range(7):
                r = await c.get("/me", headers=member)
                codes.append(r.status_code)
                assert "ratelimit-limit" in r.headers and "ratelimit-remaining" in r.headers
            assert codes[:5] == [200] * 5 and codes[5:] == [429, 429], codes
            assert r.json()["code"] == "rate_limited" and "retry-after" in r.headers
            assert (await c.get("/me", headers=other)).status_code == 200  # per member
            assert (await c.get(f"{base}/healthz")).status_code == 200  # probes exempt
    finally:
        stop_server(proc)


async def test_forged_tokens_do_not_spend_a_members_rate_limit(database: str, world: World,
                                                                settings: Settings) -> None:
    """The member bucket is chosen from a verified token: requests with a forged token that
    names a member (wrong signature) are refused 401 and counted against the address only, so
    an attacker cannot lock a member out by spending their per-member budget."""
    proc, base = start_server({"KUEKAN_RATE_LIMITS": "on", "KUEKAN_RATE_LIMIT_MEMBER_PER_MIN": "5",
                               "KUEKAN_RATE_LIMIT_IP_PER_MIN": "1000"})
    try:
        mid, member = await world.member()
        now = int(time.time())
        forged = jwt.encode({"iss": settings.jwt_issuer, "sub": str(mid), "role": "member",
                             "typ": "access", "iat": now, "exp": now + 600},
                            "not-the-key-of-this-service", algorithm="HS256",
                            headers={"kid": settings.jwt_active_kid})
        async with httpx.AsyncClient(base_url=f"{base}/api/v1") as c:
            for _ in range(8):
                r = await c.get("/me", headers={"Authorization": f"Bearer {forged}"})
                assert r.status_code == 401, r.text
            codes = [(await c.get("/me", headers=member)).status_code for _ in range(6)]
        assert codes == [200] * 5 + [429], codes
    finally:
        stop_server(proc)
