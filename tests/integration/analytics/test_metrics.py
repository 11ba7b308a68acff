"""/metrics labels HTTP series by route template, never by raw ids."""

from __future__ import annotations

import re

import httpx

from tests.conftest import World

IDS = range(700001, 700031)


async def test_metrics_use_route_templates_after_requests_with_many_ids(
        http: httpx.AsyncClient, world: World, api_url: str) -> None:
    admin = await world.admin("pao")
    for i in IDS:
        r = await http.get(f"/admin/analytics/merchants/{i}/daily", headers=admin)
        assert r.status_code == 200
        r = await http.get(f"/admin/funders/{i}", headers=admin)
        assert r.status_code == 404
    async with httpx.AsyncClient(base_url=api_url) as client:
        text = (await client.get("/metrics")).text
    paths = set(re.findall(r'path="([^"]*)"', text))
    assert any("/admin/analytics/merchants/{merchant_id" in p for p in paths), paths
    assert any("/admin/funders/{funder_id" in p for p in paths), paths
    leaked = {p for p in paths for i in IDS if str(i) in p}
    assert not leaked, leaked
    # One series per template: 30 ids did not make 30 series.
    merchant_series = [p for p in paths if "/analytics/merchants/" in p]
    assert len(merchant_series) == 1, merchant_series
