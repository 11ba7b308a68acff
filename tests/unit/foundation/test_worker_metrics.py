"""Worker jobs are counted and timed under their ARQ names."""

from __future__ import annotations

from typing import Any

import pytest
from arq import cron, func

from kuekan.worker import CRON, JOBS
from kuekan.worker_metrics import JOB_DURATION, JOBS_TOTAL, instrument_all


def _count(job: str, outcome: str) -> float:
    return JOBS_TOTAL.labels(job, outcome)._value.get()  # type: ignore[no-any-return]


async def test_jobs_are_counted_by_outcome_under_their_arq_name() -> None:
    async def good(ctx: dict[str, Any]) -> int:
        return 7

    async def bad(ctx: dict[str, Any]) -> None:
        raise RuntimeError("boom")

    wrapped_good, wrapped_bad, named, scheduled = instrument_all(
        [good, bad, func(good, name="renamed"), cron(good, second={0})])
    assert wrapped_good.__name__ == "good"
    assert await wrapped_good({}) == 7
    with pytest.raises(RuntimeError):
        await wrapped_bad({})
    assert await named.coroutine({}) == 7
    assert await scheduled.coroutine({}) == 7
    assert _count("good", "ok") == 1
    assert _count(scheduled.name, "ok") == 1  # crons keep ARQ's "cron:..." name
    assert _count("bad", "failed") == 1
    assert _count("renamed", "ok") == 1
    assert JOB_DURATION.labels("good")._sum.get() > 0


def test_every_registered_worker_job_is_instrumented() -> None:
    for entry in [*JOBS, *CRON]:
        fn = getattr(entry, "coroutine", entry)
        assert hasattr(fn, "__wrapped__"), entry
