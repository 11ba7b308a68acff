"""A fake generic SMS gateway: ``POST /v1/messages`` with Bearer key, 202 ``{id}``.

A repeated ``reference`` answers 409 with the original id, as the client expects. ``to`` must
be an E.164 Thai mobile number. Accepted messages are kept in ``messages``.

Run it by hand for an e2e session: ``python -m tests.fakes.sms_server`` prints its URL.
"""

from __future__ import annotations

import re
import threading
import uuid
from dataclasses import dataclass

from werkzeug import Response

from tests.fakes import FakeService, RecordedRequest, json_response, scripted_response

MESSAGES_PATH = "/v1/messages"
REQUEST_ID_HEADER = "x-request-id"
_THAI_MOBILE_E164 = re.compile(r"\+66[689]\d{8}")


@dataclass(frozen=True, slots=True)
class SmsMessage:
    id: str
    to: str
    text: str
    reference: str


class FakeSmsServer(FakeService):
    """The SMS gateway KueKan's ``SmsClient`` speaks to."""

    def __init__(self, api_key: str = "test-sms-key") -> None:
        super().__init__()
        self.api_key = api_key
        self._messages: list[SmsMessage] = []
        self._by_reference: dict[str, str] = {}

    @property
    def messages(self) -> list[SmsMessage]:
        """Messages the fake accepted, in order; a retried send appears once."""
        with self._lock:
            return list(self._messages)

    def _reset_service(self) -> None:
        self._messages = []
        self._by_reference = {}

    def handle(self, request: RecordedRequest) -> Response:
        if request.headers.get("authorization") != f"Bearer {self.api_key}":
            return json_response(401, {"error": "unauthorized"})
        if (request.method, request.path) != ("POST", MESSAGES_PATH):
            return json_response(404, {"error": "not_found"})
        try:
            payload = request.json
        except ValueError:
            payload = None
        if not isinstance(payload, dict):
            return json_response(400, {"error": "body must be a JSON object"})
        to, text, reference = payload.get("to"), payload.get("text"), payload.get("reference")
        if not (isinstance(to, str) and _THAI_MOBILE_E164.fullmatch(to)):
            return json_response(400, {"error": "invalid_recipient"})
        if not (isinstance(text, str) and text and isinstance(reference, str) and reference):
            return json_response(400, {"error": "text and reference are required"})
        if reference in self._by_reference:
            return json_response(409, {"error": "duplicate_reference",
                                       "id": self._by_reference[reference]})
        failure = self._take_failure(request.path)
        if failure is not None and not failure.accept:
            return scripted_response(failure, REQUEST_ID_HEADER)
        message = SmsMessage(id=f"msg_{uuid.uuid4().hex}", to=to, text=text, reference=reference)
        self._messages.append(message)
        self._by_reference[reference] = message.id
        if failure is not None:
            return scripted_response(failure, REQUEST_ID_HEADER)
        return json_response(202, {"id": message.id, "status": "queued"},
                             {REQUEST_ID_HEADER: str(uuid.uuid4())})


def main() -> None:
    """Serve until interrupted, for a manual or e2e run against a real worker."""
    with FakeSmsServer() as server:
        print(f"fake SMS gateway at {server.base_url} (key {server.api_key})")  # noqa: T201
        threading.Event().wait()


if __name__ == "__main__":
    main()
