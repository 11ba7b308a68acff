"""ARQ jobs travel as JSON: a pickle written into Redis is refused, never run."""

from __future__ import annotations

import pickle
import uuid
from pathlib import Path

import msgspec
import pytest
from arq.connections import ArqRedis
from arq.jobs import deserialize_job

from kuekan.outbox.queue import ArqQueue, job_deserializer, job_serializer
from kuekan.worker import WorkerSettings


class _Touch:
    """Unpickling this creates a file: the proof that a pickle was executed."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (Path.touch, (str(self.path),))  # type: ignore[return-value]


async def test_enqueued_jobs_are_stored_as_json(arq_redis: ArqRedis) -> None:
    job_id = f"serializer-{uuid.uuid4().hex}"
    assert await ArqQueue(arq_redis).enqueue("handle_outbox_batch", [1, 2, 3], job_id=job_id)
    raw = await arq_redis.get(f"arq:job:{job_id}")
    await arq_redis.delete(f"arq:job:{job_id}")
    assert raw is not None
    stored = msgspec.json.decode(raw)
    assert stored["f"] == "handle_outbox_batch" and stored["a"] == [[1, 2, 3]]
    # The worker reads it back with the same deserializer.
    job = deserialize_job(raw, deserializer=WorkerSettings.job_deserializer)
    assert job.function == "handle_outbox_batch" and list(job.args) == [[1, 2, 3]]


def test_the_worker_uses_the_json_serializer_for_jobs_and_results() -> None:
    assert WorkerSettings.job_serializer is job_serializer
    assert WorkerSettings.job_deserializer is job_deserializer
    # A failed job's result (its exception) is stored as text.
    raw = job_serializer({"r": ValueError("boom"), "s": False})
    assert msgspec.json.decode(raw) == {"r": "ValueError: boom", "s": False}


def test_a_pickled_job_written_into_redis_is_refused_and_not_executed(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    payload = pickle.dumps({"t": 1, "f": "handle_outbox", "a": [_Touch(marker)], "k": {},
                            "et": 0})
    with pytest.raises(Exception):  # noqa: B017, PT011 - any refusal will do; it must not run
        deserialize_job(payload, deserializer=WorkerSettings.job_deserializer)
    assert not marker.exists()
    # The same bytes through pickle would have run it: the test's payload is a real exploit.
    pickle.loads(payload)  # noqa: S301
    assert marker.exists()
