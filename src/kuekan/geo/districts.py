"""Korat's 32 districts, the one lookup: which district a point or a shape lies in, and names.

The polygons ship with the package (``districts.geojson``); they are read and put in an STRtree
once per process, on first use (:func:`districts`). Analytics places check-ins that carry only
coordinates; notifications place a mission's fence to announce it in its district.
"""

from __future__ import annotations

import functools
import json
from typing import Any

from shapely.geometry import Point, shape
from shapely.geometry.base import BaseGeometry
from shapely.strtree import STRtree

from kuekan.kit.resources import korat_data_dir


class Districts:
    """The district polygons in an STRtree, with their GeoJSON features and names."""

    def __init__(self, features: list[dict[str, Any]]) -> None:
        self.features = features
        self.shapes = [shape(f["geometry"]) for f in features]
        self.codes = [str(f["properties"]["code"]) for f in features]
        self.tree = STRtree(self.shapes)
        self.names = {code: (str(f["properties"].get("name_th") or code),
                             str(f["properties"].get("name_en") or code))
                      for code, f in zip(self.codes, features, strict=True)}

    def at(self, lat: float, lon: float) -> str | None:
        """The district covering a WGS84 point, or None outside Korat."""
        return self._covering(Point(lon, lat))

    def of_shape(self, geometry: dict[str, Any]) -> str | None:
        """The district of a GeoJSON shape: the one covering a point inside it."""
        return self._covering(shape(geometry).representative_point())

    def name(self, code: str, lang: str) -> str:
        th, en = self.names.get(code, (code, code))
        return th if lang == "th" else en

    def _covering(self, point: BaseGeometry) -> str | None:
        for i in self.tree.query(point):
            if self.shapes[int(i)].covers(point):
                return self.codes[int(i)]
        return None


@functools.cache
def districts() -> Districts:
    """The process's district index, built from the shipped file on first use."""
    data = json.loads((korat_data_dir() / "districts.geojson").read_text(encoding="utf-8"))
    return Districts(data["features"])
