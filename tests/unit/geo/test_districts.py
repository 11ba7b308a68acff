"""The district lookup shared by analytics and notifications, on the shipped Korat polygons."""

from __future__ import annotations

from kuekan.geo.districts import districts

# Thao Suranari Monument, in Mueang Nakhon Ratchasima.
MONUMENT = (14.9747, 102.0980)


def test_a_point_and_a_shape_are_placed_in_their_district() -> None:
    d = districts()
    assert len(d.features) == 32
    code = d.at(*MONUMENT)
    assert code is not None
    lat, lon = MONUMENT
    square = {"type": "Polygon", "coordinates": [[
        [lon - 0.001, lat - 0.001], [lon + 0.001, lat - 0.001], [lon + 0.001, lat + 0.001],
        [lon - 0.001, lat + 0.001], [lon - 0.001, lat - 0.001]]]}
    assert d.of_shape(square) == code
    assert "Mueang" in d.name(code, "en") and d.name(code, "th") != d.name(code, "en")


def test_a_point_outside_korat_has_no_district() -> None:
    assert districts().at(13.7563, 100.5018) is None  # Bangkok
    assert districts().name("nope", "th") == "nope"


def test_the_index_is_built_once_per_process() -> None:
    assert districts() is districts()
