"""Geofence rules and types: pure, no I/O.

Geometries are WGS84 ``(lon, lat)`` as in GeoJSON. Distances are metres on the WGS84 ellipsoid,
computed in a local equirectangular frame (an affine map of lon/lat, so ``covers`` gives the same
answer as in lon/lat) and refined with the ellipsoid's radii of curvature at the mid-latitude.
For the distances a check-in cares about (under 5 km) the error is about one part in a million
against Vincenty's geodesic (see tests/unit/geo/test_model.py). No pyproj needed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeGuard

import msgspec
import numpy as np
import numpy.typing as npt
import shapely
from shapely.geometry import MultiPolygon, Point, Polygon
from shapely.geometry.base import BaseGeometry

from kuekan.errors import invalid

# WGS84 ellipsoid.
WGS84_A_M = 6_378_137.0
WGS84_E2 = 6.694_379_990_14e-3

# Limits on what a fence may be. A fence is checked on every check-in, so its size is bounded.
MAX_VERTICES = 200_000
MAX_POLYGONS = 10_000
MAX_RINGS_PER_POLYGON = 1_000
MAX_ACCURACY_LIMIT_M = 5_000.0
MAX_EDGE_TOLERANCE_M = 1_000.0
MAX_NAME_CHARS = 200

DecisionKind = Literal["inside", "edge", "outside", "inaccurate"]
LonLat = tuple[float, float]


class Decision(msgspec.Struct, frozen=True):
    """The outcome of checking one reported position against one fence.

    ``distance_to_edge_m`` is the distance from the point to the fence's boundary, always >= 0:
    for an ``inside`` point it says how deep inside the point is; for the others, how far outside.
    It is computed for ``inaccurate`` positions too, so it can be recorded on every check-in.
    """

    decision: DecisionKind
    distance_to_edge_m: float
    accepted: bool
    risk_flag: bool


@dataclass(frozen=True, slots=True)
class LocalFrame:
    """An equirectangular frame in metres centred at ``(lon0, lat0)``.

    It is affine in lon/lat, so point-in-polygon answers do not change; its scale is exact at
    ``lat0`` and drifts by about tan(lat) * dlat elsewhere (0.1 % 25 km from the centre at Korat).
    """

    lon0: float
    lat0: float
    m_per_deg_lon: float
    m_per_deg_lat: float

    @classmethod
    def at(cls, lon0: float, lat0: float) -> LocalFrame:
        m_per_deg_lon, m_per_deg_lat = metres_per_degree(lat0)
        return cls(lon0, lat0, m_per_deg_lon, m_per_deg_lat)

    def point(self, lon: float, lat: float) -> Point:
        return Point((lon - self.lon0) * self.m_per_deg_lon, (lat - self.lat0) * self.m_per_deg_lat)

    def project(self, geometry: BaseGeometry) -> BaseGeometry:
        return shapely.transform(geometry, self._forward)

    def lonlat(self, x: float, y: float) -> LonLat:
        return self.lon0 + x / self.m_per_deg_lon, self.lat0 + y / self.m_per_deg_lat

    def _forward(self, coords: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        origin = np.array([self.lon0, self.lat0])
        scale = np.array([self.m_per_deg_lon, self.m_per_deg_lat])
        return (coords - origin) * scale  # type: ignore[no-any-return]


def metres_per_degree(lat: float) -> tuple[float, float]:
    """Metres per degree of longitude and of latitude at ``lat`` on the WGS84 ellipsoid."""
    phi = math.radians(lat)
    w = 1.0 - WGS84_E2 * math.sin(phi) ** 2
    meridian_m = WGS84_A_M * (1.0 - WGS84_E2) / w**1.5
    prime_vertical_m = WGS84_A_M / math.sqrt(w)
    rad = math.pi / 180.0
    return prime_vertical_m * math.cos(phi) * rad, meridian_m * rad


def ground_distance_m(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    """Distance in metres between two nearby points (accurate to ~1e-6 relative under 10 km)."""
    m_per_deg_lon, m_per_deg_lat = metres_per_degree((lat1 + lat2) / 2.0)
    return math.hypot((lon2 - lon1) * m_per_deg_lon, (lat2 - lat1) * m_per_deg_lat)


@dataclass(frozen=True, slots=True)
class Fence:
    """A geofence with its acceptance limits, prepared for fast checks on construction.

    ``geometry`` is a valid (Multi)Polygon in WGS84 lon/lat; build it with
    :func:`parse_geojson_geometry` or :func:`repair_polygonal` to get one.
    """

    id: int
    name: str
    geometry: MultiPolygon | Polygon
    max_accuracy_m: float
    edge_tolerance_m: float
    version: int = 1
    frame: LocalFrame = field(init=False, repr=False, compare=False)
    local_area: BaseGeometry = field(init=False, repr=False, compare=False)
    local_boundary: BaseGeometry = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        _check_fence_fields(self)
        minx, miny, maxx, maxy = self.geometry.bounds
        frame = LocalFrame.at((minx + maxx) / 2.0, (miny + maxy) / 2.0)
        local_area = frame.project(self.geometry)
        local_boundary = local_area.boundary
        # Prepared geometries index their edges once, so each check is sub-linear.
        shapely.prepare(local_area)
        shapely.prepare(local_boundary)
        object.__setattr__(self, "frame", frame)
        object.__setattr__(self, "local_area", local_area)
        object.__setattr__(self, "local_boundary", local_boundary)


class Measure(msgspec.Struct, frozen=True):
    """Where a point is relative to a fence: inside or not, and metres to the boundary."""

    inside: bool
    boundary_distance_m: float


def measure(fence: Fence, lat: float, lon: float) -> Measure:
    """Locate a point relative to ``fence``; the caller has validated ``lat``/``lon``."""
    point = fence.frame.point(lon, lat)
    inside = bool(fence.local_area.covers(point))
    nearest = shapely.shortest_line(fence.local_boundary, point)
    x, y = nearest.coords[0]
    # The frame is centred on the fence, not the point, so re-measure the found nearest point
    # with the radii at the point's own latitude.
    near_lon, near_lat = fence.frame.lonlat(x, y)
    return Measure(inside, ground_distance_m(lon, lat, near_lon, near_lat))


def decide(fence: Fence, lat: float, lon: float, accuracy_m: float) -> Decision:
    """Apply the check-in rule to a reported position with its accuracy radius.

    Accuracy worse than the fence allows is ``inaccurate``; a covered point is ``inside``; an
    outside point within min(accuracy, edge tolerance) of the boundary is ``edge`` (accepted with
    a risk flag); anything else is ``outside``. Raises a 422 DomainError on impossible input.
    """
    check_position(lat, lon)
    check_accuracy(accuracy_m)
    return classify(fence, measure(fence, lat, lon), accuracy_m)


def classify(fence: Fence, where: Measure, accuracy_m: float) -> Decision:
    """The pure decision rule, given a measured position."""
    distance_m = where.boundary_distance_m
    if accuracy_m > fence.max_accuracy_m:
        return Decision("inaccurate", distance_m, accepted=False, risk_flag=False)
    if where.inside:
        return Decision("inside", distance_m, accepted=True, risk_flag=False)
    if distance_m <= min(accuracy_m, fence.edge_tolerance_m):
        return Decision("edge", distance_m, accepted=True, risk_flag=True)
    return Decision("outside", distance_m, accepted=False, risk_flag=False)


def check_position(lat: float, lon: float) -> None:
    if not (math.isfinite(lat) and -90.0 <= lat <= 90.0):
        raise invalid(f"latitude {lat} is out of range -90..90", "ละติจูดไม่อยู่ในช่วง -90 ถึง 90")
    if not (math.isfinite(lon) and -180.0 <= lon <= 180.0):
        raise invalid(
            f"longitude {lon} is out of range -180..180", "ลองจิจูดไม่อยู่ในช่วง -180 ถึง 180"
        )


def check_accuracy(accuracy_m: float) -> None:
    if not (math.isfinite(accuracy_m) and accuracy_m >= 0.0):
        raise invalid(
            f"accuracy {accuracy_m} m must be a finite number >= 0",
            "ค่าความแม่นยำของพิกัดต้องเป็นตัวเลขตั้งแต่ 0 ขึ้นไป",
        )


def _check_fence_fields(fence: Fence) -> None:
    if not 0.0 < fence.max_accuracy_m <= MAX_ACCURACY_LIMIT_M:
        raise invalid(
            f"max_accuracy_m must be in (0, {MAX_ACCURACY_LIMIT_M:g}]",
            f"ค่าความแม่นยำสูงสุดต้องมากกว่า 0 และไม่เกิน {MAX_ACCURACY_LIMIT_M:g} เมตร",
        )
    if not 0.0 <= fence.edge_tolerance_m <= MAX_EDGE_TOLERANCE_M:
        raise invalid(
            f"edge_tolerance_m must be in [0, {MAX_EDGE_TOLERANCE_M:g}]",
            f"ระยะผ่อนผันที่ขอบต้องอยู่ระหว่าง 0 ถึง {MAX_EDGE_TOLERANCE_M:g} เมตร",
        )
    if not 0 < len(fence.name) <= MAX_NAME_CHARS:
        raise invalid(
            f"a fence name needs 1 to {MAX_NAME_CHARS} characters",
            f"ชื่อรั้วพิกัดต้องมี 1 ถึง {MAX_NAME_CHARS} ตัวอักษร",
        )
    geometry = fence.geometry
    if not isinstance(geometry, Polygon | MultiPolygon) or geometry.is_empty:
        raise invalid("a fence needs a non-empty (Multi)Polygon", "รั้วพิกัดต้องเป็นรูปหลายเหลี่ยม")
    if not geometry.is_valid:
        raise invalid(
            f"fence geometry is invalid: {shapely.is_valid_reason(geometry)}",
            "รูปร่างของรั้วพิกัดไม่ถูกต้อง",
        )


# --- Building polygons from coordinates -------------------------------------------------------


def check_ring(ring: Sequence[LonLat], where: str) -> None:
    """Refuse a ring that is too short, not closed, or has a coordinate out of range."""
    if len(ring) < 4:
        raise invalid(
            f"{where}: a ring needs at least 4 positions, got {len(ring)}",
            f"{where}: วงของรูปหลายเหลี่ยมต้องมีอย่างน้อย 4 จุด",
        )
    if ring[0] != ring[-1]:
        raise invalid(
            f"{where}: ring is not closed (first position must equal the last)",
            f"{where}: วงของรูปหลายเหลี่ยมไม่ปิด (จุดแรกต้องเท่ากับจุดสุดท้าย)",
        )
    for lon, lat in ring:
        if not (-180.0 <= lon <= 180.0 and -90.0 <= lat <= 90.0):
            raise invalid(
                f"{where}: position ({lon}, {lat}) is not a lon,lat in range",
                f"{where}: พิกัด ({lon}, {lat}) อยู่นอกช่วงลองจิจูด/ละติจูด",
            )


def polygon_from_rings(shell: Sequence[LonLat], holes: Sequence[Sequence[LonLat]], where: str
                       ) -> Polygon:
    """Build a (possibly invalid) Polygon from checked rings; repair it with repair_polygonal."""
    if len(holes) + 1 > MAX_RINGS_PER_POLYGON:
        raise invalid(
            f"{where}: more than {MAX_RINGS_PER_POLYGON} rings in one polygon",
            f"{where}: รูปหลายเหลี่ยมมีวงเกิน {MAX_RINGS_PER_POLYGON} วง",
        )
    for ring in (shell, *holes):
        check_ring(ring, where)
    return Polygon(shell, holes)


def repair_polygonal(polygons: Sequence[Polygon]) -> tuple[MultiPolygon, list[str]]:
    """Union polygons into one valid MultiPolygon; also return why each repaired part was invalid.

    Each part is repaired on its own before the union: ``make_valid`` on a MultiPolygon whose
    parts overlap would cut the overlap out, while a user drawing two overlapping shapes means
    "either of them".
    """
    if not polygons or len(polygons) > MAX_POLYGONS:
        raise invalid(
            f"a fence needs 1 to {MAX_POLYGONS} polygons, got {len(polygons)}",
            f"รั้วพิกัดต้องมีรูปหลายเหลี่ยม 1 ถึง {MAX_POLYGONS} รูป",
        )
    vertices = sum(int(shapely.get_num_coordinates(p)) for p in polygons)
    if vertices > MAX_VERTICES:
        raise invalid(
            f"the shape has {vertices} vertices, more than {MAX_VERTICES}",
            f"รูปร่างมีจุดยอด {vertices} จุด เกินกว่า {MAX_VERTICES} จุด",
        )
    parts: list[BaseGeometry] = []
    repairs: list[str] = []
    for polygon in polygons:
        if polygon.is_valid:
            parts.append(polygon)
            continue
        repairs.append(shapely.is_valid_reason(polygon))
        parts.extend(_polygonal_parts(shapely.make_valid(polygon)))
    return _as_multipolygon(shapely.union_all(parts)), repairs


def _polygonal_parts(geometry: BaseGeometry) -> list[BaseGeometry]:
    # make_valid may return lines or points for collapsed parts; they have no area to check in.
    return [g for g in shapely.get_parts(geometry) if isinstance(g, Polygon | MultiPolygon)]


def _as_multipolygon(geometry: BaseGeometry) -> MultiPolygon:
    polygons = [p for g in _polygonal_parts(geometry) for p in shapely.get_parts(g)]
    polygons = [p for p in polygons if not p.is_empty and p.area > 0.0]
    if not polygons:
        raise invalid("the shape encloses no area", "รูปร่างไม่มีพื้นที่")
    return MultiPolygon(polygons)


# --- GeoJSON ----------------------------------------------------------------------------------


def parse_geojson_geometry(obj: object) -> MultiPolygon:
    """Parse a GeoJSON Polygon or MultiPolygon dict into a valid MultiPolygon.

    Coordinates are ``[lon, lat]`` (an altitude is allowed and dropped). Rings must be closed and
    have at least 4 positions; invalid shapes (self-intersections...) are repaired with
    ``make_valid``. Raises a 422 DomainError ``validation_failed`` on anything else.
    """
    return repair_polygonal(geojson_polygons(obj, "geometry"))[0]


def geojson_polygons(obj: object, where: str) -> list[Polygon]:
    """The checked, not yet repaired, polygons of a GeoJSON Polygon or MultiPolygon."""
    if not isinstance(obj, dict) or obj.get("type") not in ("Polygon", "MultiPolygon"):
        raise invalid(
            f"{where}: expected a GeoJSON Polygon or MultiPolygon object",
            f"{where}: ต้องเป็น GeoJSON แบบ Polygon หรือ MultiPolygon",
        )
    coordinates = obj.get("coordinates")
    polygons = [coordinates] if obj["type"] == "Polygon" else coordinates
    if not _is_array(polygons) or not polygons or len(polygons) > MAX_POLYGONS:
        raise _bad_coordinates(where)
    _check_vertex_budget(polygons, where)
    return [_geojson_polygon(rings, f"{where} polygon {i}") for i, rings in enumerate(polygons)]


def _geojson_polygon(rings: object, where: str) -> Polygon:
    if not _is_array(rings) or not rings:
        raise _bad_coordinates(where)
    shell, *holes = [_geojson_ring(ring, where) for ring in rings]
    return polygon_from_rings(shell, holes, where)


def _geojson_ring(ring: object, where: str) -> list[LonLat]:
    if not _is_array(ring):
        raise _bad_coordinates(where)
    return [_geojson_position(position, where) for position in ring]


def _geojson_position(position: object, where: str) -> LonLat:
    if not _is_array(position) or len(position) not in (2, 3):
        raise _bad_coordinates(where)
    if not all(_is_number(v) for v in position):
        raise _bad_coordinates(where)
    return float(position[0]), float(position[1])


def _is_array(value: object) -> TypeGuard[list[Any] | tuple[Any, ...]]:
    # JSON decoders give lists; shapely's mapping() gives tuples. Both are fine.
    return isinstance(value, list | tuple)


def _is_number(value: Any) -> bool:
    # bool is an int subclass; true/false are not coordinates.
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _check_vertex_budget(polygons: Sequence[Any], where: str) -> None:
    # Count before building anything, so a huge payload is refused without the memory cost.
    count = 0
    for rings in polygons:
        for ring in rings if _is_array(rings) else ():
            count += len(ring) if _is_array(ring) else 0
    if count > MAX_VERTICES:
        raise invalid(
            f"{where}: {count} vertices, more than {MAX_VERTICES}",
            f"{where}: มีจุดยอด {count} จุด เกินกว่า {MAX_VERTICES} จุด",
        )


def _bad_coordinates(where: str) -> Exception:
    return invalid(
        f"{where}: coordinates must be nested arrays of [lon, lat] numbers",
        f"{where}: พิกัดต้องเป็นอาร์เรย์ของ [ลองจิจูด, ละติจูด]",
    )
