"""Import fences from KML, KMZ or GeoJSON files (Google My Maps and QGIS exports).

The file comes from a user, so everything is bounded: raw size, unzipped size, zip entries,
placemarks, nesting depth, vertices. XML is parsed by defusedxml with DTDs refused outright, so
entity expansion (billion laughs) and external references (XXE) never reach the parser. Only
polygonal geometry is kept; everything else is dropped with a warning the preview can show.
"""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from xml.etree.ElementTree import Element, ParseError

import defusedxml.ElementTree as SafeET
import msgspec
from defusedxml import DefusedXmlException
from shapely.geometry import MultiPolygon, Polygon

from kuekan.errors import DomainError, invalid, known
from kuekan.geo.model import (
    MAX_NAME_CHARS,
    LonLat,
    geojson_polygons,
    polygon_from_rings,
    repair_polygonal,
)

MAX_FILE_BYTES = 5 * 1024 * 1024
MAX_UNZIPPED_BYTES = 20 * 1024 * 1024
MAX_KMZ_ENTRIES = 100
MAX_ITEMS = 2_000
MAX_NESTING = 16
MAX_WARNINGS = 200
MAX_DESCRIPTION_CHARS = 2_000

_GEOMETRY_TAGS = frozenset(
    {"Point", "LineString", "LinearRing", "Polygon", "MultiGeometry", "Model", "Track",
     "MultiTrack"}
)
_GEOJSON_NAME_KEYS = ("name", "Name", "NAME", "name_th", "T_Name_T", "A_Name_T", "name_en")
# "lon, lat" with spaces after commas appears in hand-edited files; glue tuples back together.
_COMMA_SPACES = re.compile(r"\s*,\s*")


@dataclass(frozen=True, slots=True)
class ParsedFence:
    """One importable shape: a valid MultiPolygon in WGS84 lon/lat, not yet a Fence."""

    name: str
    geometry: MultiPolygon
    description: str


@dataclass(frozen=True, slots=True)
class ImportResult:
    items: list[ParsedFence]
    warnings: list[str]


def import_fences(data: bytes, filename: str) -> ImportResult:
    """Parse an uploaded KML, KMZ or GeoJSON file into fences to preview.

    Raises DomainError: ``file_too_large`` (413), ``unsupported_file`` (415), ``kml_unsafe``,
    ``kml_malformed``, ``geojson_malformed``, ``too_many_fences`` or ``no_polygons`` (422).
    """
    if len(data) > MAX_FILE_BYTES:
        raise _too_large(f"the file is larger than {MAX_FILE_BYTES // 1024 // 1024} MB",
                         f"ไฟล์มีขนาดเกิน {MAX_FILE_BYTES // 1024 // 1024} MB")
    kind = _sniff(data, filename)
    warnings: list[str] = []
    if kind == "kmz":
        items = _parse_kml(_unzip_kml(data, filename), warnings)
    elif kind == "kml":
        items = _parse_kml(data, warnings)
    else:
        items = _parse_geojson(data, warnings)
    if not items:
        raise known("no_polygons")
    return ImportResult(items, _capped(warnings))


def _sniff(data: bytes, filename: str) -> str:
    # Trust the bytes, not the extension: a renamed file must not pick the wrong parser.
    if data.startswith(b"PK\x03\x04"):
        return "kmz"
    head = data[:1024].removeprefix(b"\xef\xbb\xbf").lstrip()
    if head.startswith(b"<"):
        return "kml"
    if head.startswith(b"{"):
        return "geojson"
    raise _unsupported(filename)


def _unzip_kml(data: bytes, filename: str) -> bytes:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            entries = archive.infolist()
            if len(entries) > MAX_KMZ_ENTRIES:
                raise _too_large(f"the KMZ has more than {MAX_KMZ_ENTRIES} entries",
                                 f"ไฟล์ KMZ มีไฟล์ข้างในเกิน {MAX_KMZ_ENTRIES} ไฟล์")
            return _read_capped(archive, _pick_kml(entries, filename))
    except (zipfile.BadZipFile, NotImplementedError, RuntimeError, EOFError) as exc:
        # Corrupt, encrypted or exotically compressed archives are not something we can read.
        raise _unsupported(filename) from exc


def _pick_kml(entries: list[zipfile.ZipInfo], filename: str) -> zipfile.ZipInfo:
    kml_entries = [e for e in entries if e.filename.lower().endswith(".kml") and not e.is_dir()]
    for entry in kml_entries:
        if entry.filename.lower() == "doc.kml":
            return entry
    if not kml_entries:
        raise _unsupported(filename)
    return kml_entries[0]


def _read_capped(archive: zipfile.ZipFile, entry: zipfile.ZipInfo) -> bytes:
    # The declared size can lie, so the read itself is capped as well (zip bombs).
    message = (f"the KML inside the KMZ is larger than {MAX_UNZIPPED_BYTES // 1024 // 1024} MB",
               f"ไฟล์ KML ในไฟล์ KMZ มีขนาดเกิน {MAX_UNZIPPED_BYTES // 1024 // 1024} MB")
    if entry.file_size > MAX_UNZIPPED_BYTES:
        raise _too_large(*message)
    with archive.open(entry) as stream:
        body = stream.read(MAX_UNZIPPED_BYTES + 1)
    if len(body) > MAX_UNZIPPED_BYTES:
        raise _too_large(*message)
    return body


# --- KML --------------------------------------------------------------------------------------


def _parse_kml(data: bytes, warnings: list[str]) -> list[ParsedFence]:
    root = _parse_xml(data)
    if _local(root.tag) != "kml":
        raise known("unsupported_file", en="The XML file is not KML", th="ไฟล์ XML นี้ไม่ใช่ไฟล์ KML")
    placemarks = [el for el in root.iter() if _local(el.tag) == "Placemark"]
    _check_item_count(len(placemarks))
    items = (_placemark(pm, i + 1, warnings) for i, pm in enumerate(placemarks))
    return [item for item in items if item is not None]


def _parse_xml(data: bytes) -> Element:
    try:
        root: Element = SafeET.fromstring(
            data, forbid_dtd=True, forbid_entities=True, forbid_external=True
        )
    except DefusedXmlException as exc:
        raise known("kml_unsafe") from exc
    except ParseError as exc:
        line, column = exc.position
        raise known(
            "kml_malformed", en=f"The KML is not well-formed XML (line {line}, column {column})",
            th=f"ไฟล์ KML มีรูปแบบ XML ไม่ถูกต้อง (บรรทัด {line} คอลัมน์ {column})",
        ) from exc
    return root


def _placemark(placemark: Element, number: int, warnings: list[str]) -> ParsedFence | None:
    name = _clip(_child_text(placemark, "name"), MAX_NAME_CHARS) or f"Placemark {number}"
    label = f"Placemark {number} '{name}'"
    polygons: list[Polygon] = []
    for geometry in _children(placemark, _GEOMETRY_TAGS):
        _collect(geometry, label, polygons, warnings, depth=0)
    if not polygons:
        warnings.append(f"{label}: no polygon, skipped")
        return None
    return _to_fence(name, _child_text(placemark, "description"), polygons, label, warnings)


def _collect(element: Element, label: str, polygons: list[Polygon], warnings: list[str],
             depth: int) -> None:
    """Gather the Polygons under a geometry element, warning about everything else."""
    tag = _local(element.tag)
    if tag == "Polygon":
        try:
            polygons.append(_kml_polygon(element, label))
        except DomainError as exc:
            warnings.append(f"{label}: polygon dropped: {exc.message_en}")
    elif tag != "MultiGeometry":
        warnings.append(f"{label}: {tag} dropped (only polygons become fences)")
    elif depth >= MAX_NESTING:
        warnings.append(f"{label}: MultiGeometry nested deeper than {MAX_NESTING}, rest dropped")
    else:
        for child in _children(element, _GEOMETRY_TAGS):
            _collect(child, label, polygons, warnings, depth + 1)


def _kml_polygon(polygon: Element, label: str) -> Polygon:
    shells = [_ring(r) for b in _children(polygon, {"outerBoundaryIs"}) for r in _rings(b)]
    holes = [_ring(r) for b in _children(polygon, {"innerBoundaryIs"}) for r in _rings(b)]
    if len(shells) != 1:
        raise invalid(f"a Polygon needs exactly one outer ring, got {len(shells)}",
                           "Polygon ต้องมีวงนอกหนึ่งวงพอดี")
    return polygon_from_rings(shells[0], holes, label)


def _rings(boundary: Element) -> Iterator[Element]:
    # innerBoundaryIs holds one LinearRing per the spec, but some writers put several in one.
    return _children(boundary, {"LinearRing"})


def _ring(linear_ring: Element) -> list[LonLat]:
    text = _child_text(linear_ring, "coordinates")
    ring: list[LonLat] = []
    for chunk in _COMMA_SPACES.sub(",", text).split():
        values = chunk.split(",")
        if len(values) not in (2, 3):
            raise invalid(f"bad coordinate tuple '{chunk[:40]}' (expected lon,lat[,alt])",
                               f"พิกัด '{chunk[:40]}' ไม่ถูกต้อง (ต้องเป็น ลองจิจูด,ละติจูด[,ความสูง])")
        ring.append(_lonlat(values, chunk))
    return ring


def _lonlat(values: list[str], chunk: str) -> LonLat:
    try:
        lon, lat = float(values[0]), float(values[1])
    except ValueError as exc:
        raise invalid(f"bad number in coordinate '{chunk[:40]}'",
                           f"ตัวเลขในพิกัด '{chunk[:40]}' ไม่ถูกต้อง") from exc
    return lon, lat  # NaN/inf fail the range check in check_ring


# --- GeoJSON ----------------------------------------------------------------------------------


def _parse_geojson(data: bytes, warnings: list[str]) -> list[ParsedFence]:
    try:
        document = msgspec.json.decode(data)
    except msgspec.DecodeError as exc:
        raise known("geojson_malformed", en=f"The GeoJSON is not valid JSON: {exc}") from exc
    features = _features(document)
    _check_item_count(len(features))
    items = (_feature(f, i + 1, warnings) for i, f in enumerate(features))
    return [item for item in items if item is not None]


def _features(document: Any) -> list[Any]:
    kind = document.get("type") if isinstance(document, dict) else None
    if kind == "FeatureCollection" and isinstance(document.get("features"), list):
        return list(document["features"])
    if kind == "Feature":
        return [document]
    if kind in ("Polygon", "MultiPolygon", "GeometryCollection"):
        return [{"type": "Feature", "geometry": document, "properties": {}}]
    raise known("unsupported_file", en="The JSON file is not GeoJSON",
                th="ไฟล์ JSON นี้ไม่ใช่ GeoJSON")


def _feature(feature: Any, number: int, warnings: list[str]) -> ParsedFence | None:
    properties = feature.get("properties") if isinstance(feature, dict) else None
    properties = properties if isinstance(properties, dict) else {}
    name = _clip(_property_name(properties), MAX_NAME_CHARS) or f"Feature {number}"
    label = f"Feature {number} '{name}'"
    polygons: list[Polygon] = []
    geometry = feature.get("geometry") if isinstance(feature, dict) else None
    _collect_geojson(geometry, label, polygons, warnings, depth=0)
    if not polygons:
        warnings.append(f"{label}: no polygon, skipped")
        return None
    description = properties.get("description")
    description = description if isinstance(description, str) else ""
    return _to_fence(name, description, polygons, label, warnings)


def _collect_geojson(geometry: Any, label: str, polygons: list[Polygon], warnings: list[str],
                     depth: int) -> None:
    kind = geometry.get("type") if isinstance(geometry, dict) else None
    if kind in ("Polygon", "MultiPolygon"):
        try:
            polygons.extend(geojson_polygons(geometry, label))
        except DomainError as exc:
            warnings.append(f"{label}: polygon dropped: {exc.message_en}")
    elif kind != "GeometryCollection" or not isinstance(geometry.get("geometries"), list):
        warnings.append(f"{label}: {kind or 'missing geometry'} dropped (only polygons are kept)")
    elif depth >= MAX_NESTING:
        warnings.append(f"{label}: GeometryCollection nested deeper than {MAX_NESTING}, dropped")
    else:
        for child in geometry["geometries"]:
            _collect_geojson(child, label, polygons, warnings, depth + 1)


def _property_name(properties: dict[str, Any]) -> str:
    for key in _GEOJSON_NAME_KEYS:
        value = properties.get(key)
        if isinstance(value, str) and value.strip():
            return value
    return ""


# --- Shared helpers ---------------------------------------------------------------------------


def _to_fence(name: str, description: str, polygons: list[Polygon], label: str,
              warnings: list[str]) -> ParsedFence | None:
    try:
        geometry, repairs = repair_polygonal(polygons)
    except DomainError as exc:
        warnings.append(f"{label}: skipped: {exc.message_en}")
        return None
    warnings.extend(f"{label}: invalid geometry repaired ({reason})" for reason in repairs)
    return ParsedFence(name, geometry, _clip(description, MAX_DESCRIPTION_CHARS))


def _local(tag: str) -> str:
    # Ignore namespaces: KML 2.2, older Google namespaces, gx: extensions and none all occur.
    return tag.rpartition("}")[2]


def _children(element: Element, names: set[str] | frozenset[str]) -> Iterator[Element]:
    return (child for child in element if _local(child.tag) in names)


def _child_text(element: Element, name: str) -> str:
    child = next(_children(element, {name}), None)
    return (child.text or "").strip() if child is not None else ""


def _clip(text: str, limit: int) -> str:
    return text.strip()[:limit]


def _capped(warnings: list[str]) -> list[str]:
    if len(warnings) <= MAX_WARNINGS:
        return warnings
    return [*warnings[:MAX_WARNINGS], f"... and {len(warnings) - MAX_WARNINGS} more warnings"]


def _check_item_count(count: int) -> None:
    if count > MAX_ITEMS:
        raise known("too_many_fences", en=f"The file has {count} shapes, over {MAX_ITEMS}",
                    th=f"ไฟล์มีรูปร่าง {count} รูป เกินกว่า {MAX_ITEMS} รูป")


def _too_large(message_en: str, message_th: str) -> DomainError:
    return known("file_too_large", en=message_en, th=message_th)


def _unsupported(filename: str) -> DomainError:
    return known(
        "unsupported_file", en=f"'{filename[:100]}' is not a KML, KMZ or GeoJSON file",
        th=f"ไฟล์ '{filename[:100]}' ไม่ใช่ไฟล์ KML, KMZ หรือ GeoJSON",
    )
