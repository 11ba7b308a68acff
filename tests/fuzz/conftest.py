"""The fuzzer creates, holds, reverses and deletes whatever its random ids hit, so its tests run
after every other test of the session (they share the one API server and database)."""

from __future__ import annotations

from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    fuzz = [i for i in items if HERE in Path(str(i.path)).parents]
    rest = [i for i in items if HERE not in Path(str(i.path)).parents]
    items[:] = [*rest, *fuzz]
