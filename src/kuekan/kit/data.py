"""Where the real Korat boundaries live: ``KUEKAN_KORAT_DATA`` or ``../shared/data/korat``."""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[3]


def korat_data_dir() -> Path:
    env = os.environ.get("KUEKAN_KORAT_DATA")
    path = Path(env) if env else REPO_ROOT.parent / "shared" / "data" / "korat"
    if not (path / "districts.geojson").exists():
        raise FileNotFoundError(
            f"Korat boundaries not found at {path}; set KUEKAN_KORAT_DATA to the folder holding "
            "districts.geojson and subdistricts.geojson")
    return path
