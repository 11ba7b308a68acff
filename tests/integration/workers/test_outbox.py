"""Outbox jobs: exactly-once handlers, retries with backoff, dead letters, re-drive, relay
(the backoff rule itself: tests/unit/kit/test_backoff.py)."""

from __future__ import annotations

from typing import Any

import asyncpg
import httpx
import pytest
from arq.worker import Retry

from kuekan.outbox import relay
from kuekan.outbox.jobs import handle_outbox, handle_outbox_batch
from tests.integration.workers.conftest import add_outbox


async def effects(pool: asyncpg.Pool, oid: int) -> int:
    return int(await pool.fetchval(
        "select count(*) from ops_probe_effects where outbox_id = $1", oid))


async def test_a_job_delivered_twice_has_one_effect(ctx: dict[str, Any],
                                                    pool: asyncpg.Pool) -> None:
    oid = await add_outbox(pool, "ops.probe", {})
    assert await handle_outbox(ctx, oid) == "done"
    assert await handle_outbox({**ctx, "job_try": 2}, oid) == "duplicate"
    assert await effects(pool, oid) == 1


async def test_failing_job_retries_then_dead_letters_and_redrive_completes_it(
        ctx: dict[str, Any], pool: asyncpg.Pool, http: httpx.AsyncClient, world: Any) -> None:
    oid = await add_outbox(pool, "ops.probe", {"fail_until_redrive": True})
    max_tries = ctx["settings"].outbox_max_tries
    for attempt in range(1, max_tries):
        with pytest.raises(Retry):
            await handle_outbox({**ctx, "job_try": attempt}, oid)
    assert await handle_outbox({**ctx, "job_try": max_tries}, oid) == "dead"
    assert await effects(pool, oid) == 0
    admin = await world.admin()
    dead = (await http.get("/admin/outbox/dead", headers=admin)).json()["items"]
    row = next(d for d in dead if d["outbox_id"] == oid)
    assert row["attempts"] == max_tries and "ProbeFailedError" in row["error"]

    r = await http.post(f"/admin/outbox/dead/{oid}/redrive", headers=admin)
    assert r.status_code == 202, r.text
    again = await http.post(f"/admin/outbox/dead/{oid}/redrive", headers=admin)
    assert again.status_code == 404
    # The re-driven row is unrelayed again, under a fresh job id.
    assert await pool.fetchval("select relayed_at is null and redrives = 1 from outbox"
                               " where id = $1", oid)
    assert await handle_outbox(ctx, oid) == "done"
    assert await effects(pool, oid) == 1
    assert await pool.fetchval("select count(*) from audit_log where action = 'outbox.redrive'"
                               " and subject = $1", f"outbox:{oid}") == 1


class RecordingQueue:
    def __init__(self) -> None:
        self.jobs: dict[str, tuple[Any, ...]] = {}

    async def enqueue(self, function: str, *args: Any, job_id: str,
                      defer_s: float | None = None) -> bool:
        new = job_id not in self.jobs
        self.jobs.setdefault(job_id, args)
        return new

    async def enqueue_many(self, function: str, items: list[tuple[str, tuple[Any, ...]]]) -> int:
        return sum([await self.enqueue(function, *a, job_id=j) for j, a in items])

    async def recover(self, function: str, *args: Any, job_id: str) -> Any:
        return "queued"


async def test_relay_groups_fresh_rows_into_batch_jobs_and_sends_redriven_rows_alone(
        pool: asyncpg.Pool) -> None:
    ids = [await add_outbox(pool, "ops.noop", {"n": i}) for i in range(60)]
    redriven = await add_outbox(pool, "ops.noop", {"n": "again"})
    await pool.execute("update outbox set redrives = 2 where id = $1", redriven)
    queue = RecordingQueue()
    while await relay.relay_once(pool, queue, 40):
        pass
    batches = {j: a[0] for j, a in queue.jobs.items() if "+" in j}
    # (Other tests' unrelayed rows may ride along in the same batches.)
    batched = [oid for chunk in batches.values() for oid in chunk if oid in set(ids)]
    # Every fresh row is in exactly one batch, batches hold at most ROWS_PER_JOB rows in id
    # order, and each job id names its first row and its size.
    assert sorted(batched) == ids and len(set(batched)) == len(batched)
    assert redriven not in {oid for chunk in batches.values() for oid in chunk}
    for job_id, chunk in batches.items():
        assert 0 < len(chunk) <= relay.ROWS_PER_JOB and chunk == sorted(chunk)
        assert job_id == f"outbox:{chunk[0]}+{len(chunk)}"
    assert queue.jobs[f"outbox:{redriven}:r2"] == (redriven,)
    assert await pool.fetchval("select count(*) from outbox where id = any($1::bigint[])"
                               " and relayed_at is null", [*ids, redriven]) == 0


async def test_batch_job_runs_each_row_once_and_hands_a_failing_row_to_its_own_job(
        ctx: dict[str, Any], pool: asyncpg.Pool) -> None:
    good = [await add_outbox(pool, "ops.probe", {}) for _ in range(3)]
    bad = await add_outbox(pool, "ops.probe", {"fail_until_redrive": True})
    # As the relay leaves them (other tests' relays must not pick these rows up).
    await pool.execute("update outbox set relayed_at = now() where id = any($1::bigint[])",
                       [*good, bad])
    queue = RecordingQueue()
    bctx = {**ctx, "queue": queue}
    counts = await handle_outbox_batch(bctx, [good[0], bad, good[1], good[2]])
    assert counts == {"done": 3, "retry": 1}
    assert [await effects(pool, oid) for oid in good] == [1, 1, 1]
    assert await effects(pool, bad) == 0
    assert queue.jobs == {f"outbox:{bad}": (bad,)}  # the usual single-row job, retries and all
    # The batch run again (its worker died after the commit): nothing happens twice.
    again = await handle_outbox_batch(bctx, [good[0], good[1], good[2]])
    assert again == {"duplicate": 3}
    assert [await effects(pool, oid) for oid in good] == [1, 1, 1]
    # The failing row's own job goes on to the dead letters like any single-row job.
    max_tries = ctx["settings"].outbox_max_tries
    assert await handle_outbox({**ctx, "job_try": max_tries}, bad) == "dead"
