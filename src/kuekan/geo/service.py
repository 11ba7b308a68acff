"""Geofence use-cases: the per-process fence index, and admin changes that nudge every process.

Each API process holds a :class:`FenceRegistry`: an immutable :class:`FenceIndex` snapshot of the
active fences, loaded at start and rebuilt when ``catalog_versions['geofences']`` moves. Admin
changes publish a nudge on Redis so other processes reload at once; a periodic version check
covers a lost nudge. The check-in path never reads geometry from the database.
"""

from __future__ import annotations

import time
from typing import Any

import asyncpg
import redis.asyncio as aioredis
from redis.exceptions import RedisError
from shapely.geometry import MultiPolygon, mapping, shape

from kuekan.geo import repository as repo
from kuekan.geo.index import FenceIndex
from kuekan.geo.model import Fence
from kuekan.logging import get_logger

log = get_logger(__name__)

CATALOG_CHANNEL = "kk:catalog:changed"


def geometry_json(geometry: MultiPolygon) -> dict[str, Any]:
    """GeoJSON of a MultiPolygon with plain lists (tuples do not round-trip through jsonb)."""
    return {"type": "MultiPolygon",
            "coordinates": [[[list(p) for p in ring] for ring in poly]
                            for poly in mapping(geometry)["coordinates"]]}


def fence_from_row(row: asyncpg.Record | dict[str, Any], version: int = 1) -> Fence:
    geometry = shape(row["geometry"])
    if not isinstance(geometry, MultiPolygon):
        geometry = MultiPolygon([geometry])
    return Fence(id=int(row["id"]), name=row["name"], geometry=geometry,
                 max_accuracy_m=float(row["max_accuracy_m"]),
                 edge_tolerance_m=float(row["edge_tolerance_m"]), version=version)


class FenceRegistry:
    """The process's current fence snapshot; ``index`` is swapped whole, never mutated."""

    def __init__(self) -> None:
        self.index = FenceIndex.build([], 0)

    async def load(self, db: repo.Db, version: int) -> None:
        started = time.perf_counter()
        rows = await repo.active(db)
        self.index = FenceIndex.build((fence_from_row(r, version) for r in rows), version)
        log.info("fences_loaded", count=len(rows), version=version,
                 ms=round((time.perf_counter() - started) * 1000, 1))

    async def refresh(self, db: repo.Db, version: int) -> bool:
        """Reload when ``version`` is newer than the snapshot; True when it reloaded."""
        if version == self.index.version:
            return False
        await self.load(db, version)
        return True


async def nudge(redis: aioredis.Redis) -> None:
    """Tell every API process that fences or missions changed (best effort: polls back it up)."""
    try:
        await redis.publish(CATALOG_CHANNEL, b"1")
    except RedisError as exc:
        log.warning("redis_unavailable", op="catalog_nudge", error=str(exc))


async def changed(app: Any) -> None:
    """After an admin change commits: reload this process now, then nudge the others.

    ``app.state.reload_catalog`` is wired by the composition root (kuekan.app): geo does not
    know who caches fences in the process."""
    await app.state.reload_catalog()
    await nudge(app.state.redis)
