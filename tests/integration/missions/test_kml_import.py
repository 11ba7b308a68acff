"""KML/KMZ/GeoJSON import over HTTP: good files are stored; hostile or wrong files store nothing."""

from __future__ import annotations

import asyncpg
import httpx

from tests.conftest import World

MY_MAPS_KML = b"""<?xml version="1.0" encoding="UTF-8"?>
<kml xmlns="http://www.opengis.net/kml/2.2">
  <Document>
    <name>Korat venues</name>
    <Placemark>
      <name>Thao Suranari Monument</name>
      <description>Ya Mo</description>
      <Polygon><outerBoundaryIs><LinearRing><coordinates>
        102.0990,14.9740,0 102.1018,14.9740,0
        102.1018,14.9762,0 102.0990,14.9762,0 102.0990,14.9740,0
      </coordinates></LinearRing></outerBoundaryIs>
      <innerBoundaryIs><LinearRing><coordinates>
        102.1000,14.9748,0 102.1004,14.9748,0
        102.1004,14.9752,0 102.1000,14.9752,0 102.1000,14.9748,0
      </coordinates></LinearRing></innerBoundaryIs></Polygon>
    </Placemark>
    <Placemark>
      <name>Phimai two parts</name>
      <MultiGeometry>
        <Polygon><outerBoundaryIs><LinearRing><coordinates>
          102.4920,15.2200,0 102.4950,15.2200,0
          102.4950,15.2230,0 102.4920,15.2230,0 102.4920,15.2200,0
        </coordinates></LinearRing></outerBoundaryIs></Polygon>
        <Polygon><outerBoundaryIs><LinearRing><coordinates>
          102.5000,15.2300,0 102.5020,15.2300,0
          102.5020,15.2320,0 102.5000,15.2320,0 102.5000,15.2300,0
        </coordinates></LinearRing></outerBoundaryIs></Polygon>
        <Point><coordinates>102.49,15.22,0</coordinates></Point>
      </MultiGeometry>
    </Placemark>
  </Document>
</kml>
"""

XXE = b"""<?xml version="1.0"?>
<!DOCTYPE kml [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<kml xmlns="http://www.opengis.net/kml/2.2"><Placemark><name>&xxe;</name>
<Polygon><outerBoundaryIs><LinearRing><coordinates>
102,15,0 102.1,15,0 102.1,15.1,0 102,15,0</coordinates></LinearRing></outerBoundaryIs></Polygon>
</Placemark></kml>"""

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<kml xmlns="http://www.opengis.net/kml/2.2"><Placemark><name>&lol3;</name></Placemark></kml>"""


async def _count(pool: asyncpg.Pool) -> int:
    return int(await pool.fetchval("select count(*) from geofences"))


async def _upload(http: httpx.AsyncClient, admin: dict[str, str], name: str, data: bytes,
                  **params: str) -> httpx.Response:
    return await http.post("/admin/geofences/import", headers=admin, params=params,
                           files={"file": (name, data, "application/octet-stream")})


async def test_my_maps_kml_with_polygon_hole_and_multigeometry_imports(
        http: httpx.AsyncClient, world: World, pool: asyncpg.Pool) -> None:
    admin = await world.admin()
    before = await _count(pool)
    preview = await _upload(http, admin, "venues.kml", MY_MAPS_KML, dry_run="true")
    assert preview.status_code == 201, preview.text
    assert preview.json()["dry_run"] is True and await _count(pool) == before
    r = await _upload(http, admin, "venues.kml", MY_MAPS_KML, kind="venue")
    assert r.status_code == 201, r.text
    body = r.json()
    items = {i["name"]: i for i in body["items"]}
    assert set(items) == {"Thao Suranari Monument", "Phimai two parts"}
    assert await _count(pool) == before + 2
    monument = items["Thao Suranari Monument"]
    assert len(monument["geometry"]["coordinates"][0]) == 2  # shell + hole kept
    assert len(items["Phimai two parts"]["geometry"]["coordinates"]) == 2
    assert any("Point" in w or "point" in w for w in body["warnings"]), body["warnings"]
    fid = monument["id"]
    hole = await http.post(f"/admin/geofences/{fid}/test", headers=admin,
                           json={"lat": 14.9750, "lon": 102.1002, "accuracy_m": 1})
    assert hole.json()["decision"] == "outside"
    ring = await http.post(f"/admin/geofences/{fid}/test", headers=admin,
                           json={"lat": 14.9743, "lon": 102.0995, "accuracy_m": 5})
    assert ring.json()["decision"] == "inside"


async def test_hostile_and_wrong_files_are_refused_and_store_nothing(
        http: httpx.AsyncClient, world: World, pool: asyncpg.Pool) -> None:
    admin = await world.admin()
    before = await _count(pool)
    cases = [
        ("xxe.kml", XXE, 422, "kml_unsafe"),
        ("lol.kml", BILLION_LAUGHS, 422, "kml_unsafe"),
        ("photo.kml", b"\x89PNG\r\n\x1a\n" + b"\0" * 100, 415, "unsupported_file"),
        ("big.kml", b"<kml>" + b" " * (6 * 1024 * 1024) + b"</kml>", 413, "file_too_large"),
    ]
    for name, data, status, code in cases:
        r = await _upload(http, admin, name, data)
        assert r.status_code == status, (name, r.text[:300])
        assert r.json()["code"] == code, (name, r.json())
        assert r.json()["message_th"]
    assert await _count(pool) == before
    missing = await http.post("/admin/geofences/import", headers=admin,
                              files={"other": ("x.kml", MY_MAPS_KML, "text/xml")})
    assert missing.status_code == 422 and await _count(pool) == before


async def test_member_cannot_import(http: httpx.AsyncClient, world: World) -> None:
    _, member = await world.member()
    r = await _upload(http, member, "venues.kml", MY_MAPS_KML)
    assert r.status_code == 403
