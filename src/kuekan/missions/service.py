"""Mission use-cases: the per-process catalogue, admin changes, and the check-in.

The check-in path reads the mission and its fence from memory (the catalogue), decides the
geofence and venue code in the process, takes the Redis claim and limits in one script, then
runs ``kk_checkin_idem``: one SQL round trip that re-checks the mission, member, period and
budgets, awards, records the check-in, progresses collections and chains and writes the outbox.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import random
import time
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Protocol

import asyncpg
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from kuekan import metrics
from kuekan.errors import DomainError, invalid, known
from kuekan.geo import service as geo_service
from kuekan.geo.model import Decision, check_accuracy, check_position
from kuekan.idempotency import Outcome, Replay, Stored, request_hash, resolve_stored
from kuekan.kit.clock import bangkok_day, utcnow
from kuekan.kit.tasks import cancel_and_wait
from kuekan.ledger.service import Ledger
from kuekan.logging import get_logger
from kuekan.missions import model
from kuekan.missions import repository as repo
from kuekan.missions.batch import CheckinBatcher
from kuekan.missions.model import Mission, MissionSpec
from kuekan.missions.schemas import CheckinIn

log = get_logger(__name__)

# The fallback when a Redis nudge is lost: every process compares versions this often.
CATALOG_POLL_S = 5.0
PUBSUB_WAIT_S = 0.4
# A check-in aborted by PostgreSQL (serialization failure, deadlock) is run again this often.
SQL_ATTEMPTS = 6


class App(Protocol):
    """What the start/stop hooks need of the web application: its state (kept free of the web
    framework, so the service layer imports none)."""

    @property
    def state(self) -> Any: ...


class Catalog:
    """This process's snapshot of missions and fences, reloaded when their versions move."""

    def __init__(self) -> None:
        self.fences = geo_service.FenceRegistry()
        self.missions: Mapping[int, Mission] = MappingProxyType({})
        self.missions_version = 0
        # Fences any active collection counts: only these are looked up for a check-in.
        self.collection_fences: frozenset[int] = frozenset()
        self._lock = asyncio.Lock()

    async def refresh(self, db: repo.Db) -> bool:
        """Reload what changed since the snapshot (one small query when nothing did)."""
        async with self._lock:
            versions = await repo.versions(db)
            changed = await self.fences.refresh(db, versions["geofences"])
            if versions["missions"] != self.missions_version:
                missions = await repo.all_missions(db)
                self.missions = MappingProxyType({m.id: m for m in missions})
                self.collection_fences = frozenset(
                    f for m in missions if m.kind == "collection" and m.status == "active"
                    for f in m.collection_geofence_ids or ())
                self.missions_version = versions["missions"]
                log.info("missions_loaded", count=len(missions), version=self.missions_version)
                changed = True
            return changed

    async def mission(self, db: repo.Db, mission_id: int) -> Mission | None:
        """The cached mission; on a miss, one version check and reload (a brand-new mission)."""
        found = self.missions.get(mission_id)
        if found is None:
            await self.refresh(db)
            found = self.missions.get(mission_id)
        return found


async def _watch(app: App) -> None:
    """Reload on a Redis nudge, and every CATALOG_POLL_S in case a nudge was lost."""
    catalog: Catalog = app.state.catalog
    redis: aioredis.Redis = app.state.redis
    pubsub: Any = None
    last_poll = time.monotonic()
    while True:
        message = None
        try:
            if pubsub is None:
                pubsub = redis.pubsub()
                await pubsub.subscribe(geo_service.CATALOG_CHANNEL)
            message = await pubsub.get_message(ignore_subscribe_messages=True,
                                               timeout=PUBSUB_WAIT_S)
        except (RedisError, OSError) as exc:
            log.warning("catalog_pubsub_failed", error=str(exc))
            pubsub = None
            await asyncio.sleep(1.0)
        if message is None and time.monotonic() - last_poll < CATALOG_POLL_S:
            continue
        last_poll = time.monotonic()
        try:
            await catalog.refresh(app.state.pool)
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
            log.warning("catalog_refresh_failed", error=str(exc))


async def startup(app: App) -> None:
    """STARTUP_HOOKS: load fences and missions, then keep them fresh in the background."""
    catalog = Catalog()
    await catalog.refresh(app.state.pool)
    app.state.catalog = catalog
    settings = app.state.settings
    app.state.checkin_batcher = (
        CheckinBatcher(app.state.pool, member_cap=settings.member_daily_cap_points,
                       slices=settings.budget_slices, max_batch=settings.checkin_batch_max)
        if settings.checkin_batch_max > 0 else None)
    app.state.catalog_watch = asyncio.create_task(_watch(app), name="catalog-watch")


async def shutdown(app: App) -> None:
    await cancel_and_wait(getattr(app.state, "catalog_watch", None))


async def reload(app: App) -> None:
    """Reload this process's catalogue now (after an admin change here committed)."""
    await app.state.catalog.refresh(app.state.pool)


async def changed(app: App) -> None:
    """After an admin change commits: reload here now, and nudge the other processes."""
    await reload(app)
    await geo_service.nudge(app.state.redis)


# --- Admin ------------------------------------------------------------------------------------


async def check_references(db: repo.Db, spec: MissionSpec) -> None:
    """Refuse (422) ids that do not exist: funder, fence, collection places, chain steps."""
    checks: list[tuple[str, list[int]]] = [("funders", [spec.funder_id])]
    if spec.geofence_id is not None:
        checks.append(("geofences", [spec.geofence_id]))
    if spec.collection_geofence_ids:
        checks.append(("geofences", spec.collection_geofence_ids))
    if spec.chain_steps:
        checks.append(("missions", spec.chain_steps))
    if spec.merchant_ids:
        checks.append(("merchants", spec.merchant_ids))
    for table, ids in checks:
        missing = await repo.missing_ids(db, table, ids)
        if missing:
            raise invalid(f"unknown {table} ids: {missing[:20]}", "ไม่พบรหัสอ้างอิงที่ระบุ",
                          missing=missing[:20])
    if spec.chain_steps:
        kinds = {m.kind for m in [await repo.get(db, i) for i in spec.chain_steps] if m}
        if kinds & {"chain", "collection"}:
            raise invalid("chain steps must be checkin, event, purchase or action missions",
                          "ขั้นตอนของภารกิจต่อเนื่องต้องเป็นภารกิจทั่วไป")


# --- Check-in ---------------------------------------------------------------------------------


class Checkins:
    """POST /checkins, behind the idempotency gate and the Redis limits."""

    def __init__(self, ledger: Ledger, catalog: Catalog,
                 batcher: CheckinBatcher | None = None) -> None:
        self.ledger = ledger
        self.catalog = catalog
        self.batcher = batcher

    async def checkin(self, *, scope: str, member_id: int, key: str, data: CheckinIn,
                      now: dt.datetime | None = None) -> Outcome:
        check_position(data.lat, data.lon)
        check_accuracy(data.accuracy_m)
        now = now or utcnow()
        req_hash = request_hash(data)
        mission = await self.catalog.mission(self.ledger.pool, data.mission_id)
        if mission is None:
            raise known("mission_not_found")
        decision, code = self._decide(mission, data, now)
        evidence = _Evidence(scope, key, req_hash, member_id, data, decision)
        if code is not None:
            return await self._refuse(evidence, known(code))
        return await self._accept(evidence, mission, now)

    def _decide(self, mission: Mission, data: CheckinIn,
                now: dt.datetime) -> tuple[Decision | None, str | None]:
        if mission.kind not in model.CHECKIN_KINDS:
            return None, "mission_not_checkin"
        if not mission.is_active(now):
            return None, "mission_not_active"
        decision = None
        if mission.geofence_id is not None:
            if self.catalog.fences.index.get(mission.geofence_id) is None:
                return None, "mission_not_active"  # its fence is disabled: not live
            decision = self.catalog.fences.index.decide(mission.geofence_id, data.lat, data.lon,
                                                        data.accuracy_m)
            code = model.decision_refusal(decision.decision)
            if code is not None:
                return decision, code
        if mission.venue_code_required and not model.verify_venue_code(
                data.venue_code, secret=mission.venue_secret, mission_id=mission.id,
                now_s=now.timestamp(), rotate_s=mission.venue_code_rotate_s,
                grace_s=mission.venue_code_grace_s):
            return decision, "venue_code_invalid"
        return decision, None

    def _place_fences(self, data: CheckinIn) -> list[int]:
        """Active collection fences covering the point (e.g. its district); memory only."""
        if not self.catalog.collection_fences:
            return []
        near = self.catalog.fences.index.candidates(data.lat, data.lon, 0.0)
        return [n.fence.id for n in near if n.fence.id in self.catalog.collection_fences]

    async def _accept(self, ev: _Evidence, mission: Mission, now: dt.datetime) -> Outcome:
        ledger = self.ledger
        day = bangkok_day(now)
        # Redis sees the base points; PostgreSQL counts the multiplied amount exactly, so Redis
        # can only under-count and never refuses what PostgreSQL would accept.
        points = mission.points
        limits = [ledger.member_day_limit(ev.member_id, day),
                  *ledger.budget_limit(f"mission:{mission.id}", mission.budget_points)]
        replay = await ledger.gate.claim(ev.scope, ev.key, ev.req_hash, points, limits)
        if replay is not None:
            return Outcome(replay.status, replay.body, replayed=True)
        try:
            res = await self._call(ev, mission, day)
        except DomainError as err:
            if err.status >= 500:
                await ledger.gate.abort(ev.scope, ev.key, points, limits)
                raise
            await ledger.gate.abort(ev.scope, ev.key, points, limits, drop_key=False)
            return await self._refuse(ev, err, claimed=True)
        except BaseException:
            await ledger.gate.abort(ev.scope, ev.key, points, limits)
            raise
        if res["replay"]:
            await ledger.gate.abort(ev.scope, ev.key, points, limits, drop_key=False)
            return await self._replayed(ev, res)
        await ledger.gate.finish(ev.scope, ev.key, ev.req_hash, res["status"], res["body"])
        log.info("checkin_accepted", member_id=ev.member_id, mission_id=mission.id,
                 points=res["body"]["points_awarded"])
        return Outcome(res["status"], res["body"])

    async def _call(self, ev: _Evidence, mission: Mission, day: dt.date) -> dict[str, Any]:
        """kk_checkin_idem, retried when PostgreSQL aborted it as a serialization failure or
        deadlock (nothing was committed, so running it again is safe)."""
        d = ev.decision
        settings = self.ledger.settings
        # kk_checkin_idem's arguments, as kk_checkin_batch takes them (repo.checkin_idem too).
        item: dict[str, Any] = {
            "scope": ev.scope, "key": ev.key, "hash": ev.req_hash, "member": ev.member_id,
            "mission": mission.id, "day": day.isoformat(), "lat": ev.data.lat,
            "lon": ev.data.lon, "accuracy": ev.data.accuracy_m,
            "distance": d.distance_to_edge_m if d else None,
            "decision": d.decision if d else "none", "risk": bool(d and d.risk_flag),
            "device": ev.data.device_id, "fences": self._place_fences(ev.data)}
        if self.batcher is not None:
            try:
                return await self.batcher.run(item)
            except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
                # The whole batch was rolled back (deadlock, serialization failure, lost
                # connection): run this check-in alone, with the retries below.
                metrics.CHECKIN_BATCH_FALLBACKS.inc()
                log.info("checkin_batch_fallback", member_id=ev.member_id,
                         error=type(exc).__name__)
        for attempt in range(SQL_ATTEMPTS):
            try:
                return await repo.checkin_idem(self.ledger.pool, item,
                                               settings.member_daily_cap_points,
                                               settings.budget_slices)
            except (asyncpg.SerializationError, asyncpg.DeadlockDetectedError):
                if attempt == SQL_ATTEMPTS - 1:
                    raise
                log.info("checkin_retry", attempt=attempt + 1, member_id=ev.member_id)
                # Jitter: contenders for the last budget slices must not collide again in step.
                await asyncio.sleep(random.uniform(0.002, 0.01) * (attempt + 1))
        raise AssertionError("unreachable")

    async def _refuse(self, ev: _Evidence, err: DomainError, *, claimed: bool = False) -> Outcome:
        """Record the refused attempt, store the refusal under the key, and raise it."""
        gate = self.ledger.gate
        if not claimed:
            replay = await gate.claim(ev.scope, ev.key, ev.req_hash, 0, [])
            if replay is not None:
                return Outcome(replay.status, replay.body, replayed=True)
        problem = err.to_problem()
        d = ev.decision
        try:
            res = await repo.checkin_refused(
                self.ledger.pool, scope=ev.scope, key=ev.key, req_hash=ev.req_hash,
                member_id=ev.member_id, mission_id=ev.data.mission_id, lat=ev.data.lat,
                lon=ev.data.lon, accuracy_m=ev.data.accuracy_m,
                distance_m=d.distance_to_edge_m if d else None,
                decision=d.decision if d else "none", device_id=ev.data.device_id,
                code=err.code, status=err.status, problem=problem)
        except BaseException:
            await gate.abort(ev.scope, ev.key, 0, [])
            raise
        if res["replay"]:
            return await self._replayed(ev, res)
        await gate.finish(ev.scope, ev.key, ev.req_hash, err.status, problem)
        raise err

    async def _replayed(self, ev: _Evidence, res: dict[str, Any]) -> Outcome:
        replay: Replay = resolve_stored(
            Stored(hash=res["hash"], status=res["status"], body=res["body"]), ev.req_hash)
        await self.ledger.gate.finish(ev.scope, ev.key, ev.req_hash, replay.status, replay.body)
        return Outcome(replay.status, replay.body, replayed=True)


class _Evidence:
    """One check-in attempt: who, which key, what was sent, and the geofence decision."""

    __slots__ = ("data", "decision", "key", "member_id", "req_hash", "scope")

    def __init__(self, scope: str, key: str, req_hash: str, member_id: int, data: CheckinIn,
                 decision: Decision | None) -> None:
        self.scope = scope
        self.key = key
        self.req_hash = req_hash
        self.member_id = member_id
        self.data = data
        self.decision = decision
