"""Each admin acts only on its own organisation's funders, merchants, rewards, missions,
transfers, settlement rows and staff; the PAO on all (issue #14 point 2). The route × caller
matrix is in tests/integration/analytics/test_access.py."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import asyncpg
import httpx

from tests.conftest import World, assert_ledger_ok, idem


def _mission(funder: int) -> dict[str, Any]:
    now = dt.datetime.now(dt.UTC)
    return {"code": f"O{uuid.uuid4().hex[:12]}", "kind": "checkin", "title_th": "ทดสอบ",
            "title_en": "Test", "points": 10, "funder_id": funder,
            "starts_at": (now - dt.timedelta(hours=1)).isoformat(),
            "ends_at": (now + dt.timedelta(days=1)).isoformat(), "venue_code_required": True}


def _merchant(funder: int) -> dict[str, Any]:
    return {"name": f"ร้าน {uuid.uuid4().hex[:6]}", "district_code": "3001", "lat": 14.97,
            "lon": 102.1, "category": "food", "thb_per_point": 10, "funder_id": funder}


def _denied(r: httpx.Response) -> bool:
    return r.status_code == 403 and r.json()["code"] == "forbidden_scope"


async def test_the_chamber_acts_only_on_its_own_funders_and_the_pao_on_all(
        http: httpx.AsyncClient, world: World, pool: asyncpg.Pool) -> None:
    pao, chamber = await world.admin("pao"), await world.admin("chamber")
    pao_funder = await world.funder()
    r = await http.post("/admin/funders", headers=chamber,
                        json={"code": f"C{uuid.uuid4().hex[:8]}", "name": "หอการค้า"})
    assert r.status_code == 201 and r.json()["org"] == "chamber", r.text
    own = r.json()["id"]
    assert _denied(await http.post("/admin/funders", headers=chamber, json={
        "code": f"C{uuid.uuid4().hex[:8]}", "name": "x", "org": "pao"}))

    seen = {f["id"] for f in (await http.get("/admin/funders", headers=chamber)).json()["items"]}
    assert own in seen and pao_funder not in seen
    every = {f["id"] for f in (await http.get("/admin/funders", headers=pao)).json()["items"]}
    assert {own, pao_funder} <= every
    assert _denied(await http.get(f"/admin/funders/{pao_funder}", headers=chamber))
    assert (await http.get(f"/admin/funders/{own}", headers=pao)).status_code == 200

    # Awards: only from its own funder; adjusting down is the PAO's.
    mid, _ = await world.member()
    award = {"member_id": mid, "points": 30, "reason": "test"}
    assert _denied(await http.post("/admin/awards", headers=chamber | idem(),
                                   json={**award, "funder_id": pao_funder}))
    ok = await http.post("/admin/awards", headers=chamber | idem(),
                         json={**award, "funder_id": own})
    assert ok.status_code == 201, ok.text
    assert _denied(await http.post("/admin/awards", headers=chamber | idem(),
                                   json={**award, "points": -5, "funder_id": own}))
    pao_award = await http.post("/admin/awards", headers=pao | idem(),
                                json={**award, "funder_id": pao_funder})
    assert pao_award.status_code == 201
    # Reversals: its own funder's transfers only.
    assert _denied(await http.post(
        f"/admin/transfers/{pao_award.json()['transfer_id']}/reverse",
        headers=chamber | idem(), json={"reason": "not ours"}))
    back = await http.post(f"/admin/transfers/{ok.json()['transfer_id']}/reverse",
                           headers=chamber | idem(), json={"reason": "mistake"})
    assert back.status_code == 201, back.text
    balance = await pool.fetchval("select posted from member_balances where member_id = $1",
                                  mid)
    assert balance == 30  # the PAO's 30 stay, the Chamber's 30 were reversed

    # Merchants belong to their funder's organisation.
    assert _denied(await http.post("/admin/merchants", headers=chamber,
                                   json=_merchant(pao_funder)))
    mine = await http.post("/admin/merchants", headers=chamber, json=_merchant(own))
    assert mine.status_code == 201, mine.text
    theirs = await http.post("/admin/merchants", headers=pao, json=_merchant(pao_funder))
    listed = {m["id"] for m in (await http.get("/admin/merchants", headers=chamber,
                                               params={"limit": 200})).json()["items"]}
    assert mine.json()["id"] in listed and theirs.json()["id"] not in listed
    assert _denied(await http.get(f"/admin/merchants/{theirs.json()['id']}", headers=chamber))
    assert _denied(await http.post(f"/admin/merchants/{theirs.json()['id']}/staff",
                                   headers=chamber, json={"line_sub": "Ux-not-ours"}))

    # Rewards: own funder and own merchants only.
    reward = {"name": "คูปอง", "cost_points": 10, "stock": 5}
    assert _denied(await http.post("/admin/rewards", headers=chamber, json={
        **reward, "funder_id": pao_funder, "merchant_ids": [mine.json()["id"]]}))
    assert _denied(await http.post("/admin/rewards", headers=chamber, json={
        **reward, "funder_id": own, "merchant_ids": [theirs.json()["id"]]}))
    assert _denied(await http.post("/admin/rewards", headers=chamber, json={
        **reward, "merchant_ids": [mine.json()["id"]]}))  # no funder: the PAO's
    rw = await http.post("/admin/rewards", headers=chamber, json={
        **reward, "funder_id": own, "merchant_ids": [mine.json()["id"]]})
    assert rw.status_code == 201, rw.text
    pao_rw = await http.post("/admin/rewards", headers=pao, json={
        **reward, "merchant_ids": [theirs.json()["id"]]})
    assert pao_rw.status_code == 201
    assert _denied(await http.patch(f"/admin/rewards/{pao_rw.json()['id']}", headers=chamber,
                                    json={"stock_delta": 100}))
    assert _denied(await http.delete(f"/admin/rewards/{pao_rw.json()['id']}", headers=chamber))
    rewards = {x["id"] for x in (await http.get("/admin/rewards", headers=chamber,
                                                params={"limit": 200})).json()["items"]}
    assert rw.json()["id"] in rewards and pao_rw.json()["id"] not in rewards

    # Missions: funded by its own funder only.
    assert _denied(await http.post("/admin/missions", headers=chamber,
                                   json=_mission(pao_funder)))
    m_own = await http.post("/admin/missions", headers=chamber, json=_mission(own))
    assert m_own.status_code == 201, m_own.text
    m_pao = await http.post("/admin/missions", headers=pao, json=_mission(pao_funder))
    assert _denied(await http.patch(f"/admin/missions/{m_pao.json()['id']}", headers=chamber,
                                    json={"points": 1000}))
    assert _denied(await http.patch(f"/admin/missions/{m_own.json()['id']}", headers=chamber,
                                    json={"funder_id": pao_funder}))
    assert _denied(await http.delete(f"/admin/missions/{m_pao.json()['id']}", headers=chamber))
    missions = {x["id"] for x in (await http.get("/admin/missions",
                                                 headers=chamber)).json()["items"]}
    assert m_own.json()["id"] in missions and m_pao.json()["id"] not in missions
    await assert_ledger_ok(pool)


async def test_fraud_evidence_holds_blacklists_and_broadcasts_are_the_paos(
        http: httpx.AsyncClient, world: World) -> None:
    chamber, pao = await world.admin("chamber"), await world.admin("pao")
    mid, _ = await world.member()
    calls = [("GET", "/admin/fraud/alerts", None), ("GET", "/admin/fraud/reviews", None),
             ("POST", f"/admin/members/{mid}/hold", {"reason": "x"}),
             ("POST", "/admin/fraud/blacklist", {"kind": "device", "value": "d1",
                                                 "reason": "x"}),
             ("POST", "/admin/broadcasts", {"title": "t", "body": "b"}),
             ("GET", "/admin/outbox/dead", None)]
    for method, url, body in calls:
        assert _denied(await http.request(method, url, headers=chamber, json=body)), url
    assert (await http.get("/admin/fraud/alerts", headers=pao)).status_code == 200
    held = await http.post(f"/admin/members/{mid}/hold", headers=pao, json={"reason": "x"})
    assert held.status_code == 200, held.text
