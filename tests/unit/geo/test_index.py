"""The in-memory fence index: lookups, nearby search and snapshot swaps, on real districts."""

from __future__ import annotations

import pytest

from kuekan.errors import DomainError
from kuekan.geo.index import MAX_CANDIDATES, FenceIndex
from kuekan.geo.model import Fence
from tests.unit.geo.korat import (
    LANDMARKS,
    PHIMAI_PARK,
    THAO_SURANARI,
    district,
    features,
    fence_of,
    offset,
    square,
)


def _district_fences() -> list[Fence]:
    return [fence_of(f, fence_id=int(f["properties"]["code"])) for f in features("districts")]


def _venues(count: int) -> list[Fence]:
    """Venues 30 m across, 200 m apart along a line east of the monument."""
    _, lat, lon, _ = THAO_SURANARI
    return [Fence(10_000 + i, f"venue {i}", square(*offset(lat, lon, 200.0 * i, 0.0), 15.0),
                  30.0, 10.0) for i in range(count)]


@pytest.fixture(scope="module")
def index() -> FenceIndex:
    return FenceIndex.build([*_district_fences(), *_venues(20)], version=7)


def test_build_holds_every_fence_under_its_version(index: FenceIndex) -> None:
    assert len(index) == 52
    assert index.version == 7
    fence = index.get(3015)
    assert fence is not None
    assert fence.name == "Phimai"
    assert index.get(999) is None


@pytest.mark.parametrize(("name", "lat", "lon", "code"), LANDMARKS)
def test_decide_by_id_uses_that_fence(index: FenceIndex, name: str, lat: float, lon: float,
                                      code: str) -> None:
    assert index.decide(int(code), lat, lon, 5.0).decision == "inside", name
    other = 3015 if code != "3015" else 3001
    assert index.decide(other, lat, lon, 5.0).decision == "outside", name


def test_decide_on_an_unknown_fence_is_not_found(index: FenceIndex) -> None:
    with pytest.raises(DomainError) as caught:
        index.decide(999, 14.9, 102.1, 5.0)
    assert (caught.value.code, caught.value.status) == ("fence_not_found", 404)


def test_candidates_at_a_landmark_is_its_district_and_venue(index: FenceIndex) -> None:
    _, lat, lon, _ = THAO_SURANARI
    near = index.candidates(lat, lon, 0.0)
    assert {n.fence.id for n in near} == {3001, 10_000}
    assert all(n.distance_m == 0.0 for n in near)


def test_candidates_are_nearest_first_and_within_the_radius(index: FenceIndex) -> None:
    _, lat, lon, _ = THAO_SURANARI
    near = index.candidates(lat, lon, 1_000.0)
    venue_ids = [n.fence.id for n in near if n.fence.id >= 10_000]
    # Venues sit every 200 m eastwards with 15 m half-sides: 0..5 are within 1 km, 6 is not.
    assert venue_ids == [10_000 + i for i in range(6)]
    distances = [n.distance_m for n in near]
    assert distances == sorted(distances)
    assert near[-1].distance_m == pytest.approx(4 * 200.0 + 185.0, abs=0.5)


def test_candidates_find_a_district_a_kilometre_outside_it(index: FenceIndex) -> None:
    lat = PHIMAI_PARK[1]
    phimai = district("3015")
    west = min(x for x, _ in phimai["geometry"]["coordinates"][0])
    point_lat, point_lon = lat, west - 0.01  # about 1 km west of Phimai's westmost vertex
    near = {n.fence.id: n.distance_m for n in index.candidates(point_lat, point_lon, 5_000.0)}
    assert 3015 in near
    assert 0.0 < near[3015] < 5_000.0


def test_candidates_respect_the_limit(index: FenceIndex) -> None:
    _, lat, lon, _ = THAO_SURANARI
    assert len(index.candidates(lat, lon, 5_000.0, limit=3)) == 3
    assert len(index.candidates(lat, lon, 50_000.0, limit=10_000)) <= MAX_CANDIDATES


@pytest.mark.parametrize("radius_m", [-1.0, 50_001.0])
def test_candidates_refuse_an_unbounded_radius(index: FenceIndex, radius_m: float) -> None:
    with pytest.raises(DomainError) as caught:
        index.candidates(14.9, 102.1, radius_m)
    assert caught.value.code == "validation_failed"


def test_duplicate_ids_are_refused() -> None:
    venue = _venues(1)[0]
    with pytest.raises(ValueError, match="unique"):
        FenceIndex.build([venue, venue], version=1)


def test_a_reload_is_a_new_snapshot_and_the_old_one_is_untouched(index: FenceIndex) -> None:
    _, lat, lon, _ = THAO_SURANARI
    smaller = FenceIndex.build(_venues(1), version=8)

    assert (len(smaller), smaller.version) == (1, 8)
    assert smaller.get(3001) is None
    assert index.get(3001) is not None
    assert index.decide(3001, lat, lon, 5.0).decision == "inside"
    with pytest.raises(AttributeError):
        index.version = 9  # type: ignore[misc]
