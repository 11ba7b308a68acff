"""Domain counters on /metrics follow the check-in path (issue 6: check-ins by decision)."""

from __future__ import annotations

import httpx

from tests.conftest import World, idem
from tests.integration.missions.helpers import box, create_fence, create_mission


def _value(text: str, name: str, label: str) -> float:
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith(name) and label in line)


async def test_checkins_are_counted_by_decision_and_replays_are_not(
        http: httpx.AsyncClient, world: World, api_url: str) -> None:
    admin = await world.admin()
    funder = await world.funder()
    fence = await create_fence(http, admin, "Metrics fence", box(14.9751, 102.1004))
    mission = await create_mission(http, admin, funder, geofence_id=fence["id"],
                                   recurrence="daily", per_member_cap=1)
    _, member = await world.member()
    before = (await http.get(f"{api_url}/metrics")).text
    headers = member | idem()
    body = {"mission_id": mission["id"], "lat": 14.9751, "lon": 102.1004, "accuracy_m": 10}
    assert (await http.post("/checkins", headers=headers, json=body)).status_code == 201
    assert (await http.post("/checkins", headers=headers, json=body)).status_code == 201
    far = {**body, "lat": 15.2216, "lon": 102.4937}
    refused = await http.post("/checkins", headers=member | idem(), json=far)
    assert refused.status_code == 403 and refused.json()["code"] == "outside_geofence"
    after = (await http.get(f"{api_url}/metrics")).text
    name = "kuekan_checkins_total"
    assert _value(after, name, 'decision="inside"') == _value(before, name, 'decision="inside"') + 1
    assert _value(after, name, 'decision="outside_geofence"') == (
        _value(before, name, 'decision="outside_geofence"') + 1)


async def test_members_see_only_missions_open_to_their_segment(
        http: httpx.AsyncClient, world: World) -> None:
    admin = await world.admin()
    funder = await world.funder()
    fence = await create_fence(http, admin, "Audience fence", box(15.4321, 102.7654))
    tourists = await create_mission(http, admin, funder, geofence_id=fence["id"],
                                    recurrence="once", per_member_cap=1, audience="tourist")
    resident_id, resident = await world.member()
    tourist_id, tourist = await world.member()
    await world.pool.execute("update members set segment = 'tourist' where id = $1", tourist_id)

    async def ids(headers: dict[str, str]) -> set[int]:
        r = await http.get("/missions?lat=15.4321&lon=102.7654&limit=5", headers=headers)
        assert r.status_code == 200, r.text
        return {m["id"] for m in r.json()["items"]}

    assert tourists["id"] in await ids(tourist)
    assert tourists["id"] not in await ids(resident)
    assert resident_id != tourist_id
