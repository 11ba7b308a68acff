"""Benchmark one geofence decision with Korat's 32 districts and 200 venue fences loaded.

Run from the repo root:  .venv/bin/python loadtests/bench_geofence.py [--decisions 100000]

Half the decisions are venue check-ins (a point within 300 m of a 60 m venue), half are district
check-ins (a point anywhere in the district's bounding box, so a mix of inside and outside).
Prints the mean from one tight loop, and p50/p99 from timing each call on its own.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
from pathlib import Path

from shapely.geometry import shape

from kuekan.geo.index import FenceIndex
from kuekan.geo.model import Fence, LocalFrame
from kuekan.kit.resources import korat_data_dir

VENUES = 200
SEED = 20_240_601


def districts_path() -> Path:
    return korat_data_dir() / "districts.geojson"


def venue(fence_id: int, lat: float, lon: float, half_side_m: float) -> Fence:
    frame = LocalFrame.at(lon, lat)
    corners = [(-1, -1), (1, -1), (1, 1), (-1, 1), (-1, -1)]
    ring = [frame.lonlat(sx * half_side_m, sy * half_side_m) for sx, sy in corners]
    return Fence(fence_id, f"venue {fence_id}", shape({"type": "Polygon", "coordinates": [ring]}),
                 30.0, 10.0)


def build(rng: random.Random) -> FenceIndex:
    features = json.loads(districts_path().read_text(encoding="utf-8"))["features"]
    districts = [Fence(int(f["properties"]["code"]), f["properties"]["name_en"],
                       shape(f["geometry"]), 50.0, 20.0) for f in features]
    # Venues clustered around Korat town, where most shops are.
    venues = [venue(10_000 + i, rng.uniform(14.90, 15.05), rng.uniform(102.00, 102.20), 30.0)
              for i in range(VENUES)]
    return FenceIndex.build([*districts, *venues], version=1)


def workload(index: FenceIndex, count: int, rng: random.Random
             ) -> list[tuple[int, float, float, float]]:
    district_ids = [i for i in range(3001, 3033) if index.get(i) is not None]
    calls = []
    for n in range(count):
        if n % 2:
            fence = index.get(rng.choice(district_ids))
            assert fence is not None
            minx, miny, maxx, maxy = fence.geometry.bounds
            lat, lon = rng.uniform(miny, maxy), rng.uniform(minx, maxx)
        else:
            fence = index.get(10_000 + rng.randrange(VENUES))
            assert fence is not None
            centre = fence.geometry.centroid
            lon, lat = LocalFrame.at(centre.x, centre.y).lonlat(rng.uniform(-300, 300),
                                                                rng.uniform(-300, 300))
        calls.append((fence.id, lat, lon, rng.uniform(3.0, 40.0)))
    return calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--decisions", type=int, default=100_000)
    args = parser.parse_args()
    rng = random.Random(SEED)
    started = time.perf_counter()
    index = build(rng)
    print(f"index: {len(index)} fences built in {(time.perf_counter() - started) * 1e3:.0f} ms")
    calls = workload(index, args.decisions, rng)
    decide = index.decide

    started = time.perf_counter()
    kinds = [decide(*call).decision for call in calls]
    mean_us = (time.perf_counter() - started) / len(calls) * 1e6

    samples_us = []
    for call in calls:
        t0 = time.perf_counter_ns()
        decide(*call)
        samples_us.append((time.perf_counter_ns() - t0) / 1e3)
    cuts = statistics.quantiles(samples_us, n=100)
    print(f"decide: {len(calls)} decisions, mean {mean_us:.1f} us/decision, "
          f"p50 {cuts[49]:.1f} us, p99 {cuts[98]:.1f} us, max {max(samples_us):.0f} us")
    print("outcomes:", {k: kinds.count(k) for k in sorted(set(kinds))})

    points = calls[: min(len(calls), 10_000)]
    started = time.perf_counter()
    for _, lat, lon, _ in points:
        index.candidates(lat, lon, 500.0)
    print(f"candidates(500 m): {(time.perf_counter() - started) / len(points) * 1e6:.1f} us/call")


if __name__ == "__main__":
    main()
