"""Local fakes of outside HTTP services, real HTTP servers on 127.0.0.1 in a background thread.

Each fake records every request and can be scripted to fail the next N calls. They are built
on pytest-httpserver's ``HTTPServer`` (werkzeug), listen on an ephemeral port, and work as
context managers::

    with FakeLineServer() as line:
        client = LineClient(line.base_url, line.channel_access_token)

The base class here holds what the fakes share; each service lives in its own module.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Self

from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

# A fake keeps at most this many requests so a long load test cannot eat the memory.
RECORDED_REQUESTS_MAX = 100_000


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """One request as the fake received it; ``at_s`` is ``time.monotonic()`` on arrival."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    at_s: float

    @property
    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


@dataclass(slots=True)
class ScriptedFailure:
    """Answer ``status`` instead of the normal reply, for calls whose path matches.

    ``accept`` processes the request first (the message counts as sent) and only then answers
    the failure: a response lost on the way back, which is what retry keys exist for.
    """

    status: int
    remaining: int
    path: str | None = None
    retry_after: str | None = None
    body: Any = None
    accept: bool = False
    skip: int = 0


class _QuickStopServer(HTTPServer):
    """HTTPServer whose serve loop notices ``stop()`` within 10 ms instead of 500 ms."""

    def thread_target(self) -> None:
        assert self.server is not None
        self.server.serve_forever(poll_interval=0.01)


@dataclass(slots=True)
class _State:
    requests: list[RecordedRequest] = field(default_factory=list)
    failures: list[ScriptedFailure] = field(default_factory=list)


class FakeService:
    """A scriptable, recording HTTP fake. Subclasses implement :meth:`handle`."""

    def __init__(self) -> None:
        self._server = _QuickStopServer(host="127.0.0.1", port=0, threaded=True)
        self._server.expect_request(re.compile(r"^/.*")).respond_with_handler(self._dispatch)
        self._lock = threading.Lock()
        self._state = _State()

    # -- life cycle -------------------------------------------------------------------------
    def start(self) -> Self:
        self._server.start()
        return self

    def stop(self) -> None:
        if self._server.is_running():
            self._server.stop()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>`` without a trailing slash."""
        return self._server.url_for("/").rstrip("/")

    # -- scripting and inspection -----------------------------------------------------------
    def fail_next(
        self,
        n: int,
        status: int,
        *,
        path: str | None = None,
        retry_after: str | int | None = None,
        body: Any = None,
        accept: bool = False,
        skip: int = 0,
    ) -> None:
        """Answer ``n`` calls (to ``path`` if given) with ``status``, after ``skip`` normal ones."""
        failure = ScriptedFailure(
            status=status, remaining=n, path=path,
            retry_after=None if retry_after is None else str(retry_after),
            body=body if body is not None else {"message": f"scripted {status}"},
            accept=accept, skip=skip,
        )
        with self._lock:
            self._state.failures.append(failure)

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._state.requests)

    def requests_to(self, path: str) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path == path]

    def reset(self) -> None:
        """Forget recorded requests, scripted failures and service state."""
        with self._lock:
            self._state = _State()
            self._reset_service()

    # -- for subclasses ---------------------------------------------------------------------
    def _reset_service(self) -> None:
        """Clear the subclass's own state; called with the lock held."""

    def handle(self, request: RecordedRequest) -> Response:
        """Answer one request; called with the lock held."""
        raise NotImplementedError

    def _take_failure(self, path: str) -> ScriptedFailure | None:
        for failure in self._state.failures:
            if failure.remaining > 0 and failure.path in (None, path):
                if failure.skip > 0:
                    failure.skip -= 1
                    return None
                failure.remaining -= 1
                return failure
        return None

    def _dispatch(self, request: Request) -> Response:
        recorded = RecordedRequest(
            method=request.method,
            path=request.path,
            headers={k.lower(): v for k, v in request.headers.items()},
            body=request.get_data(),
            at_s=time.monotonic(),
        )
        with self._lock:
            if len(self._state.requests) < RECORDED_REQUESTS_MAX:
                self._state.requests.append(recorded)
            return self.handle(recorded)


def json_response(
    status: int, body: Any = None, headers: dict[str, str] | None = None
) -> Response:
    return Response(
        "" if body is None else json.dumps(body),
        status=status,
        headers=headers or {},
        content_type="application/json",
    )


def scripted_response(failure: ScriptedFailure, request_id_header: str) -> Response:
    headers = {request_id_header: str(uuid.uuid4())}
    if failure.retry_after is not None:
        headers["Retry-After"] = failure.retry_after
    return json_response(failure.status, failure.body, headers)


def is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True
