"""Where the files the package runs on live: config defaults, SQL, the Korat boundaries.

One way to find each: ``importlib.resources`` inside the installed package (a wheel carries them
as package data; an editable checkout reaches the top-level ``config/`` and ``sql/`` through the
package's ``config`` and ``sql`` links), or an explicit ``KUEKAN_*_DIR`` override. Never by
counting parent folders from ``__file__``, which in an installed package points into
site-packages. A lookup that finds nothing fails loudly, naming what it looked for.
"""

from __future__ import annotations

import os
from importlib.resources import files
from pathlib import Path


class ResourceMissingError(RuntimeError):
    """A file the service cannot run without is not where it was looked for."""


def resource_dir(env_var: str, relative: str, must_contain: str) -> Path:
    """The folder ``relative`` inside the package, or ``$env_var`` when set; it must hold
    ``must_contain`` (a file name or a glob pattern)."""
    override = os.environ.get(env_var)
    if override:
        path, origin = Path(override), f"{env_var}={override}"
    else:
        root = files("kuekan").joinpath(relative)
        if not isinstance(root, Path):  # e.g. a zipped package: not supported, say so
            raise ResourceMissingError(
                f"kuekan/{relative} is not a folder on disk ({root!r}); install the package "
                f"unzipped or set {env_var}")
        path, origin = root, f"package data kuekan/{relative}"
    if not path.is_dir() or not any(path.glob(must_contain)):
        raise ResourceMissingError(
            f"{must_contain} not found in {path} ({origin}); the package is incomplete or "
            f"{env_var} points at the wrong folder")
    return path


def config_dir() -> Path:
    """Config defaults: ``base.toml`` and ``<env>.toml`` (override: ``KUEKAN_CONFIG_DIR``)."""
    return resource_dir("KUEKAN_CONFIG_DIR", "config", "base.toml")


def migrations_dir() -> Path:
    """Versioned migrations ``NNNN_name.sql`` (override: ``KUEKAN_MIGRATIONS_DIR``)."""
    return resource_dir("KUEKAN_MIGRATIONS_DIR", "sql/migrations", "[0-9]*.sql")


def functions_dir() -> Path:
    """Repeatable SQL: the current body of every function (override: ``KUEKAN_FUNCTIONS_DIR``)."""
    return resource_dir("KUEKAN_FUNCTIONS_DIR", "sql/functions", "*.sql")


def korat_data_dir() -> Path:
    """Korat's subdistrict and district boundaries (override: ``KUEKAN_KORAT_DATA``)."""
    return resource_dir("KUEKAN_KORAT_DATA", "data/korat", "districts.geojson")
