"""An immutable in-memory index of fences for fast check-in decisions.

Each API process holds one :class:`FenceIndex`. A reload builds a new index and rebinds one
reference, so a request sees either the old snapshot or the new one, never a mix.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import NamedTuple

import shapely
from shapely import STRtree

from kuekan.errors import invalid, known
from kuekan.geo.model import Decision, Fence, check_position, decide, measure, metres_per_degree

MAX_FENCES = 100_000
MAX_CANDIDATE_RADIUS_M = 50_000.0
MAX_CANDIDATES = 100
# Widen the degree box a little so fences at exactly radius_m are never missed by the tree.
_BOX_MARGIN = 1.01


class Nearby(NamedTuple):
    """A fence near a point; ``distance_m`` is 0 when the point is inside it."""

    fence: Fence
    distance_m: float


class FenceIndex:
    """A snapshot of fences, searchable by id and by location; never mutated after build."""

    __slots__ = ("_by_id", "_fences", "_tree", "_version")

    def __init__(self, fences: tuple[Fence, ...], version: int) -> None:
        # Use FenceIndex.build; this constructor trusts its input.
        self._version = version
        self._fences = fences
        self._by_id: Mapping[int, Fence] = MappingProxyType({f.id: f for f in fences})
        self._tree = STRtree([f.geometry for f in fences])

    @classmethod
    def build(cls, fences: Iterable[Fence], version: int) -> FenceIndex:
        """Index ``fences`` (unique ids); ``version`` names the snapshot, e.g. a DB counter."""
        snapshot = tuple(fences)
        if len(snapshot) > MAX_FENCES:
            raise ValueError(f"{len(snapshot)} fences exceed MAX_FENCES={MAX_FENCES}")
        if len({f.id for f in snapshot}) != len(snapshot):
            raise ValueError("fence ids must be unique within one index")
        return cls(snapshot, version)

    @property
    def version(self) -> int:
        return self._version

    def __len__(self) -> int:
        return len(self._fences)

    def get(self, fence_id: int) -> Fence | None:
        return self._by_id.get(fence_id)

    def decide(self, fence_id: int, lat: float, lon: float, accuracy_m: float) -> Decision:
        """Apply the check-in rule for one fence; a 404 DomainError if it is not in the index."""
        fence = self._by_id.get(fence_id)
        if fence is None:
            raise known("fence_not_found")
        return decide(fence, lat, lon, accuracy_m)

    def candidates(self, lat: float, lon: float, radius_m: float,
                   limit: int = MAX_CANDIDATES) -> list[Nearby]:
        """Fences within ``radius_m`` of a point, nearest first, at most ``limit`` of them."""
        check_position(lat, lon)
        if not 0.0 <= radius_m <= MAX_CANDIDATE_RADIUS_M:
            raise invalid(f"radius_m must be in [0, {MAX_CANDIDATE_RADIUS_M:g}]",
                          f"รัศมีต้องอยู่ระหว่าง 0 ถึง {MAX_CANDIDATE_RADIUS_M:g} เมตร")
        near = [self._nearby(int(i), lat, lon) for i in self._tree.query(_box(lat, lon, radius_m))]
        hits = sorted((n for n in near if n.distance_m <= radius_m), key=lambda n: n.distance_m)
        return hits[: max(0, min(limit, MAX_CANDIDATES))]

    def _nearby(self, position: int, lat: float, lon: float) -> Nearby:
        fence = self._fences[position]
        where = measure(fence, lat, lon)
        return Nearby(fence, 0.0 if where.inside else where.boundary_distance_m)


def _box(lat: float, lon: float, radius_m: float) -> shapely.Geometry:
    m_per_deg_lon, m_per_deg_lat = metres_per_degree(lat)
    dlon = radius_m * _BOX_MARGIN / m_per_deg_lon
    dlat = radius_m * _BOX_MARGIN / m_per_deg_lat
    return shapely.box(lon - dlon, lat - dlat, lon + dlon, lat + dlat)
