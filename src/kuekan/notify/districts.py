"""Which Korat district a mission's geofence lies in, to announce it to that district's members.

A district fence (code ``district:<code>``) names its district; any other fence is placed by a
point inside its shape against the shipped district polygons (built once per process).
"""

from __future__ import annotations

import json
from typing import Any

from shapely.geometry import shape
from shapely.strtree import STRtree

from kuekan.kit.data import korat_data_dir

DISTRICT_FENCE_PREFIX = "district:"


class DistrictLocator:
    def __init__(self) -> None:
        data = json.loads((korat_data_dir() / "districts.geojson").read_text(encoding="utf-8"))
        features: list[dict[str, Any]] = data["features"]
        self.shapes = [shape(f["geometry"]) for f in features]
        self.props = [f["properties"] for f in features]
        self.tree = STRtree(self.shapes)
        self.names = {str(p["code"]): (str(p.get("name_th") or p["code"]),
                                       str(p.get("name_en") or p["code"])) for p in self.props}

    def locate(self, geometry: dict[str, Any]) -> str | None:
        point = shape(geometry).representative_point()
        for i in self.tree.query(point):
            if self.shapes[int(i)].covers(point):
                return str(self.props[int(i)]["code"])
        return None

    def name(self, code: str, lang: str) -> str:
        th, en = self.names.get(code, (code, code))
        return th if lang == "th" else en


_LOCATOR: DistrictLocator | None = None


def locator() -> DistrictLocator:
    global _LOCATOR  # noqa: PLW0603 - built once per process from a shipped file
    if _LOCATOR is None:
        _LOCATOR = DistrictLocator()
    return _LOCATOR


def fence_district(geofence_code: str | None, geometry: Any) -> str | None:
    if geofence_code and geofence_code.startswith(DISTRICT_FENCE_PREFIX):
        return geofence_code.removeprefix(DISTRICT_FENCE_PREFIX)
    if isinstance(geometry, dict):
        try:
            return locator().locate(geometry)
        except (ValueError, TypeError, KeyError):
            return None
    return None
