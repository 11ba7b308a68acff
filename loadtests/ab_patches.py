"""Measurement only: ``kuekan.app.create_app`` with proposed hot-path changes switched on by
environment variables, for A/B runs without editing src/ (see docs/PERFORMANCE.md §6):

    KK_PATCH_NORESET=1 KK_PATCH_FUNDER=1 .venv/bin/python loadtests/bench_awards.py \\
        --n 6000 --c 64 --app ab_patches:create_app --app-dir loadtests

* KK_PATCH_NORESET=1  asyncpg pools without the per-release reset query
                      (the proposal: ``create_pool(..., reset=_keep_session)`` in kuekan/db/pool.py)
* KK_PATCH_FUNDER=1   the admin award reads only the funder's budget, cached 5 s per process,
                      instead of the full liability view (the proposal for ledger/routes.py)
"""

from __future__ import annotations

import os
import time
from typing import Any

import asyncpg
from litestar import Litestar

import kuekan.app as kuekan_app
import kuekan.ledger.repository as ledger_repo

if os.environ.get("KK_PATCH_NORESET") == "1":
    _create_pool = asyncpg.create_pool

    async def _keep_session(conn: asyncpg.Connection) -> None:
        """Sessions carry no state (only xact-scoped advisory locks): nothing to reset."""

    def _create_pool_no_reset(*args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("reset", _keep_session)
        return _create_pool(*args, **kwargs)

    asyncpg.create_pool = _create_pool_no_reset

if os.environ.get("KK_PATCH_FUNDER") == "1":
    _budget_cache: dict[int, tuple[float, Any]] = {}

    async def _funder_budget(db: Any, funder_id: int) -> Any:
        hit = _budget_cache.get(funder_id)
        if hit is not None and hit[0] > time.monotonic():
            return hit[1]
        row = await db.fetchrow("select id, budget_points from funders where id = $1", funder_id)
        _budget_cache[funder_id] = (time.monotonic() + 5.0, row)
        return row

    ledger_repo.get_funder = _funder_budget  # type: ignore[assignment]


def create_app() -> Litestar:
    return kuekan_app.create_app()
