"""Group commit of check-ins (kuekan.missions.batch + kk_checkin_batch) on real storage.

Concurrent check-ins of one API process share one SQL call and one commit; each still succeeds
or is refused on its own, and a batch that fails as a whole commits nothing.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from typing import Any

import asyncpg
import httpx
import pytest
import redis.asyncio as aioredis
from prometheus_client import REGISTRY

from kuekan.errors import DomainError
from kuekan.idempotency import Gate
from kuekan.kit.clock import bangkok_day
from kuekan.ledger.service import Ledger
from kuekan.missions.batch import CheckinBatcher
from kuekan.missions.schemas import CheckinIn
from kuekan.missions.service import Catalog, Checkins
from kuekan.settings import Settings
from tests.conftest import World, assert_ledger_ok, idem
from tests.integration.missions.helpers import box, create_fence, create_mission

LAT, LON = 14.9745, 102.0990


async def _mission(http: httpx.AsyncClient, world: World, **kw: Any) -> dict[str, Any]:
    admin = await world.admin()
    fence = await create_fence(http, admin, "Batch fence", box(LAT, LON, 0.004), kind="event")
    return await create_mission(http, admin, await world.funder(), kind="event",
                                geofence_id=fence["id"], **kw)


async def _batches(http: httpx.AsyncClient, api_url: str) -> tuple[float, float]:
    """(batches sent, check-ins in them) so far, from the API's /metrics."""
    text = (await http.get(f"{api_url}/metrics")).text
    count = re.search(r"^kuekan_checkin_batch_size_count (\S+)$", text, re.M)
    total = re.search(r"^kuekan_checkin_batch_size_sum (\S+)$", text, re.M)
    assert count and total, "kuekan_checkin_batch_size missing from /metrics"
    return float(count.group(1)), float(total.group(1))


async def test_concurrent_checkins_share_commits_and_a_refusal_stays_with_its_member(
        http: httpx.AsyncClient, world: World, pool: asyncpg.Pool, api_url: str) -> None:
    mission = await _mission(http, world, points=7, recurrence="daily")
    members = await world.members(120)
    held_id, _ = members[17]
    await pool.execute("update members set status = 'on_hold', hold_reason = 'test'"
                       " where id = $1", held_id)
    before = await _batches(http, api_url)
    body = {"mission_id": mission["id"], "lat": LAT, "lon": LON, "accuracy_m": 8}
    responses = await asyncio.gather(*(http.post("/checkins", headers=h | idem(), json=body)
                                       for _, h in members))
    after = await _batches(http, api_url)
    by_member = {mid: r for (mid, _), r in zip(members, responses, strict=True)}
    assert by_member[held_id].status_code == 403
    assert by_member[held_id].json()["code"] == "member_on_hold"
    ok = {mid for mid, r in by_member.items() if r.status_code == 201}
    assert ok == {mid for mid, _ in members} - {held_id}, [r.text for r in responses][:3]
    # Group commit happened: fewer SQL calls than check-ins.
    batches, items = after[0] - before[0], after[1] - before[1]
    assert items == len(members)
    assert batches < items, (batches, items)
    rows = await pool.fetch("select member_id, count(*) n, sum(amount) pts from transfers"
                            " where (ref->>'mission_id')::bigint = $1 group by member_id",
                            mission["id"])
    assert {r["member_id"] for r in rows} == ok
    assert all(r["n"] == 1 and r["pts"] == 7 for r in rows)
    assert await pool.fetchval("select count(*) from checkins where member_id = $1"
                               " and mission_id = $2 and status = 'accepted'",
                               held_id, mission["id"]) == 0
    await assert_ledger_ok(pool)


def _item(member_id: int, mission_id: int, **kw: Any) -> dict[str, Any]:
    return {"scope": f"m:{member_id}", "key": uuid.uuid4().hex, "hash": "h", "member": member_id,
            "mission": mission_id, "day": bangkok_day().isoformat(), "lat": LAT, "lon": LON,
            "accuracy": 8.0, "distance": 50.0, "decision": "inside", "risk": False,
            "device": None, "fences": [], **kw}


async def test_a_batch_that_fails_as_a_whole_commits_nothing_and_its_items_run_again(
        http: httpx.AsyncClient, world: World, pool: asyncpg.Pool) -> None:
    mission = await _mission(http, world, points=5, recurrence="daily")
    (good_id, _), (bad_id, _) = await world.members(2)
    batcher = CheckinBatcher(pool, member_cap=1000, slices=16, max_batch=8, max_inflight=1)
    good = _item(good_id, mission["id"])
    bad = _item(bad_id, mission["id"], day="not-a-date")  # fails the statement, not a refusal
    # Queued in the same turn, so they travel in the same batch.
    results = await asyncio.gather(batcher.run(good), batcher.run(bad), return_exceptions=True)
    assert all(isinstance(r, asyncpg.PostgresError) for r in results), results
    assert await pool.fetchval("select count(*) from idempotency_keys where key = $1",
                               good["key"]) == 0
    assert await pool.fetchval("select count(*) from transfers where member_id = $1",
                               good_id) == 0
    # Alone, the good check-in goes through exactly once; a replay of its key is a replay.
    res = await batcher.run(good)
    assert res["status"] == 201 and res["replay"] is False
    again = await batcher.run(good)
    assert again["replay"] is True and again["body"]["transfer_id"] == res["body"]["transfer_id"]
    # A refusal inside a batch is that item's DomainError and does not touch the others.
    other_id, _ = (await world.members(1))[0]
    dup = _item(good_id, mission["id"])  # same member, same day: already completed
    fresh = _item(other_id, mission["id"])
    refused, accepted = await asyncio.gather(batcher.run(dup), batcher.run(fresh),
                                             return_exceptions=True)
    assert isinstance(refused, DomainError) and refused.code == "already_completed"
    assert isinstance(accepted, dict) and accepted["status"] == 201
    await assert_ledger_ok(pool)


async def test_a_checkin_whose_batch_cannot_run_goes_through_alone(
        http: httpx.AsyncClient, world: World, pool: asyncpg.Pool, redis: aioredis.Redis,
        settings: Settings) -> None:
    """The service's fallback: the batch call fails as a whole (here: its pool is closed, as
    after a lost connection), and the check-in runs alone through kk_checkin_idem."""
    mission = await _mission(http, world, points=6, recurrence="daily")
    member_id, _ = await world.member()
    catalog = Catalog()
    await catalog.refresh(pool)
    closed = await asyncpg.create_pool(settings.database_url, min_size=1, max_size=1)
    await closed.close()
    checkins = Checkins(Ledger(pool, Gate(redis, lease_s=30, keep_s=600), settings), catalog,
                        CheckinBatcher(closed, member_cap=1000, slices=settings.budget_slices))
    name = "kuekan_checkin_batch_fallbacks_total"
    before = REGISTRY.get_sample_value(name) or 0.0
    out = await checkins.checkin(
        scope=f"m:{member_id}", member_id=member_id, key=uuid.uuid4().hex,
        data=CheckinIn(mission_id=mission["id"], lat=LAT, lon=LON, accuracy_m=8))
    assert out.status == 201 and not out.replayed
    assert REGISTRY.get_sample_value(name) == before + 1
    assert await pool.fetchval("select count(*) from transfers where member_id = $1"
                               " and (ref->>'mission_id')::bigint = $2",
                               member_id, mission["id"]) == 1
    await assert_ledger_ok(pool)


async def test_batcher_refuses_more_than_the_sql_allows(pool: asyncpg.Pool) -> None:
    with pytest.raises(AssertionError):
        CheckinBatcher(pool, member_cap=None, slices=16, max_batch=33)
