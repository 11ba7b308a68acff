"""The member QR carries no LINE user id: every merchant that scans it can read its payload."""

from __future__ import annotations

import base64
import json

import asyncpg
import httpx

from tests.conftest import World, idem
from tests.integration.rewards.helpers import merchant, pocket, staff


def _payload(token: str) -> dict[str, object]:
    body = token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))))


async def test_the_member_qr_names_the_member_by_id_only_and_still_scans(
        http: httpx.AsyncClient, world: World, pool: asyncpg.Pool) -> None:
    mid, auth = await world.member("Uqrsecret")
    line_sub = await pool.fetchval("select line_sub from members where id = $1", mid)
    r = await http.get("/me/qr", headers=auth)
    assert r.status_code == 200, r.text
    token = r.json()["token"]
    claims = _payload(token)
    assert "lsub" not in claims
    assert line_sub not in json.dumps(claims) and "Uqrsecret" not in token
    assert claims["sub"] == str(mid) and claims["typ"] == "member_qr"

    shop = await merchant(http, world, thb_per_point=10)
    scan = await http.post("/merchant/scans", headers=await staff(world, shop) | idem(),
                           json={"member_token": token, "purchase_thb": "100"})
    assert scan.status_code == 201, scan.text
    assert scan.json()["member_id"] == mid
    assert await pocket(pool, mid) == (10, 0)
