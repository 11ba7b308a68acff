"""Throughput, latency and API CPU per request of single endpoints, one at a time.

    .venv/bin/python loadtests/bench_endpoints.py [--n 3000] [--c 64] [--workers 2]

Recreates ``kuekan_bench_ep`` (migrated, ``kuekan seed``), flushes Redis db /10, starts the API,
prepares member tokens with the CLI, then drives each endpoint with C keep-alive connections:
GET /healthz (the floor: no I/O), GET /me/pocket, GET /rewards, POST /checkins (distinct members,
inside the CREATIVE_SPLASH fence: every one a 201 award). Prints req/s, p50/p95 and the API
processes' CPU per request (from /proc: robust on a shared machine). ``--app``/``--app-dir`` as
in bench_awards.py for A/B measurements of a proposed change.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import asyncpg
import httpx
from run import _db_geometry, _find_geometry, inside_points
from stack import (
    PG_BASE,
    PY,
    REDIS_BASE,
    REPO,
    Procs,
    flood,
    flush_redis_db,
    free_port,
    raise_nofile,
    recreate_database,
    stack_env,
    start_api,
    tree_cpu,
)

Req = tuple[str, str, dict[str, str], bytes]


def kuekan_cli(env: dict[str, str], *args: str) -> str:
    return subprocess.run([PY, "-m", "kuekan", *args], env=env, cwd=REPO, check=True,
                          capture_output=True, text=True).stdout


async def drive(base: str, api_pid: int, name: str, n: int, conc: int,
                make: Callable[[int], Req]) -> None:
    cpu0 = tree_cpu(api_pid)
    res = await flood(base, n, conc, make, retry=False)
    cpu = tree_cpu(api_pid) - cpu0
    print(f"{name:26} {n / res.elapsed:7.0f} req/s  p50 {res.p(50) * 1000:6.1f} ms  "
          f"p95 {res.p(95) * 1000:6.1f} ms  API CPU {1000 * cpu / n:5.2f} ms/req  "
          f"{dict(sorted(res.statuses.items()))}", flush=True)


async def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=3000)
    ap.add_argument("--c", type=int, default=64)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--db", default="kuekan_bench_ep")
    ap.add_argument("--redis-db", type=int, default=10)
    ap.add_argument("--app", default=None)
    ap.add_argument("--app-dir", default=None)
    args = ap.parse_args()
    raise_nofile()
    dsn = await recreate_database(args.db)
    redis_url = f"{REDIS_BASE}/{args.redis_db}"
    await flush_redis_db(redis_url)
    env = stack_env(dsn, redis_url)
    await asyncio.to_thread(kuekan_cli, env, "seed")
    tokens = (await asyncio.to_thread(
        kuekan_cli, env, "token", "--role", "member", "--line-sub-prefix", "Uep-",
        "--count", str(args.n))).split()
    procs = Procs()
    try:
        api, base = start_api(procs, env, port=free_port(), workers=args.workers,
                              app=args.app, app_dir=args.app_dir)
        auth = [{"Authorization": f"Bearer {t}"} for t in tokens]
        async with httpx.AsyncClient(base_url=f"{base}/api/v1", timeout=30) as c:
            items = (await c.get("/missions", headers=auth[0])).json().get("items", [])
        mission = next((m for m in items if m.get("code") == "CREATIVE_SPLASH"), {})
        geom = _find_geometry(mission) or (await _db_geometry(dsn, mission) if mission else None)
        inside = inside_points(geom) if geom else [[14.9745, 102.0990]]

        def checkin(i: int) -> Req:
            lat, lon = inside[i % len(inside)]
            body = {"mission_id": mission.get("id"), "lat": lat, "lon": lon, "accuracy_m": 10,
                    "device_id": f"dev-{i}"}
            return ("POST", "/api/v1/checkins",
                    {**auth[i], "Content-Type": "application/json",
                     "Idempotency-Key": uuid.uuid4().hex}, json.dumps(body).encode())

        await drive(base, api.pid, "GET /healthz", args.n, args.c,
                    lambda i: ("GET", "/healthz", {}, b""))
        await drive(base, api.pid, "GET /api/v1/me/pocket", args.n, args.c,
                    lambda i: ("GET", "/api/v1/me/pocket", auth[i], b""))
        await drive(base, api.pid, "GET /api/v1/rewards", args.n, args.c,
                    lambda i: ("GET", "/api/v1/rewards", auth[i], b""))
        await drive(base, api.pid, "POST /api/v1/checkins", args.n, args.c, checkin)
    finally:
        procs.stop_all()
    conn = await asyncpg.connect(f"{PG_BASE}/postgres")
    try:
        await conn.execute(f'drop database if exists "{args.db}"')
    finally:
        await conn.close()
    return 0


if __name__ == "__main__":
    try:
        import uvloop
        uvloop.install()
    except ImportError:
        pass
    raise SystemExit(asyncio.run(main()))
