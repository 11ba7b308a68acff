"""One command: local stack + fixtures + a headless Locust scenario + check-ledger + a summary.

    .venv/bin/python loadtests/run.py --scenario event_flood --duration 300
    make loadtest SCENARIO=event_flood DURATION=300

Steps (everything on 127.0.0.1; every process is started here and stopped by its PID):
1. raise the open-files limit (soft -> hard), recreate the database ``kuekan_load`` (migrated),
   flush Redis db /11, ``python -m kuekan seed`` (funders, merchants, CREATIVE_SPLASH, rewards);
2. prepare fixtures: member tokens with ``python -m kuekan token --role member --line-sub-prefix
   Uload- --count N``, one merchant-staff token per merchant, the event mission id, points
   inside its geofence, the reward ids -> loadtests/reports/fixtures/;
3. start the API (``kuekan serve --workers W --backlog 8192``) and the ARQ worker;
4. run Locust headless (``--processes P``), CSV + HTML in loadtests/reports/;
   ``--scenario event_knee`` runs a stepped ramp of the event crowd instead (``--steps``,
   ``--step-s``) and prints, per step, offered and served req/s, p50/p95/p99 per endpoint and
   the CPU of each process, then the knee: the largest step holding p95 < 200 ms;
5. with LINE faked (the default), send the evening digest through the worker to the fake LINE
   API and check that each member with points got exactly one push;
6. run ``python -m kuekan check-ledger`` and print per-endpoint RPS, p50/p95/p99, failures split
   into intended refusals (409/403 business codes) and real errors, and the invariant results.
Exit status: 0 only with no real error, each digest pushed once, and every invariant holding.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import logging
import os
import random
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import asyncpg
import httpx
from stack import (
    PY,
    REDIS_BASE,
    REPO,
    Procs,
    accept_counters,
    flush_redis_db,
    free_port,
    machine_cpu,
    profile_summary,
    raise_nofile,
    recreate_database,
    stack_env,
    start_api,
    tree_cpu,
)

sys.path.insert(0, str(REPO))  # the fake LINE server of the tests
from tests.fakes.line_server import FakeLineServer

REPORTS = REPO / "loadtests" / "reports"
FIX = REPORTS / "fixtures"
API = "/api/v1"
EVENT_MISSION = "CREATIVE_SPLASH"


def parse_duration(s: str) -> int:
    m = re.fullmatch(r"(\d+)\s*([smh]?)", s.strip())
    if not m:
        raise argparse.ArgumentTypeError(f"bad duration {s!r} (e.g. 300, 90s, 5m)")
    return int(m.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600}[m.group(2)]


def cli(env: dict[str, str], *args: str, timeout: float = 300) -> str:
    res = subprocess.run([PY, "-m", "kuekan", *args], env=env, cwd=REPO, capture_output=True,
                         text=True, timeout=timeout, check=False)
    if res.returncode != 0 and args[0] != "check-ledger":
        raise SystemExit(f"kuekan {' '.join(args)} failed:\n{res.stderr[-3000:]}")
    return res.stdout


# --- fixtures -------------------------------------------------------------------------------
def _find_geometry(obj: Any) -> dict[str, Any] | None:
    """The first GeoJSON Polygon/MultiPolygon anywhere inside ``obj``."""
    if isinstance(obj, dict):
        if obj.get("type") in ("Polygon", "MultiPolygon") and "coordinates" in obj:
            return obj
        for v in obj.values():
            g = _find_geometry(v)
            if g:
                return g
    elif isinstance(obj, list):
        for v in obj:
            g = _find_geometry(v)
            if g:
                return g
    elif isinstance(obj, str) and obj.lstrip().startswith("{"):
        try:
            return _find_geometry(json.loads(obj))
        except ValueError:
            return None
    return None


async def _db_geometry(dsn: str, mission: dict[str, Any]) -> dict[str, Any] | None:
    """Fallback: read the mission's geofence row from the database, whatever its columns."""
    conn = await asyncpg.connect(dsn)
    try:
        gid = mission.get("geofence_id")
        if gid is None:
            gid = await conn.fetchval("select geofence_id from missions where code = $1",
                                      EVENT_MISSION)
        if gid is None:
            return None
        row = await conn.fetchrow("select * from geofences where id = $1", gid)
        return _find_geometry({k: (v if not isinstance(v, bytes | memoryview) else None)
                               for k, v in dict(row or {}).items()})
    except asyncpg.PostgresError:
        return None
    finally:
        await conn.close()


def inside_points(geom: dict[str, Any], n: int = 2000) -> list[list[float]]:
    from shapely.geometry import shape

    g = shape(geom)
    inner = g.buffer(-0.00015)  # ~15 m inside the edge: clearly "inside", not "edge"
    if inner.is_empty:
        inner = g
    minx, miny, maxx, maxy = inner.bounds
    rnd = random.Random(7)
    pts: list[list[float]] = []
    tries = 0
    while len(pts) < n and tries < n * 200:
        tries += 1
        x, y = rnd.uniform(minx, maxx), rnd.uniform(miny, maxy)
        if inner.covers(shape({"type": "Point", "coordinates": [x, y]})):
            pts.append([round(y, 7), round(x, 7)])
    if not pts:
        p = g.representative_point()
        pts = [[p.y, p.x]]
    return pts


async def prepare(env: dict[str, str], dsn: str, base: str, members: int, merchants: int,  # noqa: PLR0915 - one linear script
                  ttl_s: int) -> dict[str, Any]:
    FIX.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    toks = cli(env, "token", "--role", "member", "--line-sub-prefix", "Uload-",
               "--count", str(members), "--ttl-s", str(ttl_s), timeout=600)
    (FIX / "member_tokens.txt").write_text(toks)
    admin = cli(env, "token", "--role", "admin", "--org", "pao", "--line-sub", "Uload-admin",
                "--ttl-s", str(ttl_s)).strip()
    print(f"  {members} member tokens in {time.perf_counter() - t0:.1f} s", flush=True)
    summary: dict[str, Any] = {"mission_id": None, "inside": [], "reward_ids": []}
    member_tok = toks.split("\n", 1)[0]
    async with httpx.AsyncClient(base_url=base + API, timeout=30) as c:
        # Merchants: create more through the API when it allows it, else use the seeded ones.
        conn = await asyncpg.connect(dsn)
        try:
            mids = [r["id"] for r in await conn.fetch("select id from merchants order by id")]
            funder = await conn.fetchval("select id from funders order by id limit 1")
        finally:
            await conn.close()
        hdr = {"Authorization": f"Bearer {admin}"}
        admins = 1
        for i in range(len(mids), merchants):
            body = {"name": f"Load shop {i}", "district_code": "3001", "lat": 14.97 + i * 1e-4,
                    "lon": 102.1, "category": "food", "thb_per_point": 10, "funder_id": funder}
            r = await c.post("/admin/merchants", headers={**hdr, "Idempotency-Key": f"m{i}"},
                             json=body)
            if r.status_code == 429 and admins < 20:
                # The per-member rate limit is on, as in production: go on as another admin.
                admins += 1
                admin = cli(env, "token", "--role", "admin", "--org", "pao", "--line-sub",
                            f"Uload-admin-{admins}", "--ttl-s", str(ttl_s)).strip()
                hdr = {"Authorization": f"Bearer {admin}"}
                r = await c.post("/admin/merchants", json=body,
                                 headers={**hdr, "Idempotency-Key": f"m{i}"})
            if r.status_code not in (200, 201):
                print(f"  POST /admin/merchants -> {r.status_code}: using {len(mids)} seeded "
                      "merchants", flush=True)
                break
            mids.append(r.json()["id"])
        # Rewards and the merchants where each can be used (coupon scans must go there).
        r = await c.get("/rewards", headers={"Authorization": f"Bearer {member_tok}"})
        items = r.json().get("items", []) if r.status_code == 200 else []
        rewards = {it["id"]: it.get("merchant_ids") or [] for it in items
                   if isinstance(it, dict) and "id" in it}
        summary["reward_ids"] = list(rewards)[:20]
        summary["reward_merchants"] = {str(k): v for k, v in rewards.items()}
        reward_mids = sorted({m for v in rewards.values() for m in v if m in set(mids)})
        # One staff token per simulated merchant user ("merchant_id<TAB>token" per line); one
        # in five works at a shop that takes coupons, the rest spread over all merchants.
        os.environ["KUEKAN_DATABASE_URL"] = dsn
        from kuekan.auth.tokens import Principal, TokenService
        from kuekan.members import repository as members_repo
        from kuekan.settings import load_settings

        settings = load_settings()
        ts = TokenService(settings)
        conn = await asyncpg.connect(dsn)
        mtoks = []
        try:
            for i in range(merchants if mids else 0):
                pool = reward_mids if (reward_mids and i % 5 == 0) else mids
                mid = pool[(i // 5 if pool is reward_mids else i) % len(pool)]
                sub = f"Uload-staff-{i}"
                sid = await members_repo.ensure_staff(conn, sub, "merchant", mid, None)
                tok = ts.issue(Principal("merchant", sid, sub, merchant_id=mid), ttl_s=ttl_s)
                mtoks.append(f"{mid}\t{tok}")
        finally:
            await conn.close()
        (FIX / "merchant_tokens.txt").write_text("\n".join(mtoks) + "\n")
        summary["merchants"] = len(set(mids))
        # The event mission and points inside its fence.
        r = await c.get("/missions", headers={"Authorization": f"Bearer {member_tok}"})
        items = r.json().get("items", []) if r.status_code == 200 else []
        mission = next((m for m in items if m.get("code") == EVENT_MISSION), None)
        if mission is None:
            print(f"  GET /missions -> {r.status_code}; mission {EVENT_MISSION} not found "
                  "(check-ins will be refused or 404)", flush=True)
            mission = {}
        summary["mission_id"] = mission.get("id")
        geom = _find_geometry(mission)
        if geom is None and mission.get("geofence_id") is not None:
            g = await c.get(f"/admin/geofences/{mission['geofence_id']}", headers=hdr)
            geom = _find_geometry(g.json()) if g.status_code == 200 else None
        if geom is None and mission:
            geom = await _db_geometry(dsn, mission)
        if geom is not None:
            summary["inside"] = inside_points(geom)
            gid = mission.get("geofence_id")
            if gid is not None:
                lat, lon = summary["inside"][0]
                t = await c.post(f"/admin/geofences/{gid}/test", headers=hdr,
                                 json={"lat": lat, "lon": lon, "accuracy_m": 10})
                if t.status_code == 200:
                    summary["fence_test"] = t.json()
    (FIX / "fixtures.json").write_text(json.dumps(summary))
    return summary


async def evening_digest(dsn: str, redis_url: str, line: FakeLineServer,
                         timeout_s: float) -> bool:
    """After the run: the day's LINE digests, as the evening cron sends them (one push per
    member who earned points today), through the worker to the fake LINE server. Prints the
    push rate and checks that every member got exactly one."""
    from kuekan.outbox.queue import arq_redis

    digests = ("select count(*) as n, count(distinct member_id) as members,"
               " extract(epoch from max(sent_at) - min(created_at)) as span_s"
               " from notify_messages where kind = 'points_digest' and status = 'sent'")
    conn = await asyncpg.connect(dsn)
    try:
        # Check-ins reach the digest through the outbox: wait for the worker to be through it.
        for _ in range(int(timeout_s)):
            if not await conn.fetchval("select count(*) from outbox o where not exists"
                                       " (select 1 from outbox_processed p"
                                       " where p.outbox_id = o.id)"):
                break
            await asyncio.sleep(1)
        due = int(await conn.fetchval("select count(*) from notify_digest where points > 0"))
        queue = arq_redis(redis_url)
        try:
            # (If the run crossed the configured digest hour, the cron has sent them already.)
            await queue.enqueue_job("send_points_digests",
                                    _job_id=f"loadtest-digest-{time.time()}")
        finally:
            await queue.aclose()
        for _ in range(int(2 * timeout_s)):
            row = await conn.fetchrow(digests)
            if row["n"] >= due:
                break
            await asyncio.sleep(0.5)
    finally:
        await conn.close()
    recipients = [to for d in line.deliveries if d.endpoint == "push" for to in d.to]
    once = row["n"] == row["members"] == due == len(recipients) == len(set(recipients))
    span = float(row["span_s"] or 0.0)
    print(f"evening LINE digest (worker -> fake LINE API): {row['n']} pushes for {due} members "
          f"with points today, {len(recipients)} received by the fake, in {span:.1f} s from the "
          f"first planned to the last sent ({row['n'] / max(span, 0.001):.0f} pushes/s); "
          f"{'each member exactly once' if once else 'NOT each member exactly once'}",
          flush=True)
    return once


# --- report ---------------------------------------------------------------------------------
def summarise(prefix: Path) -> tuple[int, int]:
    with open(f"{prefix}_stats.csv", newline="") as fh:
        stats = list(csv.DictReader(fh))
    fails: list[dict[str, str]] = []
    if Path(f"{prefix}_failures.csv").exists():
        with open(f"{prefix}_failures.csv", newline="") as fh:
            fails = list(csv.DictReader(fh))
    refusals: dict[str, int] = {}
    errors: dict[str, int] = {}
    per_name_ref: dict[str, int] = {}
    per_name_err: dict[str, int] = {}
    for f in fails:
        n = int(f["Occurrences"])
        m = re.search(r"refusal (\d+) (\w+|\?)", f["Error"])
        if m:
            k = f"{m.group(1)} {m.group(2)}"
            refusals[k] = refusals.get(k, 0) + n
            per_name_ref[f["Name"]] = per_name_ref.get(f["Name"], 0) + n
        else:
            k = f"{f['Name']}: {f['Error'][:120]}"
            errors[k] = errors.get(k, 0) + n
            per_name_err[f["Name"]] = per_name_err.get(f["Name"], 0) + n
    print(f"\n{'endpoint':34} {'reqs':>8} {'rps':>7} {'p50':>6} {'p95':>6} {'p99':>6} "
          f"{'max':>6} {'refused':>8} {'errors':>7}")
    total_req = total_err = 0
    for s in stats:
        name = s["Name"]
        if name == "Aggregated":
            continue
        reqs = int(s["Request Count"])
        total_req += reqs
        total_err += per_name_err.get(name, 0)
        print(f"{name[:34]:34} {reqs:8d} {float(s['Requests/s']):7.1f} {s['50%']:>6} "
              f"{s['95%']:>6} {s['99%']:>6} {float(s['Max Response Time']):6.0f} "
              f"{per_name_ref.get(name, 0):8d} {per_name_err.get(name, 0):7d}")
    agg = next((s for s in stats if s["Name"] == "Aggregated"), None)
    if agg:
        print(f"{'ALL':34} {int(agg['Request Count']):8d} {float(agg['Requests/s']):7.1f} "
              f"{agg['50%']:>6} {agg['95%']:>6} {agg['99%']:>6} "
              f"{float(agg['Max Response Time']):6.0f}   (ms)")
    print(f"\nintended refusals (409/403 business codes): {sum(refusals.values())}")
    for k, n in sorted(refusals.items(), key=lambda kv: -kv[1]):
        print(f"  {n:8d}  {k}")
    rate = 100.0 * total_err / total_req if total_req else 0.0
    print(f"real errors (5xx, timeouts, connection errors, unexpected): {total_err} "
          f"({rate:.3f} % of {total_req} requests; budget 0.1 %)")
    for k, n in sorted(errors.items(), key=lambda kv: -kv[1])[:15]:
        print(f"  {n:8d}  {k}")
    return total_req, total_err


def knee_report(out: Path, steps: list[int], step_s: int, think: tuple[float, float],
                samples: list[tuple[float, dict[str, float]]], t0: float) -> None:
    """Per step of the stepped ramp: offered and served req/s, p50/p95/p99 per endpoint, CPU
    per process, and the knee: the largest step whose every endpoint holds p95 < 200 ms."""
    hist: dict[tuple[int, str], dict[int, int]] = {}
    fails: dict[tuple[int, str], int] = {}
    for f in out.glob("knee-*.json"):
        data = json.loads(f.read_text())
        for step, name, ms, n in data["hist"]:
            bucket = hist.setdefault((step, name), {})
            bucket[ms] = bucket.get(ms, 0) + n
        for step, name, n in data["fails"]:
            fails[(step, name)] = fails.get((step, name), 0) + n

    def pcts(counts: dict[int, int]) -> tuple[int, int, int, int]:
        total = sum(counts.values())
        marks, out_ms, seen = [0.50, 0.95, 0.99], [], 0
        for ms in sorted(counts):
            seen += counts[ms]
            while marks and seen >= marks[0] * total:
                out_ms.append(ms)
                marks.pop(0)
        return total, *out_ms  # type: ignore[return-value]

    def cpu_at(t: float) -> dict[str, float]:
        return min(samples, key=lambda s: abs(s[0] - t))[1] if samples else {}

    window = step_s - step_s / 3
    mean_think = sum(think) / 2
    print(f"\n=== knee: steps of {step_s} s (measured: the last two thirds of each), think "
          f"{think[0]:g}-{think[1]:g} s ===")
    knee = None
    for i, users in enumerate(steps):
        names = sorted(n for (st, n) in hist if st == i)
        if not names:
            continue
        start, end = t0 + i * step_s + step_s / 3, t0 + (i + 1) * step_s
        c0, c1 = cpu_at(start), cpu_at(end)
        cpu = {k: (c1.get(k, 0.0) - c0.get(k, 0.0)) / window for k in c1}
        served = sum(pcts(hist[(i, n)])[0] for n in names) / window
        print(f"\nstep {i + 1}: {users} users, offered ~{users / mean_think:.0f} req/s "
              f"(users / mean think time), served {served:.0f} req/s; CPU cores: "
              + ", ".join(f"{k} {v:.2f}" for k, v in cpu.items()))
        print(f"  {'endpoint':22} {'req/s':>7} {'p50':>6} {'p95':>6} {'p99':>6} {'errors':>6}")
        holds = True
        for n in names:
            total, p50, p95, p99 = pcts(hist[(i, n)])
            holds = holds and p95 < 200 and fails.get((i, n), 0) == 0
            print(f"  {n[:22]:22} {total / window:7.1f} {p50:6d} {p95:6d} {p99:6d} "
                  f"{fails.get((i, n), 0):6d}")
        if holds:
            knee = (users, served)
    if knee:
        print(f"\nKNEE: {knee[0]} users, {knee[1]:.0f} req/s served with every endpoint's "
              "p95 < 200 ms and no failure")
    else:
        print("\nKNEE: no step held p95 < 200 ms")


async def amain(args: argparse.Namespace) -> int:  # noqa: PLR0915 - one linear script
    nofile = raise_nofile(65536)
    print(f"open files limit (soft): {nofile}", flush=True)
    scenario = args.scenario
    steps = [int(x) for x in args.steps.split(",")]
    if scenario == "event_knee":
        args.duration = len(steps) * args.step_s
    peak = args.users or {"event_flood": 10000, "event_knee": max(steps), "merchant_peak": 500,
                          "mixed_day": 2200}[scenario]
    # Worker k of P takes tokens k, k+P, ...; Locust does not always give the first workers the
    # odd users, so a list of exactly `peak` tokens could wrap and hand one member to two users
    # (seen once as a stray 409 already_completed). A 5 % margin keeps every user distinct.
    members = max(args.members or 0, peak + peak // 20 + 100, 2000)
    # As many Locust processes as fit: one per ~4,000 users (a process holds ~5,000 mostly idle
    # FastHttpUsers), at most one more than the cores, since the service needs them too.
    processes = args.processes or max(1, min((os.cpu_count() or 1) + 1, -(-peak // 4000)))
    dsn = await recreate_database(args.db)
    redis_url = f"{REDIS_BASE}/{args.redis_db}"
    await flush_redis_db(redis_url)
    # The worker serves its metrics on a free port: a fixed 9100 may be held by another stack.
    # Request rate limits as in production (one Redis script per request): per member at the
    # production value; per address raised, since every simulated phone comes from 127.0.0.1,
    # as thousands do from behind an event Wi-Fi's NAT. `--rate-limits off` leaves them out.
    limits = ({"KUEKAN_RATE_LIMITS": "on", "KUEKAN_RATE_LIMIT_IP_PER_MIN": "10000000"}
              if args.rate_limits == "on" else {"KUEKAN_RATE_LIMITS": "off"})
    # LINE is the fake of tests/fakes (a real HTTP server on 127.0.0.1 speaking the Messaging
    # API): whatever the worker pushes during and after the run goes there, never to LINE.
    line = FakeLineServer() if args.line == "fake" else None
    if line is not None:
        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per push in the report
        line.start()
        limits |= {"KUEKAN_LINE_API_BASE": line.base_url,
                   "KUEKAN_LINE_CHANNEL_ACCESS_TOKEN": line.channel_access_token}
    env = stack_env(dsn, redis_url, KUEKAN_WEB_WORKERS=str(args.workers),
                    KUEKAN_WORKER_METRICS_PORT=str(free_port()), **limits)
    print("seed:", cli(env, "seed").strip(), flush=True)
    procs = Procs()
    pushes_ok = True
    REPORTS.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    prefix = REPORTS / f"{scenario}_{stamp}"
    try:
        api, base = start_api(procs, env, port=free_port(), workers=args.workers,
                              backlog=args.backlog, log=REPORTS / f"{scenario}_{stamp}_api.log")
        worker = procs.start("worker", [PY, "-m", "kuekan", "worker"], env,
                             REPORTS / f"{scenario}_{stamp}_worker.log")
        print(f"API pid {api.pid} at {base} ({args.workers} workers, backlog {args.backlog}); "
              f"worker pid {worker.pid}", flush=True)
        fx = await prepare(env, dsn, base, members, args.merchants or 500,
                           ttl_s=args.duration + 3600)
        print(f"fixtures: mission {fx['mission_id']}, {len(fx['inside'])} inside points, "
              f"{len(fx['reward_ids'])} rewards, {fx.get('merchants')} merchants; fence test "
              f"{fx.get('fence_test')}", flush=True)
        lenv = {**env, "KUEKAN_SCENARIO": scenario, "KUEKAN_LOAD_DIR": str(FIX),
                "KUEKAN_DURATION_S": str(args.duration), "KUEKAN_PEAK_USERS": str(peak),
                "KUEKAN_RAMP_S": str(args.ramp), "KUEKAN_MERCHANTS": str(args.merchants or 500),
                "KUEKAN_LOCUST_PROCESSES": str(processes),
                "KUEKAN_ARRIVAL_SPREAD_S": "1.0" if args.arrivals == "spread" else "0",
                "KUEKAN_ARRIVAL_RATE": str(args.rate), "KUEKAN_THINK_MIN_S": str(args.think[0]),
                "KUEKAN_THINK_MAX_S": str(args.think[1]), "KUEKAN_KNEE_STEPS": args.steps,
                "KUEKAN_KNEE_STEP_S": str(args.step_s), "KUEKAN_KNEE_OUT": f"{prefix}_knee",
                "KUEKAN_KNEE_T0": f"{time.time() + 2:.3f}",
                # gevent's default resolver hands every getaddrinfo to a thread pool; its locks
                # and hand-offs were ~20 % of a Locust worker's CPU during the ramp (one lookup
                # per new user's connection). The host is an IP literal: resolve inline.
                "GEVENT_RESOLVER": "block"}
        argv = [PY, "-m", "locust", "-f", str(REPO / "loadtests" / "locustfile.py"),
                "--headless", "--host", base, "--processes", str(processes),
                "--csv", str(prefix), "--html", f"{prefix}.html", "--only-summary",
                "--stop-timeout", "10", "--loglevel", "WARNING"]
        print("$", " ".join(argv[1:]), flush=True)
        t0 = time.monotonic()
        cpu0 = {"api": tree_cpu(api.pid), "worker": tree_cpu(worker.pid)}
        box0 = machine_cpu()
        accept0 = accept_counters()
        loc = procs.start("locust", argv, lenv, REPORTS / f"{scenario}_{stamp}_locust.log")
        spy = None
        if args.profile:
            # py-spy (pip install py-spy) samples every API process for the whole run.
            spy = procs.start("py-spy", [args.profile, "record", "--pid", str(api.pid),
                                         "--subprocesses", "--nonblocking", "--rate", "100",
                                         "--format", "raw", "-o", f"{prefix}_api.pyspy.txt"],
                              dict(os.environ), REPORTS / f"{scenario}_{stamp}_pyspy.log")
        locust_cpu = 0.0
        samples: list[tuple[float, dict[str, float]]] = []
        deadline = time.monotonic() + args.duration + 180
        while loc.poll() is None and time.monotonic() < deadline:
            locust_cpu = max(locust_cpu, tree_cpu(loc.pid))  # its children exit with it
            api_now, worker_now = tree_cpu(api.pid), tree_cpu(worker.pid)
            busy = machine_cpu()[0]
            samples.append((time.time(), {
                "API": api_now, "worker": worker_now, "Locust": locust_cpu,
                "rest": busy - api_now - worker_now - locust_cpu}))
            await asyncio.sleep(2)
        if loc.poll() is None:
            print("locust overran its bound; stopping it", flush=True)
        wall = time.monotonic() - t0
        used = {"API": tree_cpu(api.pid) - cpu0["api"],
                "ARQ worker": tree_cpu(worker.pid) - cpu0["worker"], "Locust": locust_cpu}
        box_busy, box_total = machine_cpu(box0)
        accept = {k: v - accept0.get(k, 0) for k, v in accept_counters().items()}
        print(f"CPU during the run ({wall:.0f} s wall, {os.cpu_count()} cores = "
              f"{box_total:.0f} core-s): " + ", ".join(f"{k} {v:.0f}" for k, v in used.items())
              + f", everything else (PostgreSQL, Redis, other users of the box) "
              f"{max(0.0, box_busy - sum(used.values())):.0f}, idle "
              f"{max(0.0, box_total - box_busy):.0f} core-s", flush=True)
        if spy is not None:
            os.kill(spy.pid, 2)  # SIGINT: py-spy writes its profile and exits
            spy.wait(timeout=60)
        print("connections the kernel could not accept at once during the run (listen-queue "
              "overflows and drops, SYNs retransmitted): "
              + (", ".join(f"{k} {v}" for k, v in accept.items()) or "not readable here"),
              flush=True)
        procs.stop(loc, timeout=30)
        print(f"locust finished in {time.monotonic() - t0:.0f} s (exit {loc.returncode})",
              flush=True)
        await asyncio.sleep(3)  # let the worker drain the outbox a little
        if line is not None:
            pushes_ok = await evening_digest(dsn, redis_url, line, timeout_s=args.digest_timeout)
    finally:
        procs.stop_all()
        if line is not None:
            line.stop()
    print(f"\n=== {scenario}: {peak} users peak, {args.duration} s, Locust processes "
          f"{processes}, API workers {args.workers}, rate limits {args.rate_limits}, "
          f"arrivals {args.arrivals} ===")
    total, errors = summarise(prefix)
    if scenario == "event_knee":
        knee_report(Path(f"{prefix}_knee"), steps, args.step_s, args.think, samples,
                    float(lenv["KUEKAN_KNEE_T0"]))
    print("\ninvariants (python -m kuekan check-ledger):")
    out = cli(env, "check-ledger")
    print("  " + out.strip().replace("\n", "\n  "))
    ledger_ok = " 0 failed" in out
    if args.profile:
        print(f"\nAPI profile (py-spy, {prefix}_api.pyspy.txt):")
        print(profile_summary(Path(f"{prefix}_api.pyspy.txt")))
    print(f"\nreports: {prefix}_stats.csv, {prefix}.html")
    return 0 if ledger_ok and pushes_ok and errors == 0 and total > 0 else 1


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scenario", choices=["event_flood", "event_knee", "merchant_peak",
                                           "mixed_day"], default="event_flood")
    ap.add_argument("--duration", type=parse_duration, default=300, help="seconds (or 5m)")
    ap.add_argument("--users", type=int, default=None, help="peak users (scenario default)")
    ap.add_argument("--ramp", type=int, default=120, help="mixed_day ramp, seconds")
    ap.add_argument("--rate", type=float, default=100.0,
                    help="event_flood / event_knee: event-goers arriving per second")
    ap.add_argument("--think", type=float, nargs=2, default=(5.0, 15.0),
                    metavar=("MIN_S", "MAX_S"), help="event-goers' think time between looks")
    ap.add_argument("--steps", default="2000,4000,6000,8000,10000,12000,14000",
                    help="event_knee: users at each step of the ramp")
    ap.add_argument("--step-s", type=int, default=90, help="event_knee: seconds per step")
    ap.add_argument("--members", type=int, default=None, help="member tokens to prepare")
    ap.add_argument("--merchants", type=int, default=None, help="merchant staff (500)")
    ap.add_argument("--workers", type=int, default=2, help="uvicorn workers (2 for 2 cores)")
    ap.add_argument("--backlog", type=int, default=8192)
    ap.add_argument("--processes", type=int, default=None, help="Locust worker processes")
    ap.add_argument("--rate-limits", choices=["on", "off"], default="on",
                    help="request rate limits as in production (per-address cap raised: all "
                         "users share 127.0.0.1), or off")
    ap.add_argument("--arrivals", choices=["spread", "burst"], default="spread",
                    help="spread each second's new users over the second, or start them at "
                         "once as Locust does (a synchronised worst case)")
    ap.add_argument("--profile", metavar="PY_SPY", default=None,
                    help="py-spy executable: sample the API processes during the run and print "
                         "where their CPU went (e.g. --profile .venv/bin/py-spy)")
    ap.add_argument("--line", choices=["fake", "off"], default="fake",
                    help="the worker's LINE API: the local fake (then the evening digest is "
                         "pushed after the run and measured), or none")
    ap.add_argument("--digest-timeout", type=float, default=180,
                    help="seconds to wait for the evening digest pushes")
    ap.add_argument("--db", default="kuekan_load")
    ap.add_argument("--redis-db", type=int, default=11)
    args = ap.parse_args()
    try:
        import uvloop
        uvloop.install()
    except ImportError:
        pass
    return asyncio.run(amain(args))


if __name__ == "__main__":
    raise SystemExit(main())
