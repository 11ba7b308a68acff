"""The HTTP machinery both outside-service adapters share: rate limit, retries, results.

LINE and the SMS gateway follow the same rules: every POST carries an idempotency key that is
fixed before the first attempt and reused on every retry; 2xx is success; 409 with a key means an
earlier attempt was already accepted (success, ``duplicate=True``); 429 and 5xx and transport
failures are retried with capped exponential backoff and jitter; any other 4xx is final.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import email.utils
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import httpx

from kuekan.kit import backoff
from kuekan.logging import get_logger

log = get_logger(__name__)

# Bodies kept on results and errors are cut to this size so a huge error page never lands in
# logs or job results.
BODY_KEEP_CHARS_MAX = 2_000
MAX_RETRIES_LIMIT = 20


@dataclass(frozen=True, slots=True)
class SendResult:
    """What one logical call to an outside service ended with.

    ``retry_key`` is the idempotency key the call used (caller-supplied or generated before the
    first attempt). ``duplicate`` is true when the service answered 409 to that key: an earlier
    attempt was accepted, so the message went out exactly once and must not be sent again.
    """

    accepted: bool
    status: int
    request_id: str | None
    retry_key: str | None
    attempts: int
    duplicate: bool = False
    body: Any = None


class NotifyError(Exception):
    """A call to an outside service that did not succeed.

    ``retryable`` tells a worker whether the same call (same ``retry_key``) may be tried again
    later; ``retry_after_s`` is the earliest sensible moment when the service or the local rate
    limit said so. ``status`` is ``None`` when no HTTP answer arrived (network failure or the
    local rate limit).
    """

    def __init__(
        self,
        status: int | None,
        body: Any,
        *,
        endpoint: str = "",
        retry_key: str | None = None,
        attempts: int = 0,
        retry_after_s: float | None = None,
        retryable: bool = False,
    ) -> None:
        super().__init__(f"{endpoint or 'request'} failed with status {status}: {body!r}")
        self.status = status
        self.body = body
        self.endpoint = endpoint
        self.retry_key = retry_key
        self.attempts = attempts
        self.retry_after_s = retry_after_s
        self.retryable = retryable


@runtime_checkable
class Notifier(Protocol):
    """One outbound channel a worker can send a plain text through (LINE push, SMS)."""

    @property
    def channel(self) -> str:
        """A short stable name: ``"line"`` or ``"sms"``."""
        ...

    async def send(
        self, to: str, text: str, *, idempotency_key: str | None = None
    ) -> SendResult:
        """Send ``text`` to one recipient; the same key on a later call never sends twice."""
        ...

    async def aclose(self) -> None:
        """Release the HTTP client if the adapter created it."""
        ...


class RateLimitWouldBlock(Exception):  # noqa: N818 - it is a signal, not a failure
    """The local token bucket would make the caller wait longer than allowed."""

    def __init__(self, wait_s: float) -> None:
        super().__init__(f"rate limit would block for {wait_s:.3f}s")
        self.wait_s = wait_s


class TokenBucket:
    """An asyncio token bucket: ``rate_per_s`` sustained, ``burst`` at once.

    Callers reserve a token without awaiting (the balance may go negative, which queues them in
    arrival order) and then sleep until their reservation is due. No lock is needed because the
    reservation happens between two awaits on one event loop.
    """

    def __init__(self, rate_per_s: float, burst: int, *, wait_max_s: float) -> None:
        if rate_per_s <= 0 or burst < 1:
            raise ValueError(f"a token bucket needs rate_per_s > 0 and burst >= 1, got "
                             f"{rate_per_s} and {burst}")
        self.rate_per_s = rate_per_s
        self.burst = burst
        self.wait_max_s = wait_max_s
        self._tokens = float(burst)
        self._updated_s = time.monotonic()

    def _refill(self) -> None:
        now_s = time.monotonic()
        self._tokens = min(self.burst, self._tokens + (now_s - self._updated_s) * self.rate_per_s)
        self._updated_s = now_s

    def reserve(self) -> float:
        """Take one token and return how long to wait before using it."""
        self._refill()
        wait_s = max(0.0, (1.0 - self._tokens) / self.rate_per_s)
        if wait_s > self.wait_max_s:
            raise RateLimitWouldBlock(wait_s)
        self._tokens -= 1.0
        return wait_s

    async def acquire(self) -> float:
        """Wait for one token; raise :class:`RateLimitWouldBlock` past ``wait_max_s``."""
        wait_s = self.reserve()
        if wait_s > 0:
            await asyncio.sleep(wait_s)
        return wait_s


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Bounds on retrying one call. Attempts in total are ``max_retries + 1``.

    ``backoff_max_s`` caps every single wait, including one a ``Retry-After`` asks for and a
    local rate-limit wait: when the service asks for longer, the call fails as retryable and the
    worker reschedules it instead of holding a job slot asleep.
    """

    max_retries: int = 4
    backoff_base_s: float = 0.5
    backoff_max_s: float = 30.0

    def __post_init__(self) -> None:
        if not 0 <= self.max_retries <= MAX_RETRIES_LIMIT:
            raise ValueError(f"max_retries must be within 0..{MAX_RETRIES_LIMIT}")
        if not 0 <= self.backoff_base_s <= self.backoff_max_s:
            raise ValueError("backoff needs 0 <= backoff_base_s <= backoff_max_s")

    def backoff_s(self, retry_number: int) -> float:
        """The delay before retry ``retry_number`` (1-based): :mod:`kuekan.kit.backoff`."""
        return backoff.backoff_s(retry_number, self.backoff_base_s, self.backoff_max_s)


def parse_retry_after(value: str | None, *, now: dt.datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP-date), or None."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return max(0.0, (when - (now or dt.datetime.now(dt.UTC))).total_seconds())


def response_body(response: httpx.Response) -> Any:
    """The JSON body if there is one, else the text cut to ``BODY_KEEP_CHARS_MAX``."""
    if not response.content:
        return None
    try:
        return response.json()
    except ValueError:
        return response.text[:BODY_KEEP_CHARS_MAX]


def build_buckets(
    defaults: Mapping[str, tuple[float, int]],
    rate_per_s: Mapping[str, float] | None,
    burst: Mapping[str, int] | None,
    *,
    wait_max_s: float,
) -> dict[str, TokenBucket]:
    """One token bucket per endpoint from defaults overridden by the caller's settings."""
    unknown = (set(rate_per_s or {}) | set(burst or {})) - set(defaults)
    if unknown:
        raise ValueError(f"unknown rate-limited endpoints: {sorted(unknown)}")
    buckets: dict[str, TokenBucket] = {}
    for endpoint, (default_rate, default_burst) in defaults.items():
        rate = (rate_per_s or {}).get(endpoint, default_rate)
        size = (burst or {}).get(endpoint)
        if size is None:
            size = default_burst if endpoint not in (rate_per_s or {}) else max(1, math.ceil(rate))
        buckets[endpoint] = TokenBucket(rate, size, wait_max_s=wait_max_s)
    return buckets


ErrorFactory = Callable[..., NotifyError]


class RetryingCaller:
    """Sends one request with the shared rules, counting what the metrics will want."""

    def __init__(
        self,
        *,
        service: str,
        http: httpx.AsyncClient,
        headers: Mapping[str, str],
        policy: RetryPolicy,
        buckets: Mapping[str, TokenBucket],
        error: ErrorFactory,
        request_id_header: str,
        duplicate_request_id_header: str | None = None,
        is_final_429: Callable[[Any], bool] | None = None,
    ) -> None:
        self.service = service
        self.http = http
        self.headers = dict(headers)
        self.policy = policy
        self.buckets = buckets
        self.error = error
        self.request_id_header = request_id_header
        self.duplicate_request_id_header = duplicate_request_id_header
        self.is_final_429 = is_final_429
        # Read by metrics: 429 answers per endpoint, and retries of any cause.
        self.rate_limited_by_endpoint: dict[str, int] = dict.fromkeys(buckets, 0)
        self.retries_total = 0

    @property
    def rate_limited_total(self) -> int:
        return sum(self.rate_limited_by_endpoint.values())

    async def call(
        self,
        endpoint: str,
        method: str,
        url: str,
        *,
        json: Any = None,
        key_header: str | None = None,
        key: str | None = None,
    ) -> SendResult:
        """Send until success, a final answer, or the retry budget runs out."""
        headers = dict(self.headers)
        if key_header and key:
            headers[key_header] = key
        attempts_max = self.policy.max_retries + 1
        for attempt in range(1, attempts_max + 1):
            await self._throttle(endpoint, key, attempt)
            try:
                response = await self.http.request(method, url, json=json, headers=headers)
            except httpx.TransportError as exc:
                failure: NotifyError = self.error(
                    None, repr(exc), endpoint=endpoint, retry_key=key, attempts=attempt,
                    retryable=True,
                )
                wait_s = self.policy.backoff_s(attempt)
            else:
                outcome = self._judge(endpoint, response, key, attempt)
                if isinstance(outcome, SendResult):
                    return outcome
                failure, wait_s = outcome
            # A wait beyond the cap would pin a worker slot asleep; the caller reschedules.
            too_long = wait_s > self.policy.backoff_max_s
            if attempt == attempts_max or not failure.retryable or too_long:
                raise failure
            self.retries_total += 1
            log.warning(
                "notify_retry", service=self.service, endpoint=endpoint, status=failure.status,
                attempt=attempt, wait_s=round(wait_s, 3), retry_key=key,
            )
            await asyncio.sleep(wait_s)
        raise AssertionError("unreachable: the loop returns or raises")  # pragma: no cover

    async def _throttle(self, endpoint: str, key: str | None, attempt: int) -> None:
        try:
            await self.buckets[endpoint].acquire()
        except RateLimitWouldBlock as exc:
            raise self.error(
                None, "local rate limit", endpoint=endpoint, retry_key=key, attempts=attempt - 1,
                retry_after_s=exc.wait_s, retryable=True,
            ) from exc

    def _judge(
        self, endpoint: str, response: httpx.Response, key: str | None, attempt: int
    ) -> SendResult | tuple[NotifyError, float]:
        status = response.status_code
        body = response_body(response)
        request_id = response.headers.get(self.request_id_header)
        if status == 409 and key and self.duplicate_request_id_header:
            request_id = response.headers.get(self.duplicate_request_id_header, request_id)
        if 200 <= status < 300 or (status == 409 and key):
            return SendResult(
                accepted=True, status=status, request_id=request_id, retry_key=key,
                attempts=attempt, duplicate=status == 409, body=body,
            )
        wait_s = self.policy.backoff_s(attempt)
        retry_after_s: float | None = None
        retryable = status >= 500
        if status == 429:
            self.rate_limited_by_endpoint[endpoint] += 1
            retry_after_s = parse_retry_after(response.headers.get("retry-after"))
            retryable = not (self.is_final_429 and self.is_final_429(body))
            if retry_after_s is not None:
                wait_s = max(wait_s, retry_after_s)
        failure = self.error(
            status, body, endpoint=endpoint, retry_key=key, attempts=attempt,
            retry_after_s=retry_after_s, retryable=retryable,
        )
        return failure, wait_s
