"""SMS for OTPs through a generic JSON gateway, with the same shape as the LINE client.

Protocol (most Thai gateways offer an equivalent; adapt the body here if a vendor differs)::

    POST {base_url}/v1/messages
    Authorization: Bearer <api key>
    {"to": "+66812345678", "text": "...", "reference": "<idempotency key>"}
    → 202 {"id": "msg_..."}
    → 409 {"id": "<the original id>"} when ``reference`` was already accepted

A 409 on a known reference is read as "already sent" (``duplicate=True``), as for LINE.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import replace

import httpx

from kuekan.errors import known
from kuekan.notify.transport import (
    NotifyError,
    RetryingCaller,
    RetryPolicy,
    SendResult,
    build_buckets,
)

# One OTP is short; this bound stops a template bug from sending a 40-part SMS.
SMS_TEXT_CHARS_MAX = 320
SMS_REFERENCE_CHARS_MAX = 64
RATE_DEFAULTS: Mapping[str, tuple[float, int]] = {"messages": (50.0, 50)}

# Thai mobile numbers: 06x, 08x, 09x and eight more digits. Landlines (02, 03x, 04x, 05x, 07x)
# cannot receive SMS, so they are refused here rather than by the gateway.
_MOBILE_NATIONAL = re.compile(r"[689]\d{8}")
_SEPARATORS = re.compile(r"[\s\-().]")


class SmsError(NotifyError):
    """The SMS gateway refused or could not be reached; see :class:`NotifyError`."""


def normalize_msisdn(raw: str) -> str:
    """A Thai mobile number in E.164 (``+66812345678``); anything else is a 422 DomainError."""
    digits = _SEPARATORS.sub("", raw or "")
    if digits.startswith("+66"):
        national = digits[3:]
    elif digits.startswith("0"):
        national = digits[1:]
    else:
        national = ""
    if not _MOBILE_NATIONAL.fullmatch(national):
        raise known("invalid_msisdn")
    return f"+66{national}"


class SmsClient:
    """Async SMS gateway client; ``send`` satisfies :class:`~kuekan.notify.transport.Notifier`.

    Pass ``http`` to share one connection pool; the client then never closes it.
    """

    channel = "sms"

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        http: httpx.AsyncClient | None = None,
        max_retries: int = 3,
        backoff_base_s: float = 0.5,
        backoff_max_s: float = 10.0,
        rate_per_s: float | None = None,
        timeout_s: float = 10.0,
    ) -> None:
        if not api_key:
            raise ValueError("an SMS gateway API key is required")
        self.base_url = base_url.rstrip("/")
        self._owns_http = http is None
        self._http = http or httpx.AsyncClient(timeout=timeout_s)
        rates = None if rate_per_s is None else {"messages": rate_per_s}
        self._caller = RetryingCaller(
            service="sms",
            http=self._http,
            headers={"Authorization": f"Bearer {api_key}"},
            policy=RetryPolicy(max_retries, backoff_base_s, backoff_max_s),
            buckets=build_buckets(RATE_DEFAULTS, rates, None, wait_max_s=backoff_max_s),
            error=SmsError,
            request_id_header="x-request-id",
        )

    @property
    def rate_limited_total(self) -> int:
        return self._caller.rate_limited_total

    @property
    def retries_total(self) -> int:
        return self._caller.retries_total

    async def __aenter__(self) -> SmsClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    async def send(
        self, to: str, text: str, *, idempotency_key: str | None = None
    ) -> SendResult:
        """Send one SMS to a Thai mobile number; the key becomes the gateway ``reference``.

        Without a key one is generated before the first attempt and returned as
        ``result.retry_key`` (and on :class:`SmsError`), so the caller can resend safely.
        """
        msisdn = normalize_msisdn(to)
        if not text or len(text) > SMS_TEXT_CHARS_MAX:
            raise ValueError(f"SMS text must be 1..{SMS_TEXT_CHARS_MAX} chars, got {len(text)}")
        key = idempotency_key or str(uuid.uuid4())
        if len(key) > SMS_REFERENCE_CHARS_MAX:
            raise ValueError(f"idempotency_key longer than {SMS_REFERENCE_CHARS_MAX} chars")
        result = await self._caller.call(
            "messages", "POST", f"{self.base_url}/v1/messages",
            json={"to": msisdn, "text": text, "reference": key},
            key_header="Idempotency-Key", key=key,
        )
        message_id = result.body.get("id") if isinstance(result.body, dict) else None
        return replace(result, request_id=message_id or result.request_id)
