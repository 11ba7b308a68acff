"""Admin geofence routes: create from GeoJSON, list, update, disable, import files, test a point."""

from __future__ import annotations

from typing import Annotated, Any

import asyncpg
import msgspec
from litestar import Controller, Request, delete, get, patch, post
from litestar.datastructures import UploadFile
from litestar.di import Provide
from litestar.enums import RequestEncodingType
from litestar.params import Body, Parameter

from kuekan.auth.guards import provide_admin
from kuekan.auth.tokens import Principal
from kuekan.errors import DomainError, invalid, known
from kuekan.geo import kml, service
from kuekan.geo import repository as repo
from kuekan.geo.model import Fence, decide, parse_geojson_geometry
from kuekan.geo.schemas import (
    FenceTestIn,
    FenceTestOut,
    GeofenceIn,
    GeofenceList,
    GeofenceOut,
    GeofencePatch,
    ImportOut,
)
from kuekan.kit.bounds import PathId, QueryCursor, QueryLimit, QueryText
from kuekan.logging import get_logger
from kuekan.pagination import next_cursor, page_limit, parse_cursor

log = get_logger(__name__)

DEFAULT_MAX_ACCURACY_M = 100.0
DEFAULT_EDGE_TOLERANCE_M = 30.0


def _out(record: asyncpg.Record | dict[str, Any], fence: Fence | None = None) -> GeofenceOut:
    row = dict(record)
    geometry = row.get("geometry")
    area = centroid = None
    if geometry is not None:
        fence = fence or service.fence_from_row(row)
        c = fence.geometry.centroid
        area, centroid = round(float(fence.local_area.area), 1), {"lat": c.y, "lon": c.x}
    return GeofenceOut(id=row["id"], code=row["code"], name=row["name"], kind=row["kind"],
                       status=row["status"], max_accuracy_m=row["max_accuracy_m"],
                       edge_tolerance_m=row["edge_tolerance_m"], description=row["description"],
                       area_m2=area, centroid=centroid,
                       geometry=geometry)


def _checked(name: str, geometry: Any, max_accuracy_m: float, edge_tolerance_m: float) -> Fence:
    """A Fence built from admin input: geometry parsed, repaired and the limits checked."""
    return Fence(id=0, name=name, geometry=parse_geojson_geometry(geometry),
                 max_accuracy_m=max_accuracy_m, edge_tolerance_m=edge_tolerance_m)


def _code_taken() -> DomainError:
    return known("geofence_code_taken")


class AdminGeofenceController(Controller):
    path = "/admin/geofences"
    dependencies = {"admin": Provide(provide_admin)}
    tags = ["admin", "geofences"]

    @post("/", status_code=201, opt={"policy": "pao"})
    async def create(self, request: Request[Any, Any, Any], admin: Principal,
                     data: GeofenceIn) -> GeofenceOut:
        fence = _checked(data.name, data.geometry, data.max_accuracy_m, data.edge_tolerance_m)
        try:
            row = await repo.insert(
                request.app.state.pool, name=data.name, kind=data.kind, code=data.code,
                geometry=service.geometry_json(fence.geometry),
                max_accuracy_m=data.max_accuracy_m, edge_tolerance_m=data.edge_tolerance_m,
                description=data.description)
        except asyncpg.UniqueViolationError:
            raise _code_taken() from None
        await service.changed(request.app)
        log.info("geofence_created", id=row["id"], by=admin.scope)
        return _out(row)

    @get("/", opt={"policy": "shared"})
    async def list(self, request: Request[Any, Any, Any], admin: Principal,
                   limit: QueryLimit = None,
                   cursor: QueryCursor = None, status: QueryText = None,
                   include_geometry: bool = False) -> GeofenceList:
        n = page_limit(request.app.state.settings, limit)
        rows = await repo.page(request.app.state.pool, after_id=parse_cursor(cursor) or 0,
                               limit=n, with_geometry=include_geometry, status=status)
        return GeofenceList(items=[_out(r) for r in rows],
                            next_cursor=next_cursor(rows, n, lambda r: int(r["id"])))

    @get("/{fence_id:int}", opt={"policy": "shared"})
    async def get_one(self, request: Request[Any, Any, Any], admin: Principal,
                      fence_id: PathId) -> GeofenceOut:
        row = await repo.get(request.app.state.pool, fence_id)
        if row is None:
            raise known("geofence_not_found")
        return _out(row)

    @patch("/{fence_id:int}", opt={"policy": "pao"})
    async def update(self, request: Request[Any, Any, Any], admin: Principal, fence_id: PathId,
                     data: GeofencePatch) -> GeofenceOut:
        pool = request.app.state.pool
        row = await repo.get(pool, fence_id)
        if row is None:
            raise known("geofence_not_found")
        fields = {k: v for k, v in ((f, getattr(data, f)) for f in data.__struct_fields__)
                  if v is not msgspec.UNSET}
        fence = _checked(fields.get("name", row["name"]), fields.get("geometry", row["geometry"]),
                         fields.get("max_accuracy_m", row["max_accuracy_m"]),
                         fields.get("edge_tolerance_m", row["edge_tolerance_m"]))
        if "geometry" in fields:
            fields["geometry"] = service.geometry_json(fence.geometry)
        updated = await repo.update(pool, fence_id, fields) if fields else row
        assert updated is not None
        await service.changed(request.app)
        log.info("geofence_updated", id=fence_id, fields=sorted(fields), by=admin.scope)
        return _out(updated)

    @delete("/{fence_id:int}", status_code=200, opt={"policy": "pao"})
    async def disable(self, request: Request[Any, Any, Any], admin: Principal,
                      fence_id: PathId) -> GeofenceOut:
        """Disable (never delete: check-ins keep referring to it)."""
        row = await repo.update(request.app.state.pool, fence_id, {"status": "disabled"})
        if row is None:
            raise known("geofence_not_found")
        await service.changed(request.app)
        log.info("geofence_disabled", id=fence_id, by=admin.scope)
        return _out(row)

    @post("/import", status_code=201, opt={"policy": "pao"})
    async def import_file(
        self, request: Request[Any, Any, Any], admin: Principal,
        data: Annotated[dict[str, Any], Body(media_type=RequestEncodingType.MULTI_PART)],
        dry_run: bool = False,
        kind: Annotated[str, Parameter(max_length=32)] = "custom",
        max_accuracy_m: Annotated[float, Parameter(gt=0, le=5000)] = DEFAULT_MAX_ACCURACY_M,
        edge_tolerance_m: Annotated[float, Parameter(ge=0, le=1000)] = DEFAULT_EDGE_TOLERANCE_M,
    ) -> ImportOut:
        """Import every polygon of a KML, KMZ or GeoJSON file (form field ``file``).

        ``dry_run=true`` previews (parsed shapes and warnings) without storing anything. A
        refused file (unsafe XML, not KML/GeoJSON, too large) stores nothing.
        """
        upload = data.get("file")
        if not isinstance(upload, UploadFile):
            raise invalid("send the file as multipart form field 'file'",
                          "โปรดส่งไฟล์ในฟิลด์ 'file' แบบ multipart")
        if kind not in {"district", "venue", "event", "custom"}:
            raise invalid("kind must be district, venue, event or custom", "ชนิดรั้วพิกัดไม่ถูกต้อง")
        raw = await upload.read(kml.MAX_FILE_BYTES + 1)
        result = kml.import_fences(raw, upload.filename or "upload")
        fences = [Fence(id=0, name=p.name[:200] or "imported", geometry=p.geometry,
                        max_accuracy_m=max_accuracy_m, edge_tolerance_m=edge_tolerance_m)
                  for p in result.items]
        rows: list[dict[str, Any]] = []
        if not dry_run:
            async with request.app.state.pool.acquire() as conn, conn.transaction():
                for fence, parsed in zip(fences, result.items, strict=True):
                    rows.append(dict(await repo.insert(
                        conn, name=fence.name, kind=kind, code=None,
                        geometry=service.geometry_json(fence.geometry),
                        max_accuracy_m=max_accuracy_m, edge_tolerance_m=edge_tolerance_m,
                        description=parsed.description)))
            await service.changed(request.app)
            log.info("geofences_imported", count=len(rows), by=admin.scope,
                     warnings=len(result.warnings))
        else:
            rows = [{"id": 0, "code": None, "name": f.name, "kind": kind, "status": "preview",
                     "max_accuracy_m": max_accuracy_m, "edge_tolerance_m": edge_tolerance_m,
                     "description": p.description,
                     "geometry": service.geometry_json(f.geometry)}
                    for f, p in zip(fences, result.items, strict=True)]
        items = [_out(r, f) for r, f in zip(rows, fences, strict=True)]
        return ImportOut(items=items, warnings=result.warnings, dry_run=dry_run)

    @post("/{fence_id:int}/test", status_code=200, opt={"policy": "shared"})
    async def test_point(self, request: Request[Any, Any, Any], admin: Principal, fence_id: PathId,
                         data: FenceTestIn) -> FenceTestOut:
        """The check-in decision for a position, also for a disabled fence (before it goes live)."""
        row = await repo.get(request.app.state.pool, fence_id)
        if row is None:
            raise known("geofence_not_found")
        d = decide(service.fence_from_row(row), data.lat, data.lon, data.accuracy_m)
        return FenceTestOut(fence_id=fence_id, decision=d.decision,
                            distance_to_edge_m=round(d.distance_to_edge_m, 2),
                            accepted=d.accepted, risk_flag=d.risk_flag)
