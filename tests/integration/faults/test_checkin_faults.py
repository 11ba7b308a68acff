"""Faults under a check-in flood, on the group-commit path: while 64 clients check in (and
the API batches their check-ins into shared commits), the API's PostgreSQL backends are
terminated three times, each time first the ones running a check-in batch at that moment. A
terminated batch may have committed or not; either way its check-ins run again one by one under
their own keys.

Afterwards every acknowledged check-in is in the ledger exactly once with the transfer the
client was told about, every member has exactly one accepted check-in, nothing was answered with
a 500, batches really were shared, and check-ledger passes. How many check-ins ran again alone
is printed: whether a termination lands mid-batch is timing (the fallback itself is tested
deterministically in tests/integration/missions/test_group_commit.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
import uuid

import asyncpg
import httpx
import pytest

from kuekan.settings import Settings
from tests.conftest import World, assert_ledger_ok, start_server, stop_server
from tests.integration.faults.helpers import terminate_backends
from tests.integration.missions.helpers import box, create_fence, create_mission

MEMBERS = 900
CONCURRENCY = 64
POINTS = 5
LAT, LON = 14.9745, 102.0990
FLOOD_TIMEOUT_S = 150


def _metric(text: str, name: str) -> float:
    m = re.search(rf"^{name} (\S+)$", text, re.M)
    return float(m.group(1)) if m else 0.0


async def test_checkin_flood_with_backends_terminated_awards_each_member_exactly_once(
        http: httpx.AsyncClient, world: World, pool: asyncpg.Pool, settings: Settings,
        capsys: pytest.CaptureFixture[str]) -> None:
    admin = await world.admin()
    funder = await world.funder(budget=10_000_000)
    fence = await create_fence(http, admin, "Fault fence", box(LAT, LON, 0.004), kind="event")
    mission = await create_mission(http, admin, funder, kind="event", geofence_id=fence["id"],
                                   points=POINTS, recurrence="daily")
    members = await world.members(MEMBERS)
    run = uuid.uuid4().hex[:8]
    proc, base = await asyncio.to_thread(start_server, {"KUEKAN_DB_POOL_MAX": "20"})
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(MEMBERS):
        queue.put_nowait(i)
    acked: dict[int, int] = {}  # member id -> transfer id the client was told
    statuses: dict[str, int] = {}
    faults: list[str] = []
    progress = asyncio.Event()
    done = asyncio.Event()
    body = {"mission_id": mission["id"], "lat": LAT, "lon": LON, "accuracy_m": 8}

    async def client(c: httpx.AsyncClient) -> None:
        while True:
            try:
                i = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            member_id, headers = members[i]
            key = {"Idempotency-Key": f"cf{run}-{i}"}
            deadline = time.monotonic() + 60
            backoff = 0.05
            while True:
                try:
                    r = await c.post(f"{base}/api/v1/checkins", json=body, headers=headers | key)
                except httpx.HTTPError as exc:
                    what = f"transport {type(exc).__name__}"
                else:
                    what = str(r.status_code)
                    if r.status_code == 201:
                        acked[member_id] = r.json()["transfer_id"]
                        progress.set()
                        statuses[what] = statuses.get(what, 0) + 1
                        break
                    with contextlib.suppress(ValueError):
                        what += " " + r.json().get("code", "")
                    assert r.status_code in (409, 503), f"{r.status_code}: {r.text[:300]}"
                statuses[what] = statuses.get(what, 0) + 1
                assert time.monotonic() < deadline, f"member {member_id} never acknowledged"
                await asyncio.sleep(backoff)
                backoff = min(0.8, backoff * 2)

    async def chaos() -> None:
        for share in (0.2, 0.45, 0.7):
            while len(acked) < share * MEMBERS and not done.is_set():
                progress.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(progress.wait(), 0.5)
            if done.is_set():
                return
            n = await terminate_backends(settings.database_url, first_running="kk_checkin_batch")
            faults.append(f"pg_terminate ({n} backends) at {len(acked)} acked")

    limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
    t0 = time.monotonic()
    try:
        async with httpx.AsyncClient(timeout=20, limits=limits) as c:
            chaos_task = asyncio.create_task(chaos())
            await asyncio.wait_for(asyncio.gather(*(client(c) for _ in range(CONCURRENCY))),
                                   FLOOD_TIMEOUT_S)
            done.set()
            await chaos_task
            metrics = (await c.get(f"{base}/metrics")).text
    finally:
        done.set()
        await asyncio.to_thread(stop_server, proc)
    elapsed = time.monotonic() - t0

    await pool.expire_connections()  # the test's own pool lost its connections too
    rows = await pool.fetch(
        "select member_id, count(*) n, min(id) tid, sum(amount) pts from transfers"
        " where (ref->>'mission_id')::bigint = $1 group by member_id", mission["id"])
    in_ledger = {r["member_id"]: r for r in rows}
    accepted = await pool.fetchval(
        "select count(*) from checkins where mission_id = $1 and status = 'accepted'",
        mission["id"])
    batches = _metric(metrics, "kuekan_checkin_batch_size_count")
    batched = _metric(metrics, "kuekan_checkin_batch_size_sum")
    fallbacks = _metric(metrics, "kuekan_checkin_batch_fallbacks_total")
    with capsys.disabled():
        print(f"\n[checkin faults] {MEMBERS} check-ins, {CONCURRENCY} clients, {elapsed:.1f} s; "  # noqa: T201
              f"{'; '.join(faults)}; responses {dict(sorted(statuses.items()))}; "
              f"{batched:.0f} check-ins in {batches:.0f} batches, {fallbacks:.0f} run alone after"
              f" their batch failed")
    assert len(faults) == 3, faults
    assert len(acked) == MEMBERS
    assert set(in_ledger) == {m for m, _ in members}
    assert all(r["n"] == 1 and r["pts"] == POINTS for r in in_ledger.values())
    assert {m: in_ledger[m]["tid"] for m in acked} == acked  # 0 lost, 0 duplicated, 0 mismatched
    assert accepted == MEMBERS
    assert not any(s.startswith("500") for s in statuses)
    assert 0 < batches < batched  # the flood went through shared commits
    await assert_ledger_ok(pool)
