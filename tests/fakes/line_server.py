"""A fake LINE Messaging API: push, multicast, narrowcast, broadcast, quota, retry keys.

It checks what the real API checks and KueKan depends on: the Bearer token, 1..5 messages,
``to`` sizes (multicast ≤ 500), ``X-Line-Retry-Key`` being a UUID, and a key that was already
accepted answering 409 with ``x-line-accepted-request-id``. Every accepted send is kept in
``deliveries`` and counted against the monthly quota (one per recipient).

Run it by hand for an e2e session: ``python -m tests.fakes.line_server`` prints its URL.
"""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass
from typing import Any

from werkzeug import Response

from tests.fakes import (
    FakeService,
    RecordedRequest,
    is_uuid,
    json_response,
    scripted_response,
)

MESSAGE_PREFIX = "/v2/bot/message/"
SEND_ENDPOINTS = ("push", "multicast", "narrowcast", "broadcast")
MULTICAST_RECIPIENTS_MAX = 500
REQUEST_ID_HEADER = "x-line-request-id"


@dataclass(frozen=True, slots=True)
class Delivery:
    """A send the fake accepted: ``recipients`` is the user ids, or the audience size."""

    endpoint: str
    to: list[str]
    messages: list[dict[str, Any]]
    retry_key: str | None
    request_id: str
    recipients: int


class FakeLineServer(FakeService):
    """The LINE Messaging API, as far as KueKan uses it."""

    def __init__(
        self,
        channel_access_token: str = "test-line-token",  # noqa: S107 - a fake's token
        *,
        quota_limit: int | None = None,
        usage: int = 0,
        audience_size: int = 0,
    ) -> None:
        super().__init__()
        self.channel_access_token = channel_access_token
        self.quota_limit = quota_limit
        self.usage = usage
        # Recipients a narrowcast or broadcast reaches, for the quota count.
        self.audience_size = audience_size
        self._deliveries: list[Delivery] = []
        self._accepted_keys: dict[str, str] = {}

    @property
    def deliveries(self) -> list[Delivery]:
        """Sends the fake accepted, in order; a retried send appears once."""
        with self._lock:
            return list(self._deliveries)

    def _reset_service(self) -> None:
        self._deliveries = []
        self._accepted_keys = {}

    def handle(self, request: RecordedRequest) -> Response:
        if request.headers.get("authorization") != f"Bearer {self.channel_access_token}":
            return json_response(401, {"message": "Authentication failed. Confirm that the "
                                                  "access token in the authorization header "
                                                  "is valid."})
        name = request.path.removeprefix(MESSAGE_PREFIX)
        if request.method == "GET" and name == "quota":
            return self._quota()
        if request.method == "GET" and name == "quota/consumption":
            return json_response(200, {"totalUsage": self.usage})
        if request.method == "POST" and name in SEND_ENDPOINTS:
            return self._send(name, request)
        return json_response(404, {"message": "Not found"})

    def _quota(self) -> Response:
        if self.quota_limit is None:
            return json_response(200, {"type": "none"})
        return json_response(200, {"type": "limited", "value": self.quota_limit})

    def _send(self, endpoint: str, request: RecordedRequest) -> Response:
        problem = self._invalid(endpoint, request)
        if problem:
            return json_response(400, {"message": "The request body has 1 error(s)",
                                       "details": [{"message": problem}]})
        key = request.headers.get("x-line-retry-key")
        if key is not None and key in self._accepted_keys:
            return json_response(
                409,
                {"message": "The retry key is already accepted"},
                {REQUEST_ID_HEADER: str(uuid.uuid4()),
                 "x-line-accepted-request-id": self._accepted_keys[key]},
            )
        failure = self._take_failure(request.path)
        if failure is not None and not failure.accept:
            return scripted_response(failure, REQUEST_ID_HEADER)
        request_id = self._accept(endpoint, request.json, key)
        if failure is not None:
            return scripted_response(failure, REQUEST_ID_HEADER)
        body: dict[str, Any] = {}
        if endpoint == "push":
            body = {"sentMessages": [{"id": str(uuid.uuid4().int)[:18], "quoteToken": "q"}
                                     for _ in request.json["messages"]]}
        status = 202 if endpoint == "narrowcast" else 200
        return json_response(status, body, {REQUEST_ID_HEADER: request_id})

    def _invalid(self, endpoint: str, request: RecordedRequest) -> str | None:
        key = request.headers.get("x-line-retry-key")
        if key is not None and not is_uuid(key):
            return "X-Line-Retry-Key must be a UUID"
        try:
            payload = request.json
        except ValueError:
            return "body is not JSON"
        if not isinstance(payload, dict):
            return "body must be an object"
        messages = payload.get("messages")
        if not isinstance(messages, list) or not 1 <= len(messages) <= 5:
            return "messages must hold 1..5 messages"
        to = payload.get("to")
        if endpoint == "push" and not (isinstance(to, str) and to):
            return "to must be a user, group or room id"
        if endpoint == "multicast" and not (
            isinstance(to, list) and 1 <= len(to) <= MULTICAST_RECIPIENTS_MAX
        ):
            return f"to must hold 1..{MULTICAST_RECIPIENTS_MAX} user ids"
        return None

    def _accept(self, endpoint: str, payload: dict[str, Any], key: str | None) -> str:
        request_id = str(uuid.uuid4())
        if key is not None:
            self._accepted_keys[key] = request_id
        to = payload.get("to")
        recipients_list = [to] if isinstance(to, str) else list(to or [])
        recipients = len(recipients_list) if recipients_list else self.audience_size
        # LINE counts one message per recipient, however many bubbles a request carries.
        self.usage += recipients
        self._deliveries.append(Delivery(
            endpoint=endpoint, to=recipients_list, messages=payload["messages"],
            retry_key=key, request_id=request_id, recipients=recipients,
        ))
        return request_id


def main() -> None:
    """Serve until interrupted, for a manual or e2e run against a real worker."""
    with FakeLineServer() as server:
        print(f"fake LINE API at {server.base_url} (token {server.channel_access_token})")  # noqa: T201
        threading.Event().wait()


if __name__ == "__main__":
    main()
