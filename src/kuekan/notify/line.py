"""A thin async client for the LINE Messaging API's sending and quota endpoints.

Why not ``line-bot-sdk``: its async client does not take a shared ``httpx.AsyncClient``, has no
retries, and leaves the ``X-Line-Retry-Key`` life cycle (fix the key before the first attempt,
reuse it on every retry, read 409 as "already sent") to the caller, which is the part that matters
here. The protocol surface used is six endpoints, so a thin client is smaller than the glue.

Rate limits per endpoint default to LINE's published ones (push 2,000/s, multicast 200/s,
narrowcast and broadcast 60/hour, other endpoints 2,000/s).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
import msgspec

from kuekan.notify.transport import (
    NotifyError,
    RetryingCaller,
    RetryPolicy,
    SendResult,
    build_buckets,
)

LINE_API_BASE = "https://api.line.me"
MULTICAST_RECIPIENTS_MAX = 500
MESSAGES_PER_REQUEST_MAX = 5
RETRY_KEY_HEADER = "X-Line-Retry-Key"
REQUEST_ID_HEADER = "x-line-request-id"
ACCEPTED_REQUEST_ID_HEADER = "x-line-accepted-request-id"

# (rate_per_s, burst) per endpoint. Narrowcast and broadcast allow 60 an hour; a burst of 10 lets
# a disaster alert go to several district segments at once while staying far below that.
RATE_DEFAULTS: Mapping[str, tuple[float, int]] = {
    "push": (2_000.0, 2_000),
    "multicast": (200.0, 200),
    "narrowcast": (60 / 3600, 10),
    "broadcast": (60 / 3600, 10),
    "quota": (2_000.0, 100),
}

Message = Mapping[str, Any]


class LineError(NotifyError):
    """LINE refused or could not be reached; see :class:`NotifyError` for the fields."""


class LineMulticastError(LineError):
    """A multicast chunk failed after earlier chunks went out.

    Retrying the whole multicast with the same ``retry_key`` is safe: the chunks already sent
    answer 409 and come back as duplicates, only the rest is sent.
    """

    def __init__(self, cause: LineError, *, chunk_index: int, sent: list[SendResult]) -> None:
        super().__init__(
            cause.status, cause.body, endpoint=cause.endpoint, retry_key=cause.retry_key,
            attempts=cause.attempts, retry_after_s=cause.retry_after_s,
            retryable=cause.retryable,
        )
        self.chunk_index = chunk_index
        self.sent = sent


class Quota(msgspec.Struct, frozen=True):
    """The monthly message quota: ``type`` is ``"none"`` (unlimited) or ``"limited"``."""

    type: str
    value: int | None = None


class QuotaConsumption(msgspec.Struct, frozen=True, rename="camel"):
    total_usage: int


@dataclass(frozen=True, slots=True)
class MulticastResult:
    """One result per chunk of at most 500 recipients, in recipient order."""

    retry_key: str
    chunks: list[SendResult]

    @property
    def accepted(self) -> bool:
        return all(chunk.accepted for chunk in self.chunks)

    @property
    def duplicate_chunks(self) -> int:
        """Chunks LINE had already accepted under their retry key (sent by an earlier call)."""
        return sum(chunk.duplicate for chunk in self.chunks)


def new_retry_key() -> str:
    """A fresh ``X-Line-Retry-Key``; persist it before calling so a crash can resend safely."""
    return str(uuid.uuid4())


def chunk_retry_key(retry_key: str, chunk_index: int) -> str:
    """The retry key of one multicast chunk, derived so a caller persists only one key."""
    return str(uuid.uuid5(uuid.UUID(retry_key), f"multicast-chunk-{chunk_index}"))


# Namespace for turning a caller's non-UUID idempotency key (an outbox event id) into a UUID.
_KEY_NAMESPACE = uuid.UUID("6f1c1f0e-3a4b-5c6d-8e9f-0a1b2c3d4e5f")


def retry_key_for(idempotency_key: str) -> str:
    """The key itself if it is a UUID, else a UUID derived from it, the same every time."""
    try:
        return str(uuid.UUID(idempotency_key))
    except ValueError:
        return str(uuid.uuid5(_KEY_NAMESPACE, idempotency_key))


def _checked_key(retry_key: str | None) -> str:
    if retry_key is None:
        return new_retry_key()
    try:
        uuid.UUID(retry_key)
    except ValueError as exc:
        raise ValueError(f"LINE retry keys must be UUIDs, got {retry_key!r}") from exc
    return retry_key


def _checked_messages(messages: Sequence[Message]) -> list[Message]:
    if not 1 <= len(messages) <= MESSAGES_PER_REQUEST_MAX:
        raise ValueError(f"LINE takes 1..{MESSAGES_PER_REQUEST_MAX} messages, got {len(messages)}")
    return list(messages)


def _is_monthly_limit(body: Any) -> bool:
    # LINE answers 429 both for "too fast" and "monthly quota used up"; only the first heals.
    return isinstance(body, dict) and "monthly limit" in str(body.get("message", "")).lower()


class LineClient:
    """Async LINE Messaging API client: push, multicast, narrowcast, broadcast, quota.

    Pass ``http`` to share one connection pool; the client then never closes it. Every send
    takes an optional ``retry_key`` (a UUID); without one a key is generated before the first
    attempt and returned on the result, and on :class:`LineError` so the call can be resumed.
    """

    channel = "line"

    def __init__(
        self,
        base_url: str,
        channel_access_token: str,
        *,
        http: httpx.AsyncClient | None = None,
        max_retries: int = 4,
        backoff_base_s: float = 0.5,
        backoff_max_s: float = 30.0,
        rate_per_s: Mapping[str, float] | None = None,
        burst: Mapping[str, int] | None = None,
        timeout_s: float = 10.0,
    ) -> None:
        if not channel_access_token:
            raise ValueError("a LINE channel access token is required")
        self.base_url = base_url.rstrip("/")
        self._owns_http = http is None
        self._http = http or httpx.AsyncClient(timeout=timeout_s)
        policy = RetryPolicy(max_retries, backoff_base_s, backoff_max_s)
        self._caller = RetryingCaller(
            service="line",
            http=self._http,
            headers={"Authorization": f"Bearer {channel_access_token}"},
            policy=policy,
            buckets=build_buckets(RATE_DEFAULTS, rate_per_s, burst, wait_max_s=backoff_max_s),
            error=LineError,
            request_id_header=REQUEST_ID_HEADER,
            # On 409 LINE names the request accepted earlier; that id is the one to keep.
            duplicate_request_id_header=ACCEPTED_REQUEST_ID_HEADER,
            is_final_429=_is_monthly_limit,
        )

    @property
    def rate_limited_total(self) -> int:
        """How many 429 answers LINE gave this client, all endpoints together."""
        return self._caller.rate_limited_total

    @property
    def rate_limited_by_endpoint(self) -> Mapping[str, int]:
        return self._caller.rate_limited_by_endpoint

    @property
    def retries_total(self) -> int:
        return self._caller.retries_total

    async def __aenter__(self) -> LineClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    async def send(
        self, to: str, text: str, *, idempotency_key: str | None = None
    ) -> SendResult:
        """Push one text message (the :class:`~kuekan.notify.transport.Notifier` shape).

        ``idempotency_key`` may be any string (e.g. an outbox event id); a non-UUID is mapped
        to a UUID with :func:`retry_key_for`, so the same key always gives the same retry key.
        """
        key = None if idempotency_key is None else retry_key_for(idempotency_key)
        return await self.push(to, [{"type": "text", "text": text}], retry_key=key)

    async def push(
        self,
        to: str,
        messages: Sequence[Message],
        retry_key: str | None = None,
        *,
        notification_disabled: bool = False,
    ) -> SendResult:
        """Send to one user, group or room."""
        body = {
            "to": to,
            "messages": _checked_messages(messages),
            "notificationDisabled": notification_disabled,
        }
        return await self._post("push", body, _checked_key(retry_key))

    async def multicast(
        self,
        to: Sequence[str],
        messages: Sequence[Message],
        retry_key: str | None = None,
        *,
        notification_disabled: bool = False,
    ) -> MulticastResult:
        """Send to many users in chunks of at most 500, one request per chunk, in order.

        Duplicate user ids are dropped (first occurrence kept) so nobody gets it twice. Each
        chunk's retry key is derived from ``retry_key``; see :class:`LineMulticastError`.
        """
        recipients = list(dict.fromkeys(to))
        if not recipients:
            raise ValueError("multicast needs at least one recipient")
        checked = _checked_messages(messages)
        key = _checked_key(retry_key)
        sent: list[SendResult] = []
        for index, start in enumerate(range(0, len(recipients), MULTICAST_RECIPIENTS_MAX)):
            chunk = recipients[start : start + MULTICAST_RECIPIENTS_MAX]
            body = {
                "to": chunk,
                "messages": checked,
                "notificationDisabled": notification_disabled,
            }
            try:
                sent.append(await self._post("multicast", body, chunk_retry_key(key, index)))
            except LineError as exc:
                raise LineMulticastError(exc, chunk_index=index, sent=sent) from exc
        return MulticastResult(retry_key=key, chunks=sent)

    async def narrowcast(
        self,
        messages: Sequence[Message],
        *,
        recipient: Mapping[str, Any] | None = None,
        filter: Mapping[str, Any] | None = None,  # noqa: A002 - LINE's field name
        limit: Mapping[str, Any] | None = None,
        retry_key: str | None = None,
        notification_disabled: bool = False,
    ) -> SendResult:
        """Send to an audience (e.g. a district's audience group) and/or demographic filter.

        LINE answers 202 at once and delivers later; poll progress with ``result.request_id``.
        """
        body: dict[str, Any] = {
            "messages": _checked_messages(messages),
            "notificationDisabled": notification_disabled,
        }
        for name, value in (("recipient", recipient), ("filter", filter), ("limit", limit)):
            if value is not None:
                body[name] = dict(value)
        return await self._post("narrowcast", body, _checked_key(retry_key))

    async def broadcast(
        self,
        messages: Sequence[Message],
        *,
        retry_key: str | None = None,
        notification_disabled: bool = False,
    ) -> SendResult:
        """Send to every friend of the official account."""
        body = {
            "messages": _checked_messages(messages),
            "notificationDisabled": notification_disabled,
        }
        return await self._post("broadcast", body, _checked_key(retry_key))

    async def get_quota(self) -> Quota:
        result = await self._caller.call("quota", "GET", self._url("quota"))
        return msgspec.convert(result.body, Quota)

    async def get_quota_consumption(self) -> int:
        """Messages counted against this month's quota so far."""
        result = await self._caller.call("quota", "GET", self._url("quota/consumption"))
        return msgspec.convert(result.body, QuotaConsumption).total_usage

    async def check_quota(self, needed: int) -> bool:
        """Whether ``needed`` more messages fit this month (one per recipient, as LINE counts)."""
        if needed < 0:
            raise ValueError("needed must not be negative")
        quota = await self.get_quota()
        if quota.type == "none" or quota.value is None:
            return True
        return await self.get_quota_consumption() + needed <= quota.value

    def _url(self, path: str) -> str:
        return f"{self.base_url}/v2/bot/message/{path}"

    async def _post(self, endpoint: str, body: Mapping[str, Any], key: str) -> SendResult:
        return await self._caller.call(
            endpoint, "POST", self._url(endpoint), json=body, key_header=RETRY_KEY_HEADER, key=key,
        )
