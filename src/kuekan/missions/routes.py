"""Mission routes: admin CRUD and venue codes, the member catalogue and progress, check-ins."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

import asyncpg
import msgspec
from litestar import Controller, Request, Response, delete, get, patch, post
from litestar.di import Provide

from kuekan import metrics
from kuekan.auth import policy
from kuekan.auth import repository as auth_repo
from kuekan.auth.guards import provide_admin, provide_member
from kuekan.auth.tokens import Principal
from kuekan.errors import DomainError, invalid, known
from kuekan.geo.model import check_position, measure
from kuekan.kit.bounds import PathId, QueryCursor, QueryLimit, QueryText
from kuekan.ledger.service import Ledger
from kuekan.logging import get_logger
from kuekan.missions import model, service
from kuekan.missions import repository as repo
from kuekan.missions.model import Mission, MissionSpec
from kuekan.missions.schemas import (
    CheckinIn,
    MissionIn,
    MissionList,
    MissionOut,
    MissionPatch,
    ProgressOut,
    StepOut,
    VenueCodeOut,
)
from kuekan.pagination import page_limit, parse_cursor
from kuekan.web import idempotency_key, outcome_response

log = get_logger(__name__)

_OUT_FIELDS = tuple(f for f in MissionOut.__struct_fields__
                    if f not in {"distance_m", "budget_remaining_points"})


def _out(m: Mission, *, distance_m: float | None = None,
         budget_remaining: int | None = None) -> MissionOut:
    return MissionOut(**{f: getattr(m, f) for f in _OUT_FIELDS}, distance_m=distance_m,
                      budget_remaining_points=budget_remaining)


def _code_taken() -> DomainError:
    return known("mission_code_taken")


async def _save_checked(request: Request[Any, Any, Any], spec: MissionSpec) -> MissionSpec:
    model.validate_spec(spec)
    await service.check_references(request.app.state.pool, spec)
    return spec


class AdminMissionController(Controller):
    path = "/admin/missions"
    dependencies = {"admin": Provide(provide_admin)}
    tags = ["admin", "missions"]

    @post("/", status_code=201, opt={"policy": "org"})
    async def create(self, request: Request[Any, Any, Any], admin: Principal,
                     data: MissionIn) -> MissionOut:
        """A mission belongs to its funder's organisation: an admin funds its own."""
        state = request.app.state
        await policy.require(state.pool, admin, "funder", data.funder_id)
        spec = await _save_checked(request, msgspec.convert(msgspec.to_builtins(data),
                                                            MissionSpec, strict=False))
        async with state.pool.acquire() as conn:
            try:
                mission = await repo.insert(conn, spec, model.new_venue_secret(),
                                            state.settings.budget_slices)
            except asyncpg.UniqueViolationError:
                raise _code_taken() from None
        await service.changed(request.app)
        log.info("mission_created", id=mission.id, kind=mission.kind, by=admin.scope)
        return _out(mission, budget_remaining=spec.budget_points)

    @get("/", opt={"policy": "org"})
    async def list(self, request: Request[Any, Any, Any], admin: Principal,
                   kind: str | None = None) -> MissionList:
        pool = request.app.state.pool
        missions = await repo.all_missions(pool)
        org = policy.org_scope(admin)
        own = None if org is None else await auth_repo.org_funder_ids(pool, org)
        return MissionList(items=[_out(m) for m in missions if kind in (None, m.kind)
                                  and (own is None or m.funder_id in own)])

    @get("/{mission_id:int}", opt={"policy": "org"})
    async def get_one(self, request: Request[Any, Any, Any], admin: Principal,
                      mission_id: PathId) -> MissionOut:
        pool = request.app.state.pool
        await policy.require(pool, admin, "mission", mission_id)
        mission = await repo.get(pool, mission_id)
        if mission is None:
            raise known("mission_not_found")
        return _out(mission, budget_remaining=await repo.budget_remaining(pool, mission_id))

    @patch("/{mission_id:int}", opt={"policy": "org"})
    async def update(self, request: Request[Any, Any, Any], admin: Principal, mission_id: PathId,
                     data: MissionPatch) -> MissionOut:
        state = request.app.state
        await policy.require(state.pool, admin, "mission", mission_id)
        if isinstance(data.funder_id, int):
            await policy.require(state.pool, admin, "funder", data.funder_id)
        current = await repo.get(state.pool, mission_id)
        if current is None:
            raise known("mission_not_found")
        changes = {k: v for k, v in msgspec.structs.asdict(data).items() if v is not msgspec.UNSET}
        status = changes.pop("status", current.status)
        merged = {f: getattr(current, f) for f in MissionSpec.__struct_fields__} | changes
        spec = await _save_checked(request, msgspec.convert(
            msgspec.to_builtins(merged), MissionSpec, strict=False))
        async with state.pool.acquire() as conn:
            mission = await repo.update(conn, mission_id, spec, status,
                                        state.settings.budget_slices)
        assert mission is not None
        await service.changed(request.app)
        log.info("mission_updated", id=mission_id, fields=sorted(changes), by=admin.scope)
        return _out(mission, budget_remaining=await repo.budget_remaining(state.pool, mission_id))

    @delete("/{mission_id:int}", status_code=200, opt={"policy": "org"})
    async def disable(self, request: Request[Any, Any, Any], admin: Principal,
                      mission_id: PathId) -> MissionOut:
        pool = request.app.state.pool
        await policy.require(pool, admin, "mission", mission_id)
        if not await repo.set_status(pool, mission_id, "disabled"):
            raise known("mission_not_found")
        await service.changed(request.app)
        mission = await repo.get(pool, mission_id)
        assert mission is not None
        log.info("mission_disabled", id=mission_id, by=admin.scope)
        return _out(mission)

    @get("/{mission_id:int}/venue-code", opt={"policy": "org"})
    async def venue_code(self, request: Request[Any, Any, Any], admin: Principal,
                         mission_id: PathId) -> VenueCodeOut:
        """The code to show on the venue's screen now; poll again at ``rotates_at``."""
        await policy.require(request.app.state.pool, admin, "mission", mission_id)
        mission = await repo.get(request.app.state.pool, mission_id)
        if mission is None:
            raise known("mission_not_found")
        if not mission.venue_code_required:
            raise known("venue_code_not_used")
        rotate = mission.venue_code_rotate_s
        window = model.venue_window(time.time(), rotate)
        return VenueCodeOut(
            mission_id=mission.id, code=model.venue_code(mission.venue_secret, mission.id, window),
            rotate_s=rotate, grace_s=mission.venue_code_grace_s,
            valid_from=dt.datetime.fromtimestamp(window * rotate, dt.UTC),
            rotates_at=dt.datetime.fromtimestamp((window + 1) * rotate, dt.UTC))


class MissionsController(Controller):
    path = "/missions"
    dependencies = {"member": Provide(provide_member)}
    tags = ["missions"]

    @get("/")
    async def list(self, request: Request[Any, Any, Any], member: Principal,
                   lat: float | None = None, lon: float | None = None,
                   kind: QueryText = None,
                   limit: QueryLimit = None,
                   cursor: QueryCursor = None) -> MissionList:
        """Active missions; with ``lat``/``lon``, nearest first (0 m inside the fence)."""
        catalog: service.Catalog = request.app.state.catalog
        now = dt.datetime.now(dt.UTC)
        # Residents and tourists see only the missions open to them (one small read).
        segment = await request.app.state.pool.fetchval(
            "select segment from members where id = $1", member.subject_id)
        active = [m for m in catalog.missions.values()
                  if m.is_active(now) and kind in (None, m.kind)
                  and m.audience in ("all", segment)]
        if (lat is None) != (lon is None):
            raise invalid("give both lat and lon, or neither", "โปรดระบุทั้ง lat และ lon")
        distances: dict[int, float | None] = {}
        if lat is not None and lon is not None:
            check_position(lat, lon)
            for m in active:
                fence = catalog.fences.index.get(m.geofence_id) if m.geofence_id else None
                if fence is not None:
                    where = measure(fence, lat, lon)
                    distances[m.id] = 0.0 if where.inside else round(where.boundary_distance_m, 1)
            active.sort(key=lambda m: (distances.get(m.id) is None, distances.get(m.id) or 0.0,
                                       m.id))
        n = page_limit(request.app.state.settings, limit)
        offset = parse_cursor(cursor) or 0
        page = active[offset:offset + n]
        nxt = str(offset + n) if offset + n < len(active) else None
        return MissionList(items=[_out(m, distance_m=distances.get(m.id)) for m in page],
                           next_cursor=nxt)

    @get("/{mission_id:int}")
    async def get_one(self, request: Request[Any, Any, Any], member: Principal,
                      mission_id: PathId) -> MissionOut:
        mission = await request.app.state.catalog.mission(request.app.state.pool, mission_id)
        if mission is None or mission.status != "active":
            raise known("mission_not_found")
        return _out(mission)

    @get("/{mission_id:int}/progress")
    async def progress(self, request: Request[Any, Any, Any], member: Principal,
                       mission_id: PathId) -> ProgressOut:
        """The member's progress: completions; places for a collection; steps for a chain."""
        pool = request.app.state.pool
        mission = await request.app.state.catalog.mission(pool, mission_id)
        if mission is None:
            raise known("mission_not_found")
        row = await repo.progress(pool, mission_id, member.subject_id)
        out = ProgressOut(mission_id=mission_id, kind=mission.kind,
                          completions=row["completions"] if row else 0,
                          completed=bool(row and (row["completed_at"] or row["completions"])),
                          completed_at=row["completed_at"] if row else None)
        if mission.kind == "collection":
            places = await repo.collected_places(pool, mission_id, member.subject_id)
            out.places_required = mission.collection_required
            out.places_collected = len(places)
            out.collected_geofence_ids = places
        if mission.kind == "chain" and mission.chain_steps:
            done = await repo.completed_missions(pool, member.subject_id, mission.chain_steps)
            out.steps = [StepOut(mission_id=s, completed=s in done,
                                 unlocked=i == 0 or mission.chain_steps[i - 1] in done)
                         for i, s in enumerate(mission.chain_steps)]
        out.badges = [r["badge_code"] for r in await repo.badges(pool, member.subject_id)]
        return out


class CheckinController(Controller):
    path = "/checkins"
    dependencies = {"member": Provide(provide_member)}
    tags = ["missions"]

    @post("/", status_code=201)
    async def checkin(self, request: Request[Any, Any, Any], member: Principal,
                      data: CheckinIn) -> Response[Any]:
        """Check in to a mission (Idempotency-Key required). 201 with the award, or a refusal:
        outside_geofence, inaccurate_location, venue_code_invalid (403), mission_not_active,
        already_completed, mission_budget_exhausted, daily_limit_reached (409),
        member_on_hold (403)."""
        key = idempotency_key(request)
        state = request.app.state
        ledger: Ledger = state.ledger
        checkins = service.Checkins(ledger, state.catalog, state.checkin_batcher)
        try:
            outcome = await checkins.checkin(scope=member.scope, member_id=member.subject_id,
                                             key=key, data=data)
        except DomainError as err:
            metrics.CHECKINS.labels(err.code).inc()
            raise
        if not outcome.replayed:
            body = outcome.body if isinstance(outcome.body, dict) else {}
            metrics.CHECKINS.labels(body.get("decision") or body.get("code") or "unknown").inc()
        return outcome_response(outcome)


# Registered in kuekan.app.DOMAIN_ROUTES.
MISSIONS_ROUTES: list[Any] = [AdminMissionController, MissionsController, CheckinController]
