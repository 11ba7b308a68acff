"""The check-in rule and distances, on real Korat boundaries."""

from __future__ import annotations

import itertools
import math

import pytest
import shapely
from shapely.geometry import LineString, MultiPolygon, Point, Polygon, mapping

from kuekan.errors import DomainError
from kuekan.geo.model import (
    MAX_VERTICES,
    Fence,
    LocalFrame,
    decide,
    parse_geojson_geometry,
)
from tests.unit.geo.korat import (
    LANDMARKS,
    PHIMAI_PARK,
    THAO_SURANARI,
    district,
    features,
    fence_of,
    haversine_m,
    offset,
    polygonal,
    square,
    subdistrict,
    vincenty_m,
)

# --- Real districts ---------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "lat", "lon", "code"), LANDMARKS)
def test_landmark_is_inside_its_district_only(name: str, lat: float, lon: float, code: str) -> None:
    inside = [f["properties"]["code"] for f in features("districts")
              if decide(fence_of(f), lat, lon, 5.0).decision == "inside"]
    assert inside == [code], name


def test_inside_point_reports_its_depth_to_the_boundary() -> None:
    _, lat, lon, code = THAO_SURANARI
    decision = decide(fence_of(district(code)), lat, lon, 10.0)
    assert decision.decision == "inside"
    assert decision.accepted
    assert not decision.risk_flag
    # The monument is in the middle of town, kilometres from Mueang's border.
    assert decision.distance_to_edge_m > 2_000


def test_far_point_is_outside_with_its_distance() -> None:
    _, lat, lon, _ = PHIMAI_PARK
    decision = decide(fence_of(district("3001")), lat, lon, 10.0)
    assert decision.decision == "outside"
    assert not decision.accepted
    assert decision.distance_to_edge_m > 10_000


# --- A shared subdistrict border, a few metres either side -------------------------------------


def _longest_shared_edge(code_a: str, code_b: str) -> tuple[tuple[float, float], ...]:
    """The longest edge of subdistrict A's exterior that lies on subdistrict B's boundary."""
    ring = polygonal(subdistrict(code_a)).geoms[0].exterior.coords
    other = polygonal(subdistrict(code_b)).boundary
    shared = [(p, q) for p, q in itertools.pairwise(ring)
              if other.distance(LineString([p, q]).centroid) < 1e-9
              and other.distance(Point(p)) < 1e-9 and other.distance(Point(q)) < 1e-9]
    assert shared, f"{code_a} and {code_b} share no edge"
    return max(shared, key=lambda pq: math.dist(*pq))


def _either_side(code_a: str, code_b: str, offset_m: float) -> tuple[tuple[float, float], ...]:
    """Two (lat, lon) points offset_m either side of the middle of the shared edge."""
    (lon1, lat1), (lon2, lat2) = _longest_shared_edge(code_a, code_b)
    mid_lat, mid_lon = (lat1 + lat2) / 2, (lon1 + lon2) / 2
    frame = LocalFrame.at(mid_lon, mid_lat)
    end = frame.point(lon2, lat2)
    length = math.hypot(end.x, end.y)
    # The normal of a segment through the origin of a metric frame, scaled to offset_m.
    normal_east, normal_north = -end.y / length * offset_m, end.x / length * offset_m
    return (offset(mid_lat, mid_lon, normal_east, normal_north),
            offset(mid_lat, mid_lon, -normal_east, -normal_north))


@pytest.mark.parametrize(("code_a", "code_b"), [
    ("300122", "300116"),  # Mueang Nakhon Ratchasima, the longest shared edge in the district
    ("300120", "300113"),
    ("300112", "300122"),
])
def test_points_3_m_either_side_of_a_shared_border(code_a: str, code_b: str) -> None:
    fence_a = fence_of(subdistrict(code_a), edge_tolerance_m=1.0)
    fence_b = fence_of(subdistrict(code_b), edge_tolerance_m=1.0)
    side_1, side_2 = _either_side(code_a, code_b, 3.0)
    in_a, in_b = (side_1, side_2) if decide(fence_a, *side_1, 1.0).decision == "inside" else (
        side_2, side_1)

    assert decide(fence_a, *in_a, 1.0).decision == "inside"
    assert decide(fence_b, *in_b, 1.0).decision == "inside"
    outside_a = decide(fence_a, *in_b, 1.0)
    outside_b = decide(fence_b, *in_a, 1.0)
    assert (outside_a.decision, outside_b.decision) == ("outside", "outside")
    # Each point is 3 m from the shared border, whichever side it is measured from.
    for distance_m in (outside_a.distance_to_edge_m, outside_b.distance_to_edge_m):
        assert distance_m == pytest.approx(3.0, abs=0.02)


def test_point_just_outside_a_border_is_edge_when_accuracy_and_tolerance_cover_it() -> None:
    fence_a = fence_of(subdistrict("300122"), edge_tolerance_m=5.0)
    side_1, side_2 = _either_side("300122", "300116", 3.0)
    outside = side_2 if decide(fence_a, *side_1, 1.0).decision == "inside" else side_1

    decision = decide(fence_a, *outside, 4.0)

    assert decision.decision == "edge"
    assert decision.accepted
    assert decision.risk_flag


# --- Shapes: multipolygon, hole ---------------------------------------------------------------


def test_multipolygon_fence_covers_each_part_and_not_the_gap() -> None:
    parts = [polygonal(district(code)).geoms[0] for code in ("3001", "3015")]
    geometry = parse_geojson_geometry(mapping(MultiPolygon(parts)))
    fence = Fence(1, "Mueang + Phimai", geometry, 50.0, 20.0)

    for _, lat, lon, _ in (THAO_SURANARI, PHIMAI_PARK):
        assert decide(fence, lat, lon, 5.0).decision == "inside"
    # Chakkarat district lies between the two, in neither part.
    chakkarat = polygonal(district("3006")).representative_point()
    assert decide(fence, chakkarat.y, chakkarat.x, 5.0).decision == "outside"


def test_point_in_a_hole_is_outside() -> None:
    _, lat, lon, code = THAO_SURANARI
    shell = polygonal(district(code)).geoms[0].exterior
    hole = square(lat, lon, 100.0).exterior  # a 200 m square hole around the monument
    fence = Fence(1, "Mueang minus the monument", Polygon(shell, [hole]), 50.0, 20.0)

    in_hole = decide(fence, lat, lon, 5.0)
    assert in_hole.decision == "outside"
    assert in_hole.distance_to_edge_m == pytest.approx(100.0, rel=1e-3)
    beyond_hole = decide(fence, *offset(lat, lon, 0.0, 300.0), 5.0)
    assert beyond_hole.decision == "inside"
    assert beyond_hole.distance_to_edge_m == pytest.approx(200.0, rel=1e-3)


# --- Accuracy and edge tolerance --------------------------------------------------------------


def _venue(max_accuracy_m: float = 30.0, edge_tolerance_m: float = 10.0) -> Fence:
    _, lat, lon, _ = THAO_SURANARI
    return Fence(7, "venue", square(lat, lon, 50.0), max_accuracy_m, edge_tolerance_m)


def test_accuracy_equal_to_the_limit_is_accepted() -> None:
    _, lat, lon, _ = THAO_SURANARI
    decision = decide(_venue(max_accuracy_m=30.0), lat, lon, 30.0)
    assert decision.decision == "inside"
    assert decision.accepted


def test_accuracy_beyond_the_limit_is_inaccurate_and_still_measured() -> None:
    _, lat, lon, _ = THAO_SURANARI
    decision = decide(_venue(max_accuracy_m=30.0), lat, lon, 30.01)
    assert decision.decision == "inaccurate"
    assert not decision.accepted
    assert not decision.risk_flag
    assert decision.distance_to_edge_m == pytest.approx(50.0, rel=1e-3)


@pytest.mark.parametrize(("accuracy_m", "edge_tolerance_m", "expected"), [
    (10.0, 10.0, "edge"),      # 8 m out, both limits cover it
    (5.0, 10.0, "outside"),    # the accuracy circle does not reach the fence
    (20.0, 5.0, "outside"),    # the fence's tolerance is tighter than the accuracy
    (8.5, 8.5, "edge"),
    (7.5, 30.0, "outside"),
    (20.0, 0.0, "outside"),    # no tolerance: only inside counts
])
def test_edge_needs_distance_within_accuracy_and_tolerance(
        accuracy_m: float, edge_tolerance_m: float, expected: str) -> None:
    _, lat, lon, _ = THAO_SURANARI
    fence = _venue(edge_tolerance_m=edge_tolerance_m)
    decision = decide(fence, *offset(lat, lon, 58.0, 0.0), accuracy_m)  # 8 m east of the edge
    assert decision.distance_to_edge_m == pytest.approx(8.0, abs=0.01)
    assert decision.decision == expected
    assert decision.accepted is (expected == "edge")
    assert decision.risk_flag is (expected == "edge")


@pytest.mark.parametrize(("lat", "lon", "accuracy_m"), [
    (math.nan, 102.1, 5.0), (91.0, 102.1, 5.0), (14.9, 181.0, 5.0), (14.9, 102.1, -1.0),
    (14.9, 102.1, math.inf),
])
def test_impossible_positions_are_refused(lat: float, lon: float, accuracy_m: float) -> None:
    with pytest.raises(DomainError) as caught:
        decide(_venue(), lat, lon, accuracy_m)
    assert (caught.value.code, caught.value.status) == ("validation_failed", 422)


@pytest.mark.parametrize(("max_accuracy_m", "edge_tolerance_m"), [
    (0.0, 10.0), (6_000.0, 10.0), (30.0, -1.0), (30.0, 2_000.0),
])
def test_fence_limits_are_bounded(max_accuracy_m: float, edge_tolerance_m: float) -> None:
    with pytest.raises(DomainError, match="must be in"):
        _venue(max_accuracy_m, edge_tolerance_m)


def test_fence_refuses_an_invalid_geometry() -> None:
    bowtie = Polygon([(102.0, 15.0), (102.1, 15.1), (102.1, 15.0), (102.0, 15.1), (102.0, 15.0)])
    with pytest.raises(DomainError, match="invalid"):
        Fence(1, "bowtie", bowtie, 30.0, 10.0)


# --- Distances in metres ----------------------------------------------------------------------


def _distance_cases() -> list[tuple[float, float]]:
    return [(bearing, distance) for bearing in range(0, 360, 30)
            for distance in (10.0, 100.0, 1_000.0, 5_000.0)]


@pytest.mark.parametrize(("bearing_deg", "distance_m"), _distance_cases())
def test_distance_matches_the_ellipsoid_and_haversine(bearing_deg: float, distance_m: float
                                                      ) -> None:
    _, lat, lon, _ = THAO_SURANARI
    fence = Fence(1, "dot", square(lat, lon, 0.001), 30.0, 10.0)  # 2 mm wide
    east = distance_m * math.sin(math.radians(bearing_deg))
    north = distance_m * math.cos(math.radians(bearing_deg))
    p_lat, p_lon = offset(lat, lon, east, north)

    measured = decide(fence, p_lat, p_lon, 5.0).distance_to_edge_m

    # At 2 mm, picking the nearest edge point in lon/lat is exact enough.
    near = shapely.shortest_line(fence.geometry.boundary, Point(p_lon, p_lat)).coords[0]
    geodesic = vincenty_m(near[1], near[0], p_lat, p_lon)
    assert measured == pytest.approx(geodesic, rel=1e-5)
    # Haversine's sphere is itself 0.49 % off the ellipsoid north-south at 15 N, hence 0.5 %.
    assert measured == pytest.approx(haversine_m(near[1], near[0], p_lat, p_lon), rel=5e-3)


@pytest.mark.parametrize(("east_m", "north_m"), [(0.0, 4_000.0), (3_000.0, 3_000.0),
                                                 (-2_500.0, 0.0), (0.0, -1_500.0)])
def test_distance_to_a_large_district_matches_a_geodesic_reference(east_m: float, north_m: float
                                                                   ) -> None:
    """Away from the fence's own centre, its frame's scale drifts; the refinement fixes that."""
    geometry = polygonal(district("3015"))
    fence = Fence(1, "Phimai", geometry, 30.0, 10.0)
    (minx, miny, maxx, maxy) = geometry.bounds
    corner = [Point(maxx, maxy), Point(minx, miny)][east_m < 0 or north_m < 0]
    start = geometry.boundary.interpolate(geometry.boundary.project(corner))
    p_lat, p_lon = offset(start.y, start.x, east_m, north_m)

    measured = decide(fence, p_lat, p_lon, 5.0).distance_to_edge_m

    assert measured == pytest.approx(_geodesic_distance_to(geometry, p_lat, p_lon), rel=1e-5)


def _geodesic_distance_to(geometry: MultiPolygon, lat: float, lon: float) -> float:
    """Brute force: the nearest of the boundary points every ~2 m within 6 km, by Vincenty."""
    boundary = shapely.segmentize(geometry.boundary, 2e-5)
    window = shapely.box(lon - 0.06, lat - 0.06, lon + 0.06, lat + 0.06)
    coords = shapely.get_coordinates(shapely.intersection(boundary, window))
    return min(vincenty_m(lat, lon, float(y), float(x)) for x, y in coords)


# --- GeoJSON geometry parsing -----------------------------------------------------------------


def _ring(lon: float = 102.1, lat: float = 14.97, size: float = 0.01) -> list[list[float]]:
    return [[lon, lat], [lon + size, lat], [lon + size, lat + size], [lon, lat + size], [lon, lat]]


def test_parse_polygon_with_altitude_gives_a_2d_multipolygon() -> None:
    ring = [[*position, 180.0] for position in _ring()]
    geometry = parse_geojson_geometry({"type": "Polygon", "coordinates": [ring]})
    assert isinstance(geometry, MultiPolygon)
    assert not geometry.has_z
    assert geometry.bounds == pytest.approx((102.1, 14.97, 102.11, 14.98))


def test_parse_repairs_a_bowtie_into_its_two_lobes() -> None:
    bowtie = [[102.0, 15.0], [102.1, 15.1], [102.1, 15.0], [102.0, 15.1], [102.0, 15.0]]
    geometry = parse_geojson_geometry({"type": "Polygon", "coordinates": [bowtie]})
    assert geometry.is_valid
    assert len(geometry.geoms) == 2
    assert geometry.area == pytest.approx(0.005)


def test_parse_keeps_the_overlap_of_overlapping_parts() -> None:
    # make_valid on the whole MultiPolygon would cut the overlap out; it must stay covered.
    obj = {"type": "MultiPolygon", "coordinates": [[_ring(102.1)], [_ring(102.105)]]}
    geometry = parse_geojson_geometry(obj)
    assert geometry.is_valid
    assert geometry.covers(Point(102.108, 14.975))
    assert geometry.area == pytest.approx(0.015 * 0.01)


def test_parse_keeps_holes() -> None:
    hole = _ring(102.103, 14.973, 0.002)
    geometry = parse_geojson_geometry({"type": "Polygon", "coordinates": [_ring(), hole]})
    assert not geometry.covers(Point(102.104, 14.974))
    assert geometry.covers(Point(102.101, 14.971))


@pytest.mark.parametrize(("obj", "message"), [
    ({"type": "Point", "coordinates": [102.1, 14.9]}, "Polygon or MultiPolygon"),
    ("not a dict", "Polygon or MultiPolygon"),
    ({"type": "Polygon", "coordinates": [_ring()[:-1]]}, "not closed"),
    ({"type": "Polygon", "coordinates": [[[102.1, 14.9], [102.2, 14.9], [102.1, 14.9]]]},
     "at least 4"),
    ({"type": "Polygon", "coordinates": [_ring(lon=14.97, lat=102.1)]}, "in range"),
    ({"type": "Polygon", "coordinates": [[[True, 14.9], *_ring()[1:]]]}, "coordinates must"),
    ({"type": "Polygon", "coordinates": [[["102.1", "14.9"], *_ring()[1:]]]}, "coordinates must"),
    ({"type": "Polygon", "coordinates": []}, "coordinates must"),
    ({"type": "Polygon", "coordinates": [_ring(size=0.0)]}, "no area"),
])
def test_parse_refuses_bad_geometry_with_a_clear_message(obj: object, message: str) -> None:
    with pytest.raises(DomainError, match=message) as caught:
        parse_geojson_geometry(obj)
    assert (caught.value.code, caught.value.status) == ("validation_failed", 422)
    assert caught.value.message_th


def test_parse_refuses_too_many_vertices_before_building() -> None:
    ring = [[102.0 + i * 1e-6, 15.0] for i in range(MAX_VERTICES + 1)]
    with pytest.raises(DomainError, match="vertices"):
        parse_geojson_geometry({"type": "Polygon", "coordinates": [ring]})
