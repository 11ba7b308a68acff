"""The real worker process (`python -m kuekan worker`): killed mid-job, and under load.

Figures (relay rows/s, processed rows/s) are printed, not asserted: timing on a shared machine
is noise; what is asserted is no loss and no duplicate effect.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import asyncpg
import pytest

from kuekan.outbox.repository import lock_key

REPO = Path(__file__).resolve().parents[2]


def start_worker(log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "KUEKAN_OUTBOX_ORPHAN_AFTER_S": "1", "KUEKAN_LOG_LEVEL": "warning"}
    out = log.open("ab")
    return subprocess.Popen([sys.executable, "-m", "kuekan", "worker"], env=env, cwd=REPO,
                            stdout=out, stderr=subprocess.STDOUT)


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


async def wait_for(pred: object, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if await pred():  # type: ignore[operator]
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")


async def test_worker_killed_mid_job_completes_it_exactly_once_after_restart(
        pool: asyncpg.Pool, tmp_path: Path) -> None:
    log = tmp_path / "worker.log"
    oid = int(await pool.fetchval(
        "insert into outbox (topic, payload) values ('ops.probe', $1) returning id",
        {"sleep_s": 30, "sleep_tries": 1}))
    key = lock_key(oid)
    first = start_worker(log)
    try:
        async def mid_job() -> bool:
            # The job holds its row's advisory lock while its transaction is open.
            return bool(await pool.fetchval(
                "select count(*) from pg_locks where locktype = 'advisory' and granted"
                " and classid::bigint = $1 and objid::bigint = $2", key >> 32, key & 0xFFFFFFFF))

        await wait_for(mid_job, 60, "the job to start")
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
    finally:
        stop(first)
    assert await pool.fetchval("select count(*) from ops_probe_effects where outbox_id = $1",
                               oid) == 0, "the killed transaction must not have committed"
    assert await pool.fetchval("select count(*) from outbox_processed where outbox_id = $1",
                               oid) == 0
    second = start_worker(log)
    try:
        async def processed() -> bool:
            return bool(await pool.fetchval(
                "select count(*) from outbox_processed where outbox_id = $1", oid))

        await wait_for(processed, 90, "the job to complete after restart")
        await asyncio.sleep(2)  # room for a (wrong) second run to show up
    finally:
        stop(second)
    assert await pool.fetchval("select count(*) from ops_probe_effects where outbox_id = $1",
                               oid) == 1, log.read_text()[-3000:]
    left = await pool.fetchval(
        "select count(*) from outbox o where o.topic = 'ops.probe' and (o.relayed_at is null"
        " or not exists (select 1 from outbox_processed p where p.outbox_id = o.id))"
        " and not exists (select 1 from outbox_dead d where d.outbox_id = o.id)")
    assert left == 0


ROWS = 10_000


@pytest.mark.slow
async def test_two_workers_drain_ten_thousand_rows_without_loss_or_duplicates(
        pool: asyncpg.Pool, tmp_path: Path) -> None:
    first_id = int(await pool.fetchval(
        "with ins as (insert into outbox (topic, payload) select 'ops.probe',"
        " jsonb_build_object('n', g) from generate_series(1, $1) g returning id)"
        " select min(id) from ins", ROWS))
    last_id = first_id + ROWS - 1
    log = tmp_path / "workers.log"
    started = time.monotonic()
    workers = [start_worker(log), start_worker(log)]
    relayed_at: list[float] = []
    try:
        async def drained() -> bool:
            rel, done = await pool.fetchrow(
                "select (select count(*) from outbox where id between $1 and $2"
                " and relayed_at is not null),"
                " (select count(*) from outbox_processed where outbox_id between $1 and $2)",
                first_id, last_id)
            if rel == ROWS and not relayed_at:
                relayed_at.append(time.monotonic())
            return bool(done == ROWS)

        await wait_for(drained, 300, "10,000 rows to be processed")
        elapsed = time.monotonic() - started
    finally:
        for w in workers:
            stop(w)
    total, distinct = await pool.fetchrow(
        "select count(*), count(distinct outbox_id) from ops_probe_effects"
        " where outbox_id between $1 and $2", first_id, last_id)
    assert (total, distinct) == (ROWS, ROWS), log.read_text()[-3000:]
    relay_s = (relayed_at[0] if relayed_at else time.monotonic()) - started
    print(f"\n10,000 outbox rows, 2 workers (process start included): "  # noqa: T201
          f"relayed in {relay_s:.1f}s"
          f" ({ROWS / relay_s:,.0f} rows/s), processed in {elapsed:.1f}s"
          f" ({ROWS / elapsed:,.0f} rows/s)")


FLOOD_ROWS = 2_000


async def test_worker_killed_during_a_flood_processes_every_row_exactly_once_after_restart(
        pool: asyncpg.Pool, tmp_path: Path) -> None:
    """SIGKILL while jobs are in flight (each one sleeps a little mid-transaction, so dozens
    are open at the kill); the restarted worker finishes the rest, nothing twice, none left."""
    first_id = int(await pool.fetchval(
        "with ins as (insert into outbox (topic, payload) select 'ops.probe',"
        " jsonb_build_object('n', g, 'sleep_s', 0.05) from generate_series(1, $1) g"
        " returning id) select min(id) from ins", FLOOD_ROWS))
    last_id = first_id + FLOOD_ROWS - 1
    log = tmp_path / "worker.log"

    async def done() -> int:
        return int(await pool.fetchval("select count(*) from outbox_processed"
                                       " where outbox_id between $1 and $2", first_id, last_id))

    first = start_worker(log)
    try:
        async def some_done() -> bool:
            return await done() >= FLOOD_ROWS // 10

        await wait_for(some_done, 30, "the flood to be under way")
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
    finally:
        stop(first)
    at_kill = await done()
    assert at_kill < FLOOD_ROWS, "killed too late to prove anything"
    await asyncio.sleep(1.2)  # older than KUEKAN_OUTBOX_ORPHAN_AFTER_S: the startup sweep
    second = start_worker(log)
    try:
        async def all_done() -> bool:
            return await done() == FLOOD_ROWS

        await wait_for(all_done, 60, f"all {FLOOD_ROWS} rows after restart")
        await asyncio.sleep(1)  # room for a (wrong) second run to show up
    finally:
        stop(second)
    total, distinct = await pool.fetchrow(
        "select count(*), count(distinct outbox_id) from ops_probe_effects"
        " where outbox_id between $1 and $2", first_id, last_id)
    assert (total, distinct) == (FLOOD_ROWS, FLOOD_ROWS), log.read_text()[-3000:]
    left = await pool.fetchval(
        "select count(*) from outbox o where o.id between $1 and $2 and (o.relayed_at is null"
        " or not exists (select 1 from outbox_processed p where p.outbox_id = o.id))",
        first_id, last_id)
    assert left == 0
    assert await pool.fetchval("select count(*) from outbox_dead where outbox_id between $1"
                               " and $2", first_id, last_id) == 0


def test_sigterm_during_the_restart_back_off_stops_the_worker(
        database: str, tmp_path: Path) -> None:
    """Redis unreachable: the worker backs off between restarts; SIGTERM ends it there and then
    (an orchestrator would otherwise have to SIGKILL it)."""
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        dead_port = s.getsockname()[1]
    log = tmp_path / "worker.log"
    env = {**os.environ, "KUEKAN_REDIS_URL": f"redis://127.0.0.1:{dead_port}/0",
           "KUEKAN_LOG_LEVEL": "info"}
    with log.open("ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", "kuekan", "worker"], env=env, cwd=REPO,
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and log.read_text().count("worker_storage_lost") < 2:
            assert proc.poll() is None, log.read_text()[-2000:]
            time.sleep(0.1)
        assert log.read_text().count("worker_storage_lost") >= 2, log.read_text()[-2000:]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=5) == 0
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
