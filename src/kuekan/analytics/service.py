"""Analytics use-cases: the outbox consumer, the dashboard cache in Redis, reports.

PostgreSQL rollups are the truth (written in the transaction that advances the cursor); Redis
holds today's copy for the real-time dashboard. Redis values are written as absolute totals
read back from PostgreSQL (never blind increments), and a day whose cache marker is missing is
rebuilt from the rollups, so a flushed Redis heals itself on the next read.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

import asyncpg
import msgspec
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from kuekan import metrics
from kuekan.analytics import model
from kuekan.analytics import repository as repo
from kuekan.analytics.model import Event
from kuekan.errors import invalid
from kuekan.geo.districts import districts
from kuekan.kit.clock import BANGKOK, bangkok_day, utcnow
from kuekan.kit.years import YEAR_MAX, YEAR_MIN, out_of_range
from kuekan.ledger import repository as ledger_repo
from kuekan.logging import get_logger

log = get_logger("kuekan.analytics")

LEDGER_SNAPSHOT_KEY = "kk:an:ledger"
LEDGER_SNAPSHOT_TTL_S = 10
REBUILD_LOCK_TTL_S = 30
# Daily counters kept in the dashboard hash (dimension '').
DAY_HASH_METRICS = ("points_awarded", "missions_completed", "redemptions", "coupons_posted",
                    "points_redeemed", "scans", "points_adjusted_down", "redemption_points")


def day_key(day: dt.date, part: str) -> str:
    return f"kk:an:{day.isoformat()}:{part}"


def minute_hll_key(minute: str) -> str:
    return f"kk:an:min:{minute}"


class ConsumeResult(msgspec.Struct):
    events: int = 0
    batches: int = 0
    last_id: int = 0
    webhooks: int = 0


# --------------------------------------------------------------------------------------------
# The consumer.

async def consume(pool: asyncpg.Pool, redis: aioredis.Redis, *,
                  batch_size: int = model.BATCH_SIZE,
                  batches_max: int = model.BATCHES_PER_RUN,
                  now: dt.datetime | None = None) -> ConsumeResult:
    """Fold new outbox rows and ledger transfers into the rollups (exactly once each: the
    cursor moves in the same transaction) and copy the totals into today's Redis cache."""
    result = ConsumeResult()
    for _ in range(batches_max):
        async with pool.acquire() as conn, conn.transaction():
            cursor = await repo.lock_cursor(conn)
            rows = await repo.fetch_outbox(conn, cursor, batch_size)
            take = model.contiguous_prefix(
                cursor, [(r["id"], r["created_at"]) for r in rows], now or utcnow())
            rows = rows[:take]
            if not rows:
                result.last_id = cursor
                break
            events = [_locate(model.parse_event(r["id"], r["topic"], r["member_id"],
                                                r["payload"], r["created_at"])) for r in rows]
            deltas = model.fold(events)
            totals = await repo.apply_deltas(conn, deltas)
            result.webhooks += await repo.enqueue_webhooks(conn, [
                e for e in events if e.topic in model.WEBHOOK_EVENTS
                and (e.topic not in model.COMPLETION_TOPICS or e.accepted)])
            await repo.advance_cursor(conn, rows[-1]["id"])
        result.events += len(events)
        result.batches += 1
        result.last_id = rows[-1]["id"]
        _count(events)
        await _cache_batch(pool, redis, totals, deltas)
        if take < batch_size:
            break
    for _ in range(batches_max):
        moved = await _consume_transfers(pool, redis, batch_size, now)
        if moved < batch_size:
            break
    await _refresh_ledger_snapshot(pool, redis)
    n, age = await repo.cursor_lag(pool)
    metrics.ANALYTICS_LAG.set(age)
    metrics.ANALYTICS_PENDING.set(n)
    return result


async def _consume_transfers(pool: asyncpg.Pool, redis: aioredis.Redis, batch_size: int,
                             now: dt.datetime | None) -> int:
    async with pool.acquire() as conn, conn.transaction():
        cursor = await repo.lock_cursor(conn, repo.TRANSFERS)
        rows = await repo.fetch_transfers(conn, cursor, batch_size)
        take = model.contiguous_prefix(
            cursor, [(r["id"], r["created_at"]) for r in rows], now or utcnow())
        rows = rows[:take]
        if not rows:
            return 0
        totals = await repo.add_daily(conn, model.fold_transfers(
            (r["kind"], r["funder_id"], r["amount"], r["created_at"]) for r in rows))
        await repo.advance_cursor(conn, rows[-1]["id"], repo.TRANSFERS)
    await _cache_batch(pool, redis, totals, model.Deltas())
    return take


def _locate(ev: Event) -> Event:
    """Fill a check-in's district from its coordinates when the producer left it out."""
    if ev.topic != model.CHECKIN_TOPIC or ev.district_code or ev.lat is None or ev.lon is None:
        return ev
    code = districts().at(ev.lat, ev.lon)
    return msgspec.structs.replace(ev, district_code=code) if code else ev


def _count(events: Iterable[Event]) -> None:
    for e in events:
        metrics.ANALYTICS_EVENTS.labels(e.topic).inc()


def _cached_days() -> set[dt.date]:
    today = bangkok_day()
    return {today, today - dt.timedelta(days=1)}


async def _cache_batch(pool: asyncpg.Pool, redis: aioredis.Redis, totals: list[asyncpg.Record],
                       deltas: model.Deltas) -> None:
    """Copy a committed batch into Redis; any failure only costs a rebuild later."""
    days = _cached_days()
    try:
        built = {d for d in days if await redis.exists(day_key(d, "built"))}
        for d in days - built:
            await rebuild_day(pool, redis, d)
        pipe = redis.pipeline(transaction=False)
        for r in totals:
            if r["day"] in built:
                _write_counter(pipe, r["day"], r["metric"], r["dim"], int(r["value"]))
        for member_id, day in deltas.activity:
            if day in built:
                pipe.pfadd(day_key(day, "active"), member_id)
        horizon = model.minute_key(utcnow() - dt.timedelta(seconds=model.MINUTE_TTL_S))
        for minute, members in deltas.active_minutes.items():
            if minute >= horizon:
                pipe.pfadd(minute_hll_key(minute), *members)
                pipe.expire(minute_hll_key(minute), model.MINUTE_TTL_S)
        await pipe.execute()
    except RedisError as exc:
        log.warning("analytics_cache_failed", error=type(exc).__name__)
        for d in days:
            try:
                await redis.delete(day_key(d, "built"))
            except RedisError:
                break


def _write_counter(pipe: Any, day: dt.date, metric: str, dim: str, value: int) -> None:
    if dim == "" and metric in DAY_HASH_METRICS:
        pipe.hset(day_key(day, "c"), metric, value)
    elif metric == "events_hour":
        pipe.hset(day_key(day, "hour"), dim, value)
    elif metric == "mission":
        pipe.zadd(day_key(day, "missions"), {dim: value})
    elif metric == "merchant":
        pipe.zadd(day_key(day, "merchants"), {dim: value})


async def rebuild_day(pool: asyncpg.Pool, redis: aioredis.Redis, day: dt.date) -> None:
    """Rebuild one day's Redis copy from the PostgreSQL rollups (after a flush or on first use)."""
    lock = day_key(day, "rebuilding")
    if not await redis.set(lock, "1", nx=True, ex=REBUILD_LOCK_TTL_S):
        return
    try:
        counters = await repo.day_counters(pool, day)
        members = await repo.day_member_ids(pool, day)
        pipe = redis.pipeline(transaction=True)
        parts = ("c", "hour", "missions", "merchants", "active")
        pipe.delete(*(day_key(day, p) for p in parts))
        for r in counters:
            _write_counter(pipe, day, r["metric"], r["dim"], int(r["value"]))
        for i in range(0, len(members), 1000):
            pipe.pfadd(day_key(day, "active"), *members[i:i + 1000])
        for p in parts:
            pipe.expire(day_key(day, p), model.DAY_TTL_S)
        pipe.set(day_key(day, "built"), "1", ex=model.DAY_TTL_S)
        await pipe.execute()
        log.info("analytics_day_rebuilt", day=day.isoformat(), counters=len(counters),
                 members=len(members))
    finally:
        await redis.delete(lock)


async def _ledger_snapshot(pool: asyncpg.Pool) -> dict[str, Any]:
    funders = await ledger_repo.list_funders(pool)
    return {"points_in_circulation": await repo.points_in_circulation(pool),
            "liability_by_funder": [{"funder_id": f["id"], "points": f["liability_points"]}
                                    for f in funders],
            "at": utcnow().isoformat()}


async def _refresh_ledger_snapshot(pool: asyncpg.Pool, redis: aioredis.Redis) -> dict[str, Any]:
    snap = await _ledger_snapshot(pool)
    try:
        await redis.set(LEDGER_SNAPSHOT_KEY, json.dumps(snap), ex=LEDGER_SNAPSHOT_TTL_S)
    except RedisError as exc:
        log.warning("analytics_snapshot_cache_failed", error=type(exc).__name__)
    return snap


# --------------------------------------------------------------------------------------------
# The real-time dashboard.

def _int(v: Any) -> int:
    return int(v) if v is not None else 0


async def dashboard(pool: asyncpg.Pool, redis: aioredis.Redis) -> dict[str, Any]:
    """Today's figures from Redis; rebuilt from the rollups when Redis lost them."""
    day = bangkok_day()
    if not await redis.exists(day_key(day, "built")):
        await rebuild_day(pool, redis, day)
    now = utcnow()
    minutes = [minute_hll_key(model.minute_key(now - dt.timedelta(minutes=i)))
               for i in range(model.ACTIVE_NOW_MINUTES)]
    pipe = redis.pipeline(transaction=False)
    pipe.hgetall(day_key(day, "c"))
    pipe.hgetall(day_key(day, "hour"))
    pipe.zrevrange(day_key(day, "missions"), 0, model.TOP_N - 1, withscores=True)
    pipe.zrevrange(day_key(day, "merchants"), 0, model.TOP_N - 1, withscores=True)
    pipe.pfcount(day_key(day, "active"))
    pipe.pfcount(*minutes)
    pipe.get(LEDGER_SNAPSHOT_KEY)
    c_raw, hours_raw, missions, merchants, active_today, active_now, snap_raw = \
        await pipe.execute()
    c = {k.decode(): int(v) for k, v in c_raw.items()}
    hours = {int(k): int(v) for k, v in hours_raw.items()}
    snap = json.loads(snap_raw) if snap_raw else await _refresh_ledger_snapshot(pool, redis)
    awarded = c.get("points_awarded", 0)
    return {
        "day": day.isoformat(),
        "active_members_now": _int(active_now),
        "active_members_today": _int(active_today),
        "missions_completed_today": c.get("missions_completed", 0),
        "points_awarded_today": awarded,
        "redemptions_today": c.get("redemptions", 0),
        "coupons_used_today": c.get("coupons_posted", 0),
        "points_redeemed_today": c.get("points_redeemed", 0),
        "points_in_circulation": snap["points_in_circulation"],
        "liability_by_funder": snap["liability_by_funder"],
        "top_missions": [{"mission_id": int(m), "completions": int(s)} for m, s in missions],
        "top_merchants": [{"merchant_id": int(m), "transactions": int(s)}
                          for m, s in merchants],
        "redemption_rate": model.ratio(c.get("points_redeemed", 0), awarded),
        "peak_hour": model.peak_hour(hours),
        "peak_hour_events": max(hours.values(), default=0),
    }


# --------------------------------------------------------------------------------------------
# Reports (on rollup tables).

def check_years(*days: dt.date | None) -> None:
    """Days a caller names stay in YEAR_MIN..YEAR_MAX (date arithmetic near year 9999
    overflowed into a 500)."""
    if any(out_of_range(d) for d in days):
        raise invalid(f"dates must be between {YEAR_MIN} and {YEAR_MAX}",
                      f"วันที่ต้องอยู่ระหว่างปี {YEAR_MIN} ถึง {YEAR_MAX}")


def date_range(start: dt.date | None, end: dt.date | None,
               default_days: int = 30) -> tuple[dt.date, dt.date]:
    check_years(start, end)
    end = end or bangkok_day()
    start = start or end - dt.timedelta(days=default_days - 1)
    if start > end:
        raise invalid("from must not be after to", "วันที่เริ่มต้องไม่อยู่หลังวันที่สิ้นสุด")
    if (end - start).days >= model.RANGE_DAYS_MAX:
        raise invalid(f"a range covers at most {model.RANGE_DAYS_MAX} days",
                      f"ช่วงวันที่ต้องไม่เกิน {model.RANGE_DAYS_MAX} วัน")
    return start, end


async def engagement(pool: asyncpg.Pool, day: dt.date) -> dict[str, Any]:
    check_years(day)
    prev_start, cur_start, _ = model.return_windows(day)
    r = await repo.engagement(pool, day, prev_start, cur_start)
    return {"day": day.isoformat(), "dau": r["dau"], "mau": r["mau"],
            "dau_mau": model.ratio(r["dau"], r["mau"]),
            "return_rate_30d": model.ratio(r["returned"], r["previous"]),
            "return_base_members": r["previous"], "returned_members": r["returned"],
            "previous_window": [prev_start.isoformat(),
                                (cur_start - dt.timedelta(days=1)).isoformat()],
            "current_window": [cur_start.isoformat(), day.isoformat()]}


async def cohorts(pool: asyncpg.Pool, start: dt.date, end: dt.date, weeks: int,
                  as_of: dt.date) -> list[model.CohortRow]:
    first = model.week_start(start)
    last = model.week_start(end) + dt.timedelta(days=7)
    sizes = {r["week"]: r["size"] for r in await repo.cohort_sizes(pool, first, last)}
    active = {(r["week"], r["k"]): r["n"]
              for r in await repo.cohort_active(pool, first, last, weeks)}
    return model.retention_matrix(sizes, active, weeks, as_of)


async def heatmap(pool: asyncpg.Pool, start: dt.date, end: dt.date,
                  level: str) -> dict[str, Any]:
    """GeoJSON FeatureCollection: district polygons, or geofence centroids, with counts."""
    if level == "geofence":
        rows = await repo.checkins_by_geofence(pool, start, end, 5000)
        feats = [{"type": "Feature",
                  "geometry": ({"type": "Point", "coordinates": [r["lon"], r["lat"]]}
                               if r["lat"] is not None else None),
                  "properties": {"geofence_id": r["geofence_id"], "checkins": r["checkins"],
                                 "district_code": r["district_code"]}} for r in rows]
        return {"type": "FeatureCollection", "features": feats}
    counts = {r["district_code"]: r["checkins"]
              for r in await repo.checkins_by_district(pool, start, end)}
    peak = max(counts.values(), default=0)
    feats = [{"type": "Feature", "geometry": f["geometry"],
              "properties": {**f["properties"], "checkins": counts.get(f["properties"]["code"], 0),
                             "intensity": model.ratio(counts.get(f["properties"]["code"], 0),
                                                      peak)}}
             for f in districts().features]
    return {"type": "FeatureCollection", "features": feats,
            "from": start.isoformat(), "to": end.isoformat()}


async def journey(pool: asyncpg.Pool, geofence_id: int | None, mission_id: int | None,
                  start: dt.date, end: dt.date, within_h: int) -> dict[str, Any]:
    if geofence_id is None and mission_id is None:
        raise invalid("give geofence_id or mission_id", "กรุณาระบุ geofence_id หรือ mission_id")
    t0 = dt.datetime.combine(start, dt.time(), BANGKOK)
    t1 = dt.datetime.combine(end + dt.timedelta(days=1), dt.time(), BANGKOK)
    attendees, rows = await repo.journey(pool, geofence_id, mission_id, t0, t1, within_h, 50)
    moved = sum(r["members"] for r in rows)
    return {"attendees": attendees, "went_on": moved, "stayed": attendees - moved,
            "next": [{"geofence_id": r["geofence_id"], "mission_id": r["mission_id"],
                      "district_code": r["district_code"], "members": r["members"],
                      "share": model.ratio(r["members"], attendees)} for r in rows]}


async def campaign_roi(pool: asyncpg.Pool, start: dt.date, end: dt.date, campaign: str | None,
                       point_value_thb: Decimal) -> list[dict[str, Any]]:
    rows = await repo.campaigns(pool, start, end, campaign, 200)
    return [{"campaign": r["campaign"], "scans": r["scans"],
             **model.roi(r["points_cost"], repo.as_decimal(r["spend_thb"]), point_value_thb)}
            for r in rows]


async def segments(pool: asyncpg.Pool, start: dt.date, end: dt.date) -> list[dict[str, Any]]:
    rows = await repo.segments(pool, start, end)
    total = sum(r["active"] for r in rows)
    return [{"segment": r["segment"], "active_members": r["active"], "signups": r["signups"],
             "share_of_active": model.ratio(r["active"], total)} for r in rows]


async def daily_report(pool: asyncpg.Pool, start: dt.date, end: dt.date
                       ) -> list[dict[str, Any]]:
    """One row per day: the daily counters and DAU (agencies, exports, the scorecard)."""
    by_day: defaultdict[dt.date, dict[str, Any]] = defaultdict(dict)
    for r in await repo.daily_totals(pool, start, end):
        by_day[r["day"]][r["metric"]] = r["value"]
    for r in await repo.dau_series(pool, start, end):
        by_day[r["day"]]["dau"] = r["dau"]
    cols = ("dau", "points_awarded", "missions_completed", "scans", "redemptions",
            "coupons_posted", "points_redeemed")
    out = []
    day = start
    while day <= end:
        vals = by_day.get(day, {})
        out.append({"day": day.isoformat(), **{c: int(vals.get(c, 0)) for c in cols}})
        day += dt.timedelta(days=1)
    return out


async def merchant_report(pool: asyncpg.Pool, merchant_id: int, start: dt.date,
                          end: dt.date) -> list[dict[str, Any]]:
    names = {"merchant": "transactions", "merchant_points": "points_awarded",
             "merchant_redeemed": "coupons_redeemed", "merchant_spend_satang": "spend_satang"}
    by_day: defaultdict[dt.date, dict[str, int]] = defaultdict(dict)
    for r in await repo.merchant_daily(pool, merchant_id, start, end):
        by_day[r["day"]][names[r["metric"]]] = int(r["value"])
    return [{"day": d.isoformat(), "transactions": v.get("transactions", 0),
             "points_awarded": v.get("points_awarded", 0),
             "coupons_redeemed": v.get("coupons_redeemed", 0),
             "spend_thb": str(Decimal(v.get("spend_satang", 0)) / 100)}
            for d, v in sorted(by_day.items())]
