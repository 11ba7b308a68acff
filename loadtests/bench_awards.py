"""Awards per second through the HTTP API, side by side with pgbench on the same database.

    .venv/bin/python loadtests/bench_awards.py --n 20000 --c 64        (or: make bench)

1. Recreates the dedicated database ``kuekan_bench`` (migrations applied) and flushes its own
   Redis db (/13); seeds one funder (with a budget, as the real funders have) and N+warm-up
   members, and an admin.
2. Starts ``python -m kuekan serve`` on a free 127.0.0.1 port (KUEKAN_RATE_LIMITS=off).
3. Sends N ``POST /api/v1/admin/awards`` (unique Idempotency-Key, one distinct member each) from
   C concurrent keep-alive connections (a raw asyncio HTTP/1.1 client: the client is not the
   bottleneck), prints awards/s and p50/p95/p99.
4. Stops the API, then runs ``pgbench -n -M prepared -c C -j 2 -T secs -f award.sql``
   (loadtests/pgbench/award.sql: the same kk_award_idem call the API makes) on the same
   database; prints TPS and latency.
5. Prints the ratio API/pgbench, checks every acknowledged award is in the ledger exactly once
   and runs the ledger invariants. Every process it started is stopped by its PID.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import subprocess
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import asyncpg
from stack import (
    PG_BASE,
    REDIS_BASE,
    REPO,
    Procs,
    Request,
    backend_pids,
    flood,
    flush_redis_db,
    free_port,
    pids_cpu,
    raise_nofile,
    recreate_database,
    stack_env,
    start_api,
    tree_cpu,
)

POINTS = 10


async def seed(dsn: str, members: int) -> tuple[int, list[int], str, str]:
    """Funder, members and an admin; returns funder id, member ids, admin token, admin scope."""
    os.environ["KUEKAN_DATABASE_URL"] = dsn
    from kuekan.auth.tokens import Principal, TokenService
    from kuekan.db import init_connection
    from kuekan.ledger import repository as ledger_repo
    from kuekan.members import repository as members_repo
    from kuekan.settings import load_settings

    settings = load_settings()
    conn = await asyncpg.connect(dsn)
    await init_connection(conn)
    try:
        funder = await ledger_repo.create_funder(conn, "BENCH", "Bench funder", "pao",
                                                 2_000_000_000, settings.budget_slices)
        subs = [f"Ubench-{i}" for i in range(members)]
        ids: dict[str, int] = {}
        for start in range(0, members, 5000):
            ids.update(await members_repo.ensure_members(conn, subs[start:start + 5000]))
        staff = await members_repo.ensure_staff(conn, "Ubench-admin", "admin", None, "pao")
    finally:
        await conn.close()
    principal = Principal("admin", staff, "Ubench-admin", org="pao")
    token = TokenService(settings).issue(principal, ttl_s=3600)
    return int(funder["id"]), [ids[s] for s in subs], token, principal.scope


async def http_awards(base: str, token: str, funder: int, member_ids: list[int], conc: int,
                      run_id: str) -> dict[str, object]:
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    def make(i: int) -> Request:
        body = json.dumps({"member_id": member_ids[i], "points": POINTS, "funder_id": funder,
                           "reason": "bench"}).encode()
        return "POST", "/api/v1/admin/awards", {**headers, "Idempotency-Key": f"{run_id}-{i}"}, body

    res = await flood(base, len(member_ids), conc, make)
    return {"elapsed": res.elapsed, "acked": [f"{run_id}-{i}" for i in res.acked],
            "statuses": res.statuses, "errors": res.errors, "retries": res.retries,
            "rps": res.rps, "p50": res.p(50), "p95": res.p(95), "p99": res.p(99),
            "max": res.lat[-1] if res.lat else float("nan")}


def run_pgbench(db: str, clients: int, threads: int, seconds: int, funder: int,
                min_id: int, max_id: int, scope: str) -> dict[str, float]:
    argv = ["pgbench", "-h", "127.0.0.1", "-U", "postgres", "-n", "-M", "prepared",
            "-c", str(clients), "-j", str(threads), "-T", str(seconds), "-r",
            "-f", str(REPO / "loadtests" / "pgbench" / "award.sql"),
            "-D", f"minid={min_id}", "-D", f"maxid={max_id}", "-D", f"funder={funder}",
            "-D", f"scope={scope}", db]
    print("$", " ".join(argv), flush=True)
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        out, _ = proc.communicate(timeout=seconds + 60)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
    tps = re.search(r"tps = ([\d.]+) \(without initial connection time\)", out)
    avg = re.search(r"latency average = ([\d.]+) ms", out)
    failed = re.search(r"number of failed transactions: (\d+)", out)
    done = re.search(r"number of transactions actually processed: (\d+)", out)
    if not tps:
        print(out)
        raise SystemExit("pgbench failed")
    return {"tps": float(tps.group(1)), "avg_ms": float(avg.group(1)) if avg else float("nan"),
            "failed": float(failed.group(1)) if failed else 0.0,
            "done": float(done.group(1)) if done else 0.0}


async def verify(dsn: str, scope: str, acked: list[str]) -> tuple[int, int, list[str]]:
    from kuekan.ledger.check import check_ledger

    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "select ref ->> 'idem' as k, count(*) as n from transfers"
            " where ref ->> 'idem' like $1 group by 1", f"{scope}:%")
        in_ledger = {r["k"].split(":", 2)[-1]: r["n"] for r in rows}
        lost = sum(1 for k in acked if k not in in_ledger)
        dup = sum(1 for n in in_ledger.values() if n > 1)
        results = await check_ledger(conn)
    finally:
        await conn.close()
    return lost, dup, [f"{'PASS' if r.ok else 'FAIL'} {r.name}" for r in results]


async def main() -> int:  # noqa: PLR0915 - one linear script
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=20000, help="awards through HTTP")
    ap.add_argument("--c", type=int, default=64, help="concurrent clients (HTTP and pgbench)")
    ap.add_argument("--workers", type=int, default=2, help="uvicorn worker processes")
    ap.add_argument("--warmup", type=int, default=1000)
    ap.add_argument("--pgbench-seconds", type=int, default=20)
    ap.add_argument("--pgbench-clients", type=int, default=None, help="default: --c")
    ap.add_argument("--db", default="kuekan_bench")
    ap.add_argument("--redis-db", type=int, default=13)
    ap.add_argument("--keep-db", action="store_true")
    ap.add_argument("--profile", default=None,
                    help="write a py-spy raw (collapsed) profile of the API to this file")
    ap.add_argument("--app", default=None,
                    help="A/B only: uvicorn app factory module:func instead of kuekan serve")
    ap.add_argument("--app-dir", default=None, help="directory holding --app's module")
    ap.add_argument("--py-spy", default="py-spy", help="py-spy executable")
    args = ap.parse_args()
    raise_nofile()

    dsn = await recreate_database(args.db)
    redis_url = f"{REDIS_BASE}/{args.redis_db}"
    await flush_redis_db(redis_url)
    t0 = time.perf_counter()
    funder, ids, token, scope = await seed(dsn, args.n + args.warmup)
    print(f"seeded funder {funder} and {len(ids)} members in {time.perf_counter() - t0:.1f} s",
          flush=True)
    logdir = REPO / "loadtests" / "reports"
    logdir.mkdir(parents=True, exist_ok=True)
    procs = Procs()
    try:
        port = free_port()
        api, base = start_api(procs, stack_env(dsn, redis_url), port=port,
                              workers=args.workers, log=logdir / "bench_api.log",
                              app=args.app, app_dir=args.app_dir)
        print(f"API pid {api.pid} at {base}, {args.workers} workers", flush=True)
        warm = await http_awards(base, token, funder, ids[args.n:], args.c, "warm")
        print(f"warm-up: {len(warm['acked'])} awards", flush=True)  # type: ignore[arg-type]
        run_id = uuid.uuid4().hex[:8]
        spy = None
        if args.profile:
            # py-spy (pip install py-spy) samples the API processes during the measured phase.
            spy = procs.start("py-spy", [args.py_spy, "record", "--pid", str(api.pid),
                                         "--subprocesses", "--nonblocking", "--rate", "200",
                                         "--format", "raw", "-o", args.profile], dict(os.environ))
        pg_pids = await backend_pids(args.db)  # the API pools' backends, open after warm-up
        cpu_api0, cpu_pg0 = tree_cpu(api.pid), pids_cpu(pg_pids)
        res = await http_awards(base, token, funder, ids[:args.n], args.c, run_id)
        cpu_api, cpu_pg = tree_cpu(api.pid) - cpu_api0, pids_cpu(pg_pids) - cpu_pg0
        if spy is not None:
            os.kill(spy.pid, 2)  # SIGINT: py-spy writes its profile and exits
            spy.wait(timeout=30)
        procs.stop(api)
    finally:
        procs.stop_all()

    acked: list[str] = res["acked"]  # type: ignore[assignment]
    print(f"\nHTTP  POST /api/v1/admin/awards  N={args.n} C={args.c} "
          f"workers={args.workers}")
    print(f"  awards/s {res['rps']:8.0f}   ({len(acked)} acknowledged in "
          f"{res['elapsed']:.1f} s)")
    print(f"  latency  p50 {res['p50'] * 1000:6.1f} ms  p95 {res['p95'] * 1000:6.1f} ms  "
          f"p99 {res['p99'] * 1000:6.1f} ms  max {res['max'] * 1000:6.1f} ms")
    print(f"  statuses {res['statuses']}  transport errors {res['errors']}  "
          f"retries {res['retries']}")
    n_ok = max(1, len(acked))
    print(f"  CPU per award: API {1000 * cpu_api / n_ok:.2f} ms, PostgreSQL backends "
          f"{1000 * cpu_pg / n_ok:.2f} ms  (a ceiling of {n_ok / max(cpu_api, 1e-9):.0f} "
          f"awards per API core-second)", flush=True)

    pg = run_pgbench(args.db, args.pgbench_clients or args.c, 2, args.pgbench_seconds, funder,
                     min(ids), max(ids), "admin:pgbench")
    print(f"\npgbench  kk_award_idem  c={args.pgbench_clients or args.c} j=2 "
          f"T={args.pgbench_seconds}s")
    print(f"  TPS {pg['tps']:8.0f}   latency avg {pg['avg_ms']:.2f} ms   "
          f"transactions {pg['done']:.0f}  failed {pg['failed']:.0f}")
    ratio = res["rps"] / pg["tps"]  # type: ignore[operator]
    print(f"\nRATIO  HTTP awards/s / pgbench TPS = {ratio:.2f}")

    lost, dup, checks = await verify(dsn, scope, acked)
    print(f"ledger: acknowledged {len(acked)}, lost {lost}, duplicated {dup}")
    for c in checks:
        print("  " + c)
    if not args.keep_db:
        admin = await asyncpg.connect(f"{PG_BASE}/postgres")
        try:
            await admin.execute(f'drop database if exists "{args.db}"')
        finally:
            await admin.close()
    ok = lost == 0 and dup == 0 and all(c.startswith("PASS") for c in checks)
    return 0 if ok else 1


if __name__ == "__main__":
    try:
        import uvloop
        uvloop.install()
    except ImportError:
        pass
    raise SystemExit(asyncio.run(main()))
