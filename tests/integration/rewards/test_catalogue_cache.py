"""The member catalogue is cached per process, and an admin change is visible at once."""

from __future__ import annotations

import httpx

from tests.conftest import World
from tests.integration.rewards.helpers import merchant, reward


async def _ids(http: httpx.AsyncClient, member: dict[str, str], merchant_id: int) -> set[int]:
    r = await http.get(f"/rewards?merchant_id={merchant_id}", headers=member)
    assert r.status_code == 200, r.text
    return {item["id"] for item in r.json()["items"]}


async def test_new_and_retired_rewards_show_in_the_catalogue_immediately(
        http: httpx.AsyncClient, world: World) -> None:
    _, member = await world.member()
    shop = await merchant(http, world)
    assert await _ids(http, member, shop) == set()  # cached empty page
    rid = await reward(http, world, [shop])
    assert await _ids(http, member, shop) == {rid}
    admin = await world.admin()
    assert (await http.delete(f"/admin/rewards/{rid}", headers=admin)).status_code == 200
    assert await _ids(http, member, shop) == set()
