"""Importing fences from KML, KMZ and GeoJSON files, and refusing unsafe or unusable ones."""

from __future__ import annotations

import io
import re
import zipfile

import pytest
from shapely.geometry import Point

from kuekan.errors import DomainError
from kuekan.geo.kml import (
    MAX_FILE_BYTES,
    MAX_KMZ_ENTRIES,
    MAX_UNZIPPED_BYTES,
    ImportResult,
    import_fences,
)
from tests.unit.geo.korat import korat_dir

THAI = re.compile(r"[\u0E00-\u0E7F]")

# Two squares near the Thao Suranari Monument and one near Phimai, as lon,lat,alt tuples.
MONUMENT_SQUARE = """
            102.0990,14.9740,0 102.1020,14.9740,0 102.1020,14.9760,0
            102.0990,14.9760,0 102.0990,14.9740,0"""
MONUMENT_HOLE = "102.1000,14.9745,0 102.1010,14.9745,0 102.1010,14.9755,0 102.1000,14.9755,0 " \
                "102.1000,14.9745,0"
PHIMAI_SQUARE = "102.49,15.22,0 102.50,15.22,0 102.50,15.23,0 102.49,15.23,0 102.49,15.22,0"
MARKET_SQUARE = "102.11,14.98 102.12,14.98 102.12,14.99 102.11,14.99 102.11,14.98"


def _polygon(coordinates: str, hole: str | None = None) -> str:
    inner = (f"<innerBoundaryIs><LinearRing><coordinates>{hole}</coordinates></LinearRing>"
             "</innerBoundaryIs>") if hole else ""
    return (f"<Polygon><tessellate>1</tessellate><outerBoundaryIs><LinearRing><coordinates>"
            f"{coordinates}</coordinates></LinearRing></outerBoundaryIs>{inner}</Polygon>")


def _kml(placemarks: str, root: str = '<kml xmlns="http://www.opengis.net/kml/2.2">') -> bytes:
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n{root}<Document><name>Korat missions</name>'
            f'<Style id="poly-000000"><PolyStyle><color>4d000000</color></PolyStyle></Style>'
            f"<Folder><name>Layer 1</name>{placemarks}</Folder></Document></kml>").encode()


# Shaped like a Google My Maps export: styles, folders, CDATA descriptions, tessellate, alt = 0.
MY_MAPS_KML = _kml(f"""
  <Placemark><name>อนุสาวรีย์ท้าวสุรนารี</name>
    <description><![CDATA[ย่าโม<br>check-in here]]></description>
    <styleUrl>#poly-000000</styleUrl>{_polygon(MONUMENT_SQUARE, MONUMENT_HOLE)}</Placemark>
  <Placemark><name>Two sites</name>
    <MultiGeometry>{_polygon(PHIMAI_SQUARE)}
      <MultiGeometry>{_polygon(MARKET_SQUARE)}
        <LineString><coordinates>102.1,14.9,0 102.2,14.9,0</coordinates></LineString>
      </MultiGeometry>
    </MultiGeometry></Placemark>
  <Placemark><name>Parking</name><Point><coordinates>102.1,14.97,0</coordinates></Point>
  </Placemark>""")


def _kmz(entries: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, body in entries.items():
            archive.writestr(name, body)
    return buffer.getvalue()


def _refusal(data: bytes, filename: str) -> DomainError:
    with pytest.raises(DomainError) as caught:
        import_fences(data, filename)
    error = caught.value
    assert THAI.search(error.message_th), "every refusal carries a Thai message"
    assert error.message_en
    return error


def _by_name(result: ImportResult) -> dict[str, object]:
    return {item.name: item for item in result.items}


# --- What imports ----------------------------------------------------------------------------


def test_my_maps_kml_imports_polygons_multigeometry_and_holes() -> None:
    result = import_fences(MY_MAPS_KML, "Korat missions.kml")

    assert [item.name for item in result.items] == ["อนุสาวรีย์ท้าวสุรนารี", "Two sites"]
    monument, sites = result.items
    assert monument.description == "ย่าโม<br>check-in here"
    assert monument.geometry.covers(Point(102.0995, 14.9750))
    assert not monument.geometry.covers(Point(102.1005, 14.9750)), "the hole is outside"
    assert not monument.geometry.has_z
    # The nested MultiGeometry's polygon is kept alongside the outer one.
    assert len(sites.geometry.geoms) == 2
    assert sites.geometry.covers(Point(102.495, 15.225))
    assert sites.geometry.covers(Point(102.115, 14.985))


def test_points_and_lines_are_dropped_with_a_warning_each() -> None:
    result = import_fences(MY_MAPS_KML, "Korat missions.kml")
    assert any("LineString dropped" in w and "Two sites" in w for w in result.warnings)
    assert any("Point dropped" in w and "Parking" in w for w in result.warnings)
    assert any("Parking" in w and "skipped" in w for w in result.warnings)


def test_kml_without_namespace_and_with_gx_extensions_imports() -> None:
    placemarks = (f"<Placemark><name>QGIS layer</name>{_polygon(MARKET_SQUARE)}</Placemark>"
                  "<Placemark><gx:Track><when>2024-01-01</when></gx:Track></Placemark>")
    root = '<kml xmlns:gx="http://www.google.com/kml/ext/2.2">'
    result = import_fences(_kml(placemarks, root), "export.kml")
    assert [item.name for item in result.items] == ["QGIS layer"]
    assert any("Track dropped" in w for w in result.warnings)


def test_self_intersecting_ring_is_repaired_with_a_warning() -> None:
    bowtie = "102.0,15.0 102.1,15.1 102.1,15.0 102.0,15.1 102.0,15.0"
    result = import_fences(_kml(f"<Placemark><name>Bowtie</name>{_polygon(bowtie)}</Placemark>"),
                           "bowtie.kml")
    (item,) = result.items
    assert item.geometry.is_valid
    assert len(item.geometry.geoms) == 2
    assert any("Bowtie" in w and "repaired" in w and "Self-intersection" in w
               for w in result.warnings)


def test_a_bad_polygon_is_dropped_and_the_rest_kept() -> None:
    unclosed = "102.0,15.0 102.1,15.0 102.1,15.1 102.0,15.1"
    placemarks = (f"<Placemark><name>Open</name>{_polygon(unclosed)}</Placemark>"
                  f"<Placemark><name>Good</name>{_polygon(MARKET_SQUARE)}</Placemark>")
    result = import_fences(_kml(placemarks), "mixed.kml")
    assert [item.name for item in result.items] == ["Good"]
    assert any("Open" in w and "not closed" in w for w in result.warnings)


def test_coordinates_with_spaces_after_commas_parse() -> None:
    spaced = "102.11, 14.98  102.12, 14.98\n102.12, 14.99 102.11, 14.99 102.11, 14.98"
    result = import_fences(_kml(f"<Placemark>{_polygon(spaced)}</Placemark>"), "spaced.kml")
    assert result.items[0].geometry.covers(Point(102.115, 14.985))
    assert result.items[0].name == "Placemark 1"


def test_kmz_reads_doc_kml_among_other_entries() -> None:
    kmz = _kmz({"images/icon.png": b"\x89PNG", "other.kml": b"<kml/>", "doc.kml": MY_MAPS_KML})
    result = import_fences(kmz, "Korat missions.kmz")
    assert len(result.items) == 2


def test_kmz_without_doc_kml_reads_the_first_kml() -> None:
    result = import_fences(_kmz({"layers/missions.kml": MY_MAPS_KML}), "missions.kmz")
    assert len(result.items) == 2


def test_real_district_geojson_imports_all_32_with_thai_names() -> None:
    data = (korat_dir() / "districts.geojson").read_bytes()
    result = import_fences(data, "districts.geojson")
    assert len(result.items) == 32
    names = {item.name for item in result.items}
    assert "เมืองนครราชสีมา" in names
    assert "พิมาย" in names
    assert result.warnings == []


def test_geojson_feature_and_geometry_collection() -> None:
    square = [[102.11, 14.98], [102.12, 14.98], [102.12, 14.99], [102.11, 14.99], [102.11, 14.98]]
    feature = (b'{"type":"Feature","properties":{"name":"Market","description":"night"},'
               b'"geometry":{"type":"GeometryCollection","geometries":['
               b'{"type":"Point","coordinates":[102.1,14.9]},'
               b'{"type":"Polygon","coordinates":[' + str(square).encode() + b"]}]}}")
    result = import_fences(feature, "market.json")
    (item,) = result.items
    assert (item.name, item.description) == ("Market", "night")
    assert item.geometry.covers(Point(102.115, 14.985))
    assert any("Point dropped" in w for w in result.warnings)


# --- What is refused ---------------------------------------------------------------------------


def test_xxe_is_refused_as_unsafe() -> None:
    xxe = (b'<?xml version="1.0"?>\n<!DOCTYPE kml [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n'
           b'<kml xmlns="http://www.opengis.net/kml/2.2"><Placemark><name>&xxe;</name>'
           + _polygon(MARKET_SQUARE).encode() + b"</Placemark></kml>")
    error = _refusal(xxe, "evil.kml")
    assert (error.code, error.status) == ("kml_unsafe", 422)
    assert "Unsafe XML refused" in error.message_en


def test_billion_laughs_is_refused_as_unsafe() -> None:
    entities = "".join(f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, 10))
    bomb = (f'<?xml version="1.0"?><!DOCTYPE kml [<!ENTITY lol0 "lol">{entities}]>'
            "<kml><Placemark><name>&lol9;</name></Placemark></kml>").encode()
    error = _refusal(bomb, "laughs.kml")
    assert (error.code, error.status) == ("kml_unsafe", 422)


def test_a_bare_doctype_is_refused_too() -> None:
    body = MY_MAPS_KML.split(b"\n", 1)[1]  # without the XML declaration
    error = _refusal(b'<!DOCTYPE kml SYSTEM "http://example.com/kml.dtd">' + body, "dtd.kml")
    assert error.code == "kml_unsafe"


@pytest.mark.parametrize(("data", "filename"), [
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "photo.kml"),
    (b"name,lat,lon\nmonument,14.97,102.10\n", "venues.csv"),
    (b'<?xml version="1.0"?><gpx version="1.1"><trk/></gpx>', "track.gpx"),
    (b'{"venues": []}', "venues.json"),
    (_kmz({"readme.txt": b"no kml here"}), "empty.kmz"),
    (b"PK\x03\x04 not really a zip", "broken.kmz"),
])
def test_files_that_are_not_kml_kmz_or_geojson_are_unsupported(data: bytes, filename: str
                                                               ) -> None:
    error = _refusal(data, filename)
    assert (error.code, error.status) == ("unsupported_file", 415)


def test_malformed_xml_says_where() -> None:
    error = _refusal(b"<kml><Placemark></kml>", "broken.kml")
    assert (error.code, error.status) == ("kml_malformed", 422)
    assert "line 1" in error.message_en


def test_malformed_json_is_refused() -> None:
    error = _refusal(b'{"type": "FeatureCollection", ', "cut.geojson")
    assert (error.code, error.status) == ("geojson_malformed", 422)


def test_oversized_file_is_refused_before_parsing() -> None:
    data = MY_MAPS_KML + b" " * (MAX_FILE_BYTES + 1 - len(MY_MAPS_KML))
    error = _refusal(data, "big.kml")
    assert (error.code, error.status) == ("file_too_large", 413)


def test_file_of_exactly_the_limit_is_accepted() -> None:
    data = MY_MAPS_KML + b" " * (MAX_FILE_BYTES - len(MY_MAPS_KML))
    assert len(import_fences(data, "padded.kml").items) == 2


def test_kmz_zip_bomb_is_refused() -> None:
    # Whitespace compresses ~1000:1, so 40 KB of zip unpacks past the 20 MB cap.
    bomb = _kmz({"doc.kml": MY_MAPS_KML + b" " * MAX_UNZIPPED_BYTES})
    assert len(bomb) < MAX_FILE_BYTES
    error = _refusal(bomb, "bomb.kmz")
    assert (error.code, error.status) == ("file_too_large", 413)


def test_kmz_with_too_many_entries_is_refused() -> None:
    entries = {f"images/{i}.png": b"x" for i in range(MAX_KMZ_ENTRIES)} | {"doc.kml": MY_MAPS_KML}
    error = _refusal(_kmz(entries), "many.kmz")
    assert (error.code, error.status) == ("file_too_large", 413)


@pytest.mark.parametrize(("data", "filename"), [
    (_kml("<Placemark><name>Only a pin</name><Point><coordinates>102.1,14.9</coordinates>"
          "</Point></Placemark>"), "pins.kml"),
    (_kml(""), "empty.kml"),
    (b'{"type":"FeatureCollection","features":[{"type":"Feature","properties":{},'
     b'"geometry":{"type":"LineString","coordinates":[[102.1,14.9],[102.2,14.9]]}}]}',
     "road.geojson"),
])
def test_a_file_without_polygons_is_refused(data: bytes, filename: str) -> None:
    error = _refusal(data, filename)
    assert (error.code, error.status) == ("no_polygons", 422)
