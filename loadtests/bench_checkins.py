"""Check-ins per second through HTTP at one event geofence, side by side with pgbench.

    .venv/bin/python loadtests/bench_checkins.py --n 10000 --c 64

1. Recreates the database ``kuekan_bench_checkins`` (migrations applied), flushes Redis db /12;
   seeds a funder, the Creative Splash event fence and mission (no budget cap), N HTTP members
   and a separate contiguous block of pgbench members.
2. Starts ``python -m kuekan serve`` (KUEKAN_RATE_LIMITS=off), sends N ``POST /api/v1/checkins``
   (one distinct member each, unique Idempotency-Key, a point inside the fence) from C
   keep-alive connections; prints check-ins/s and p50/p95/p99.
3. Stops the API and runs ``pgbench -f loadtests/pgbench/checkin.sql`` (the same
   kk_checkin_idem call) on the same database; prints TPS and the ratio HTTP/pgbench.
4. Verifies every acknowledged check-in is awarded exactly once and the ledger invariants hold.
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
from typing import NamedTuple

sys.path.insert(0, str(Path(__file__).resolve().parent))

import asyncpg
from stack import (
    PG_BASE,
    REDIS_BASE,
    REPO,
    Procs,
    Request,
    flood,
    flush_redis_db,
    free_port,
    raise_nofile,
    recreate_database,
    stack_env,
    start_api,
)

LAT, LON = 14.9745, 102.0990
POINTS = 10


class Seeded(NamedTuple):
    http_mission: int
    pg_mission: int
    tokens: list[str]
    pg_min: int
    pg_count: int


async def seed(dsn: str, http_members: int, pg_members: int) -> Seeded:
    os.environ["KUEKAN_DATABASE_URL"] = dsn
    import datetime as dt

    from kuekan.auth.tokens import Principal, TokenService
    from kuekan.db import init_connection
    from kuekan.geo import repository as geo_repo
    from kuekan.geo.service import geometry_json
    from kuekan.ledger import repository as ledger_repo
    from kuekan.members import repository as members_repo
    from kuekan.missions import model
    from kuekan.missions import repository as repo
    from kuekan.missions.model import MissionSpec
    from kuekan.missions.seed import disc
    from kuekan.settings import load_settings

    settings = load_settings()
    conn = await asyncpg.connect(dsn)
    await init_connection(conn)
    try:
        funder = await ledger_repo.create_funder(conn, "BENCH", "Bench", "pao", None,
                                                 settings.budget_slices)
        fence = await geo_repo.upsert_by_code(
            conn, name="Korat Creative Splash", kind="event", code="event:CREATIVE_SPLASH",
            geometry=geometry_json(disc(LAT, LON, 450)), max_accuracy_m=150,
            edge_tolerance_m=30)
        start = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
        missions = []
        for code in ("CREATIVE_SPLASH", "CREATIVE_SPLASH_PGBENCH"):
            spec = MissionSpec(code=code, kind="event", title_th="โคราชครีเอทีฟสแปลช",
                               title_en="Korat Creative Splash", points=POINTS,
                               funder_id=int(funder["id"]), starts_at=start,
                               ends_at=start + dt.timedelta(days=2), geofence_id=fence,
                               recurrence="daily")
            missions.append((await repo.insert(conn, spec, model.new_venue_secret(),
                                               settings.budget_slices)).id)
        ids: list[int] = []
        for prefix, n in (("Uchk-http-", http_members), ("Uchk-pg-", pg_members)):
            subs = [f"{prefix}{i}" for i in range(n)]
            got: dict[str, int] = {}
            for s in range(0, n, 5000):
                got.update(await members_repo.ensure_members(conn, subs[s:s + 5000]))
            ids.extend(got[x] for x in subs)
        pg_ids = ids[http_members:]
        assert max(pg_ids) - min(pg_ids) + 1 == len(pg_ids), "pgbench members not contiguous"
        await conn.execute("create sequence if not exists kk_bench_checkin_seq")
    finally:
        await conn.close()
    tokens = TokenService(settings)
    http_ids = ids[:http_members]
    toks = [tokens.issue(Principal("member", i, f"Uchk-http-{n}"), ttl_s=3600)
            for n, i in enumerate(http_ids)]
    return Seeded(missions[0], missions[1], toks, min(pg_ids), len(pg_ids))


class HttpResult(NamedTuple):
    elapsed: float
    acked: int
    statuses: dict[int, int]
    rps: float
    p50: float
    p95: float
    p99: float


async def http_checkins(base: str, mission: int, tokens: list[str], conc: int,
                        run_id: str) -> HttpResult:
    body = json.dumps({"mission_id": mission, "lat": LAT, "lon": LON, "accuracy_m": 8}).encode()

    def make(i: int) -> Request:
        return "POST", "/api/v1/checkins", {
            "Authorization": f"Bearer {tokens[i]}", "Content-Type": "application/json",
            "Idempotency-Key": f"{run_id}-{i}"}, body

    res = await flood(base, len(tokens), conc, make)
    return HttpResult(res.elapsed, len(res.acked), res.statuses, res.rps, res.p(50), res.p(95),
                      res.p(99))


def run_pgbench(db: str, clients: int, seconds: int, mission: int, minid: int,
                count: int) -> dict[str, float]:
    argv = ["pgbench", "-h", "127.0.0.1", "-U", "postgres", "-n", "-M", "prepared",
            "-c", str(clients), "-j", "2", "-T", str(seconds),
            "-f", str(REPO / "loadtests" / "pgbench" / "checkin.sql"),
            "-D", f"minid={minid}", "-D", f"count={count}", "-D", f"mission={mission}", db]
    print("$", " ".join(argv), flush=True)
    out = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                         timeout=seconds + 60, check=False).stdout
    tps = re.search(r"tps = ([\d.]+) \(without initial connection time\)", out)
    avg = re.search(r"latency average = ([\d.]+) ms", out)
    done = re.search(r"number of transactions actually processed: (\d+)", out)
    if not tps:
        print(out)
        raise SystemExit("pgbench failed")
    return {"tps": float(tps.group(1)), "avg_ms": float(avg.group(1)) if avg else float("nan"),
            "done": float(done.group(1)) if done else 0.0}


async def verify(dsn: str, mission: int) -> tuple[int, int, list[str]]:
    from kuekan.ledger.check import check_ledger

    conn = await asyncpg.connect(dsn)
    try:
        awarded = await conn.fetchval("select count(*) from transfers"
                                      " where (ref->>'mission_id')::bigint = $1", mission)
        dup = await conn.fetchval(
            "select count(*) from (select member_id from transfers where"
            " (ref->>'mission_id')::bigint = $1 group by 1 having count(*) > 1) d", mission)
        results = await check_ledger(conn)
    finally:
        await conn.close()
    return int(awarded), int(dup), [f"{'PASS' if r.ok else 'FAIL'} {r.name}" for r in results]


async def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=10000, help="check-ins through HTTP")
    ap.add_argument("--c", type=int, default=64, help="concurrent clients (HTTP and pgbench)")
    ap.add_argument("--workers", type=int, default=2, help="API worker processes")
    ap.add_argument("--pgbench-seconds", type=int, default=15)
    ap.add_argument("--pgbench-members", type=int, default=200_000)
    ap.add_argument("--db", default="kuekan_bench_checkins")
    ap.add_argument("--redis-db", type=int, default=12)
    ap.add_argument("--keep-db", action="store_true")
    args = ap.parse_args()
    raise_nofile()
    dsn = await recreate_database(args.db)
    redis_url = f"{REDIS_BASE}/{args.redis_db}"
    await flush_redis_db(redis_url)
    warm = min(1000, args.n // 10)
    t0 = time.perf_counter()
    seeded = await seed(dsn, args.n + warm, args.pgbench_members)
    http_mission, pg_mission, tokens = seeded.http_mission, seeded.pg_mission, seeded.tokens
    print(f"seeded in {time.perf_counter() - t0:.1f} s", flush=True)
    logdir = REPO / "loadtests" / "reports"
    logdir.mkdir(parents=True, exist_ok=True)
    procs = Procs()
    try:
        api, base = start_api(procs, stack_env(dsn, redis_url), port=free_port(),
                              workers=args.workers, log=logdir / "bench_checkins_api.log")
        await http_checkins(base, http_mission, tokens[args.n:], args.c, "warm")
        res = await http_checkins(base, http_mission, tokens[:args.n], args.c,
                                  uuid.uuid4().hex[:8])
        procs.stop(api)
    finally:
        procs.stop_all()
    print(f"\nHTTP  POST /api/v1/checkins at one event geofence  N={args.n} C={args.c} "
          f"workers={args.workers}")
    print(f"  check-ins/s {res.rps:8.0f}  ({res.acked} in {res.elapsed:.1f} s)")
    print(f"  latency p50 {res.p50 * 1000:6.1f} ms  p95 {res.p95 * 1000:6.1f} ms  "
          f"p99 {res.p99 * 1000:6.1f} ms   statuses {res.statuses}", flush=True)
    pg = run_pgbench(args.db, args.c, args.pgbench_seconds, pg_mission,
                     seeded.pg_min, seeded.pg_count)
    print(f"\npgbench  kk_checkin_idem  c={args.c} j=2 T={args.pgbench_seconds}s")
    print(f"  TPS {pg['tps']:8.0f}   latency avg {pg['avg_ms']:.2f} ms   "
          f"transactions {pg['done']:.0f}")
    print(f"\nRATIO  HTTP check-ins/s / pgbench TPS = "
          f"{res.rps / pg['tps']:.2f}")
    awarded, dup, checks = await verify(dsn, http_mission)
    print(f"ledger: HTTP acknowledged {res.acked} (+warm-up), awarded {awarded},"
          f" duplicated members {dup}")
    for c in checks:
        print("  " + c)
    if not args.keep_db:
        admin = await asyncpg.connect(f"{PG_BASE}/postgres")
        try:
            await admin.execute(f'drop database if exists "{args.db}"')
        finally:
            await admin.close()
    return 0 if dup == 0 and all(c.startswith("PASS") for c in checks) else 1


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
