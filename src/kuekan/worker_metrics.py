"""Worker metrics: every job counted by outcome and timed, served on their own port.

Job functions and cron coroutines are wrapped once, when WorkerSettings is built, so a domain
adding a job gets metrics without doing anything. ``worker_metrics_port`` 0 turns the HTTP
endpoint off (tests run several workers on one machine).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Awaitable, Callable
from typing import Any

from prometheus_client import Counter, Histogram, start_http_server

JOBS_TOTAL = Counter("kuekan_jobs_total", "Worker jobs by outcome", ["job", "outcome"])
JOB_DURATION = Histogram("kuekan_job_duration_seconds", "Worker job duration", ["job"],
                         buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30,
                                  60, 300))

Job = Callable[..., Awaitable[Any]]


def instrument(fn: Job, name: str | None = None) -> Job:
    label = name or fn.__name__

    @functools.wraps(fn)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            result = await fn(*args, **kwargs)
        except BaseException:
            JOBS_TOTAL.labels(label, "failed").inc()
            raise
        finally:
            JOB_DURATION.labels(label).observe(time.perf_counter() - started)
        JOBS_TOTAL.labels(label, "ok").inc()
        return result

    return wrapper


def instrument_all(entries: list[Any]) -> list[Any]:
    """Wrap plain coroutines, ``arq.func`` Functions and CronJobs alike (same names kept)."""
    out: list[Any] = []
    for entry in entries:
        if hasattr(entry, "coroutine"):
            name = getattr(entry, "name", None)
            entry.coroutine = instrument(entry.coroutine, name)
            out.append(entry)
        else:
            out.append(instrument(entry))
    return out


_serving: set[int] = set()


def serve_metrics(port: int) -> None:
    """Serve /metrics on ``port``, once per process (a worker restarted by ``worker.run``
    after a lost Redis runs its startup again)."""
    if port and port not in _serving:
        start_http_server(port, addr="0.0.0.0")  # noqa: S104 - scraped inside the cluster
        _serving.add(port)
