"""Admin awards through HTTP driven by wrk, next to pgbench's bare award transaction.

    .venv/bin/python loadtests/bench_wrk.py --duration 20 --c 64      (or: make bench-wrk)

The client is wrk (C, Debian's package): a Python client saturates its own core at a few
hundred requests/s and would measure itself. The denominator is not our SQL: it is the bare
award transaction (one INSERT with a unique key + one UPDATE of a balance,
``pgbench/bare_award.sql``) on the same server in the same run. pgbench running our own
``kk_award_idem`` (``pgbench/award.sql``) is printed too, so the two costs separate:

    HTTP / bare     what the whole service costs over the physical minimum
    HTTP / own SQL  what the HTTP layer costs over our SQL
    own SQL / bare  what our ledger SQL costs over the minimum ("ledger overhead")

1. Recreates the dedicated database (migrations applied), flushes its own Redis db, seeds a
   funder, members and an admin (``bench_awards.seed``).
2. Starts ``kuekan serve`` on a free 127.0.0.1 port, warms up with wrk, then runs wrk for
   ``--duration`` seconds (``wrk/award.lua``: a unique Idempotency-Key per request), measuring
   the CPU of the API, the PostgreSQL backends, wrk and the rest of the machine from /proc.
3. Stops the API; runs pgbench on the bare transaction and on ``kk_award_idem``.
4. Prints the three ratios, checks every acknowledged award is in the ledger exactly once and
   runs the ledger invariants. Every process it started is stopped by its PID.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import asyncpg
from bench_awards import run_pgbench, seed
from stack import (
    PG_BASE,
    REDIS_BASE,
    REPO,
    Procs,
    backend_pids,
    flush_redis_db,
    free_port,
    machine_cpu,
    pids_cpu,
    raise_nofile,
    recreate_database,
    stack_env,
    start_api,
    tree_cpu,
)

BARE_TABLES = """
create table if not exists bare_ledger (
    id bigint generated always as identity primary key,
    key text not null unique, member bigint not null, amount int not null,
    at timestamptz not null default now());
create table if not exists bare_balances (member bigint primary key, balance bigint not null);
"""
BARE_BALANCES = ("insert into bare_balances select g, 0 from generate_series(1, $1::int) g"
                 " on conflict do nothing")


def run_wrk(base: str, seconds: int, conns: int, threads: int, args: list[str],
            procs: Procs) -> tuple[dict[str, float], float]:
    """Run wrk; returns its WRK_RESULT and the CPU-seconds wrk itself used."""
    argv = ["wrk", "-t", str(threads), "-c", str(conns), "-d", f"{seconds}s", "--timeout", "10s",
            "-s", str(REPO / "loadtests" / "wrk" / "award.lua"), f"{base}/api/v1/admin/awards",
            "--", *args]
    log = REPO / "loadtests" / "reports" / "wrk.out"
    log.unlink(missing_ok=True)
    proc = procs.start("wrk", argv, {}, log)
    cpu = 0.0
    while proc.poll() is None:
        cpu = max(cpu, tree_cpu(proc.pid))
        time.sleep(0.2)
    out = log.read_text()
    line = next((x for x in out.splitlines() if x.startswith("WRK_RESULT ")), None)
    if line is None:
        print(out)
        raise SystemExit("wrk failed")
    return json.loads(line.removeprefix("WRK_RESULT ")), cpu


def run_bare_pgbench(db: str, clients: int, seconds: int, members: int) -> dict[str, float]:
    argv = ["pgbench", "-h", "127.0.0.1", "-U", "postgres", "-n", "-M", "prepared",
            "-c", str(clients), "-j", "2", "-T", str(seconds),
            "-f", str(REPO / "loadtests" / "pgbench" / "bare_award.sql"),
            "-D", f"members={members}", db]
    print("$", " ".join(argv), flush=True)
    out = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60,
                         check=False).stdout
    tps = next((x for x in out.splitlines() if x.startswith("tps = ")), None)
    if tps is None:
        print(out)
        raise SystemExit("pgbench (bare) failed")
    return {"tps": float(tps.split()[2])}


async def verify(dsn: str, scope: str, run: str, acked: int) -> tuple[int, int, list[str]]:
    """(missing, duplicated) against wrk's acknowledged count, and the ledger invariants."""
    from kuekan.ledger.check import check_ledger

    conn = await asyncpg.connect(dsn)
    try:
        total, distinct = await conn.fetchrow(
            "select count(*), count(distinct ref ->> 'idem') from transfers"
            " where ref ->> 'idem' like $1", f"{scope}:{run}-%")
        results = await check_ledger(conn)
    finally:
        await conn.close()
    return max(0, acked - distinct), total - distinct, [
        f"{'PASS' if r.ok else 'FAIL'} {r.name}" for r in results]


async def main() -> int:  # noqa: PLR0915 - one linear script
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=int, default=20, help="seconds of measured wrk load")
    ap.add_argument("--c", type=int, default=64, help="connections (wrk) and clients (pgbench)")
    ap.add_argument("--threads", type=int, default=2, help="wrk threads")
    ap.add_argument("--workers", type=int, default=2, help="API worker processes")
    ap.add_argument("--members", type=int, default=20000)
    ap.add_argument("--pgbench-seconds", type=int, default=20)
    ap.add_argument("--db", default="kuekan_bench_wrk")
    ap.add_argument("--redis-db", type=int, default=5)
    args = ap.parse_args()
    if not shutil.which("wrk") or not shutil.which("pgbench"):
        raise SystemExit("needs wrk and pgbench: apt-get install wrk postgresql-client")
    raise_nofile()

    dsn = await recreate_database(args.db)
    redis_url = f"{REDIS_BASE}/{args.redis_db}"
    await flush_redis_db(redis_url)
    funder, ids, token, scope = await seed(dsn, args.members)
    (REPO / "loadtests" / "reports").mkdir(parents=True, exist_ok=True)
    procs = Procs()
    run = uuid.uuid4().hex[:8]
    try:
        api, base = start_api(procs, stack_env(dsn, redis_url), port=free_port(),
                              workers=args.workers,
                              log=REPO / "loadtests" / "reports" / "bench_wrk_api.log")
        wrk_args = [token, str(funder), str(min(ids)), str(len(ids))]
        run_wrk(base, 5, args.c, args.threads, [*wrk_args, f"warm{run}"], procs)
        pg_pids = await backend_pids(args.db)
        api0, pg0, all0, t0 = tree_cpu(api.pid), pids_cpu(pg_pids), machine_cpu()[0], time.time()
        res, wrk_cpu = run_wrk(base, args.duration, args.c, args.threads, [*wrk_args, run], procs)
        api_cpu, pg_cpu = tree_cpu(api.pid) - api0, pids_cpu(pg_pids) - pg0
        all_cpu, wall = machine_cpu()[0] - all0, time.time() - t0
        procs.stop(api)
    finally:
        procs.stop_all()

    rps = res["ok"] / (res["duration_us"] / 1e6)
    print(f"\nHTTP  POST /api/v1/admin/awards  wrk -t{args.threads} -c{args.c} "
          f"-d{args.duration}s  API workers={args.workers}")
    print(f"  awards/s {rps:8.0f}   ok {res['ok']:.0f}  non-2xx {res['non_2xx']:.0f}  "
          f"socket errors {res['socket_errors']:.0f}")
    print(f"  latency  p50 {res['p50_us'] / 1000:6.1f} ms  p95 {res['p95_us'] / 1000:6.1f} ms  "
          f"p99 {res['p99_us'] / 1000:6.1f} ms  max {res['max_us'] / 1000:6.1f} ms")
    n = max(1.0, res["ok"])
    rest = max(0.0, all_cpu - api_cpu - pg_cpu - wrk_cpu)
    print(f"  CPU over {wall:.0f} s: API {api_cpu:.1f} s, PostgreSQL backends {pg_cpu:.1f} s, "
          f"wrk {wrk_cpu:.1f} s, rest of machine {rest:.1f} s")
    print(f"  CPU per award: API {1000 * api_cpu / n:.2f} ms, "
          f"PostgreSQL {1000 * pg_cpu / n:.2f} ms")

    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(BARE_TABLES)
        await conn.execute(BARE_BALANCES, len(ids))
    finally:
        await conn.close()
    bare = run_bare_pgbench(args.db, args.c, args.pgbench_seconds, len(ids))
    own = run_pgbench(args.db, args.c, 2, args.pgbench_seconds, funder, min(ids), max(ids),
                      "admin:pgbench")
    print(f"\npgbench c={args.c} j=2 T={args.pgbench_seconds}s")
    print(f"  bare award transaction (INSERT unique key + UPDATE)  TPS {bare['tps']:8.0f}")
    print(f"  kk_award_idem (our SQL for this endpoint)            TPS {own['tps']:8.0f}")
    print("\nRATIOS")
    print(f"  HTTP awards/s / bare TPS       = {rps / bare['tps']:.2f}")
    print(f"  HTTP awards/s / kk_award_idem  = {rps / own['tps']:.2f}")
    print(f"  ledger overhead: kk_award_idem / bare = {own['tps'] / bare['tps']:.2f}")

    lost, dup, checks = await verify(dsn, scope, run, int(res["ok"]))
    print(f"\nledger: acknowledged {res['ok']:.0f}, missing {lost}, duplicated {dup}")
    for c in checks:
        print("  " + c)
    admin = await asyncpg.connect(f"{PG_BASE}/postgres")
    try:
        await admin.execute(f'drop database if exists "{args.db}"')
    finally:
        await admin.close()
    return 0 if lost == 0 and dup == 0 and all(c.startswith("PASS") for c in checks) else 1


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
