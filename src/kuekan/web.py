"""HTTP helpers shared by every controller: state access, idempotency keys, responses."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request, Response

from kuekan import metrics
from kuekan.idempotency import Outcome, validate_key

PROBLEM_JSON = "application/problem+json"


def idempotency_key(request: Request[Any, Any, Any]) -> str:
    """The caller's Idempotency-Key, or a 400 ``idempotency_key_required``."""
    return validate_key(request.headers.get("idempotency-key"))


def outcome_response(outcome: Outcome) -> Response[Any]:
    """The stored or fresh response, with ``Idempotent-Replayed: true`` on a replay."""
    headers = {"Idempotent-Replayed": "true"} if outcome.replayed else {}
    if outcome.replayed:
        metrics.REPLAYS.inc()
    media = PROBLEM_JSON if outcome.status >= 400 else "application/json"
    return Response(content=outcome.body, status_code=outcome.status, headers=headers,
                    media_type=media)


def to_builtins(obj: Any) -> Any:
    return msgspec.to_builtins(obj)
