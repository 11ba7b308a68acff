"""Merchant purchase scans/s and redemptions/s through HTTP, next to pgbench on the same DB.

    .venv/bin/python loadtests/bench_scans.py --n 5000 --c 64

1. Recreates ``kuekan_bench_rewards`` (migrated), flushes Redis db /12, seeds one funder, 20
   merchants (no daily cap), one staff member per merchant, N members with points, and a
   reward with a stock larger than N.
2. Starts the API (KUEKAN_RATE_LIMITS=off, member daily cap raised so the bench measures the
   path, not the refusal) and sends N ``POST /merchant/scans`` (purchase 100 THB, a fresh
   member QR token each) and N ``POST /redemptions`` from C keep-alive connections; prints the
   rate and p50/p95/p99 of each.
3. Stops the API and runs pgbench with loadtests/pgbench/scan.sql and redeem.sql (the same SQL
   calls, in the same transaction shape) on the same database; prints TPS and the ratios.
4. Runs the ledger invariants. Every process it started is stopped by its PID.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

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

CAP = 1_000_000_000
MERCHANTS = 20


async def seed(dsn: str, members: int) -> dict[str, Any]:
    import os

    os.environ["KUEKAN_DATABASE_URL"] = dsn
    from kuekan.auth.tokens import Principal, TokenService
    from kuekan.db import init_connection
    from kuekan.ledger import repository as ledger_repo
    from kuekan.members import repository as members_repo
    from kuekan.merchants import repository as merchants_repo
    from kuekan.rewards import repository as rewards_repo
    from kuekan.settings import load_settings

    settings = load_settings()
    tokens = TokenService(settings)
    conn = await asyncpg.connect(dsn)
    await init_connection(conn)
    try:
        funder = int((await ledger_repo.create_funder(conn, "BENCH", "Bench", "chamber",
                                                      2_000_000_000, 16))["id"])
        shops, staff_tokens = [], []
        for i in range(MERCHANTS):
            mid = await merchants_repo.create_merchant(
                conn, name=f"bench shop {i}", district_code="3001", lat=14.97, lon=102.1,
                category="food", thb_per_point=10, min_spend_thb=0, funder_id=funder,
                daily_award_cap_points=None)
            sid = await members_repo.ensure_staff(conn, f"Ubench-staff-{i}", "merchant", mid,
                                                  None)
            shops.append(mid)
            staff_tokens.append(tokens.issue(Principal("merchant", sid, f"Ubench-staff-{i}",
                                                       merchant_id=mid), ttl_s=3600))
        subs = [f"Ubench-{i}" for i in range(members)]
        ids: dict[str, int] = {}
        for start in range(0, members, 5000):
            ids.update(await members_repo.ensure_members(conn, subs[start:start + 5000]))
        member_ids = [ids[s] for s in subs]
        await conn.execute(
            "select kk_award(m, $1, 100000, 'award', (now() at time zone 'Asia/Bangkok')::date,"
            " null, null, null, '{}'::jsonb, false, 16) from unnest($2::bigint[]) m",
            funder, member_ids)
        reward = await rewards_repo.create_reward(
            conn, name_th="bench", name_en="bench", category="merchant_voucher", cost_points=1,
            stock=100_000_000, per_member_limit=None, coupon_valid_days=30, min_tier=None,
            funder_id=None, merchant_ids=shops)
    finally:
        await conn.close()
    member_tokens = [tokens.issue(Principal("member", m, s), ttl_s=3600)
                     for m, s in zip(member_ids, subs, strict=True)]
    return {"funder": funder, "shops": shops, "staff": staff_tokens, "members": member_ids,
            "subs": subs, "member_tokens": member_tokens, "reward": reward, "tokens": tokens}


Req = Callable[[int], tuple[str, dict[str, str], bytes]]


async def drive(base: str, n: int, conc: int, make: Req) -> dict[str, Any]:
    def request(i: int) -> Request:
        path, hdrs, body = make(i)
        return "POST", path, hdrs, body

    res = await flood(base, n, conc, request, retry=False)
    return {"rps": res.rps, "elapsed": res.elapsed, "statuses": res.statuses, "p50": res.p(50),
            "p95": res.p(95), "p99": res.p(99)}


def pgbench(db: str, script: str, clients: int, seconds: int, defs: dict[str, Any]) -> float:
    argv = ["pgbench", "-h", "127.0.0.1", "-U", "postgres", "-n", "-M", "simple", "-c",
            str(clients), "-j", "2", "-T", str(seconds),
            "-f", str(REPO / "loadtests" / "pgbench" / script)]
    for k, v in defs.items():
        argv += ["-D", f"{k}={v}"]
    argv.append(db)
    print("$", " ".join(argv), flush=True)
    out = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 120,
                         check=False).stdout
    tps = re.search(r"tps = ([\d.]+) \(without initial connection time\)", out)
    failed = re.search(r"number of failed transactions: (\d+)", out)
    if not tps:
        print(out)
        raise SystemExit("pgbench failed")
    print(f"  pgbench {script}: TPS {float(tps.group(1)):.0f}, failed "
          f"{failed.group(1) if failed else '?'}")
    return float(tps.group(1))


def show(name: str, res: dict[str, Any]) -> None:
    print(f"HTTP {name}: {res['rps']:.0f}/s  p50 {res['p50'] * 1000:.1f} ms  p95 "
          f"{res['p95'] * 1000:.1f} ms  p99 {res['p99'] * 1000:.1f} ms  statuses "
          f"{res['statuses']}  ({res['elapsed']:.1f} s)", flush=True)


async def main() -> int:  # noqa: PLR0915 - one linear script
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=5000, help="requests per phase")
    ap.add_argument("--c", type=int, default=64, help="concurrent connections / pgbench clients")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--db-pool", type=int, default=8, help="API pool size per worker")
    ap.add_argument("--pgbench-seconds", type=int, default=15)
    ap.add_argument("--db", default="kuekan_bench_rewards")
    ap.add_argument("--redis-db", type=int, default=12)
    args = ap.parse_args()
    raise_nofile()
    dsn = await recreate_database(args.db)
    redis_url = f"{REDIS_BASE}/{args.redis_db}"
    await flush_redis_db(redis_url)
    w = await seed(dsn, args.n)
    from kuekan.auth.tokens import Principal

    tokens = w["tokens"]
    runs = {"run": "warm"}

    def scan(i: int) -> tuple[str, dict[str, str], bytes]:
        m = i % len(w["members"])
        qr = tokens.issue(Principal("member", w["members"][m], w["subs"][m]), typ="member_qr")
        hdrs = {"Authorization": f"Bearer {w['staff'][i % MERCHANTS]}",
                "Content-Type": "application/json", "Idempotency-Key": f"{runs['run']}-s{i}"}
        return "/api/v1/merchant/scans", hdrs, json.dumps(
            {"member_token": qr, "purchase_thb": 100}).encode()

    def redeem(i: int) -> tuple[str, dict[str, str], bytes]:
        m = i % len(w["members"])
        hdrs = {"Authorization": f"Bearer {w['member_tokens'][m]}",
                "Content-Type": "application/json", "Idempotency-Key": f"{runs['run']}-r{i}"}
        return "/api/v1/redemptions", hdrs, json.dumps({"reward_id": w["reward"]}).encode()

    procs = Procs()
    logdir = REPO / "loadtests" / "reports"
    try:
        # The PostgreSQL server is shared: keep the API's pools within --db-pool per worker.
        env = stack_env(dsn, redis_url, KUEKAN_MEMBER_DAILY_CAP_POINTS=str(CAP),
                        KUEKAN_DB_POOL_MAX=str(args.db_pool), KUEKAN_DB_POOL_MIN="2")
        api, base = start_api(procs, env, port=free_port(), workers=args.workers,
                              log=logdir / "bench_scans_api.log")
        await drive(base, min(500, args.n), args.c, scan)  # warm-up, keys of its own
        runs["run"] = uuid.uuid4().hex[:8]
        scans = await drive(base, args.n, args.c, scan)
        show("POST /merchant/scans (purchase)", scans)
        redeems = await drive(base, args.n, args.c, redeem)
        show("POST /redemptions", redeems)
        procs.stop(api)
    finally:
        procs.stop_all()
    lo, hi = min(w["members"]), max(w["members"])
    pg_clients = args.db_pool * args.workers  # same number of DB connections as the API had
    tps_scan = pgbench(args.db, "scan.sql", pg_clients, args.pgbench_seconds,
                       {"minid": lo, "maxid": hi, "merchant": w["shops"][0], "cap": CAP})
    tps_redeem = pgbench(args.db, "redeem.sql", pg_clients, args.pgbench_seconds,
                         {"minid": lo, "maxid": hi, "reward": w["reward"]})
    print(f"RATIO scans HTTP/pgbench = {scans['rps'] / tps_scan:.2f}   "
          f"redemptions HTTP/pgbench = {redeems['rps'] / tps_redeem:.2f}")
    from kuekan.ledger.check import check_ledger

    conn = await asyncpg.connect(dsn)
    try:
        failed = [r for r in await check_ledger(conn) if not r.ok]
    finally:
        await conn.close()
    print("ledger invariants:", "PASS" if not failed else f"FAIL {failed}")
    admin = await asyncpg.connect(f"{PG_BASE}/postgres")
    try:
        await admin.execute(f'drop database if exists "{args.db}"')
    finally:
        await admin.close()
    return 0 if not failed else 1


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
