"""Geofences' refusal codes, registered in the one catalogue (:mod:`kuekan.errors`).

The package's ``__init__`` imports this module, so any use of the package registers them.
"""

from __future__ import annotations

from kuekan.errors import register

REFUSALS = register({
    "geofence_not_found": (404, "Geofence not found", "ไม่พบรั้วพิกัด"),
    "fence_not_found": (404, "No fence with this id is loaded", "ไม่พบรั้วพิกัดนี้ในหน่วยความจำ"),
    "geofence_code_taken": (409, "A geofence with this code exists", "รหัสรั้วพิกัดนี้ถูกใช้แล้ว"),
    "no_polygons": (422, "The file contains no polygon to use as a fence",
                    "ไม่พบรูปหลายเหลี่ยมในไฟล์ที่ใช้เป็นรั้วพิกัดได้"),
    "unsupported_file": (415, "The file is not a KML, KMZ or GeoJSON file",
                         "ไฟล์นี้ไม่ใช่ไฟล์ KML, KMZ หรือ GeoJSON"),
    "kml_unsafe": (422, "Unsafe XML refused: DOCTYPE, entities and external references are"
                   " not allowed",
                   "ปฏิเสธไฟล์ XML ที่ไม่ปลอดภัย: ไม่อนุญาต DOCTYPE, entity หรือการอ้างอิงภายนอก"),
    "kml_malformed": (422, "The KML is not well-formed XML", "ไฟล์ KML มีรูปแบบ XML ไม่ถูกต้อง"),
    "geojson_malformed": (422, "The GeoJSON is not valid JSON", "ไฟล์ GeoJSON ไม่ใช่ JSON ที่ถูกต้อง"),
    "too_many_fences": (422, "The file has too many shapes", "ไฟล์มีรูปร่างมากเกินไป"),
    "file_too_large": (413, "The file is too large", "ไฟล์มีขนาดใหญ่เกินไป"),
})
