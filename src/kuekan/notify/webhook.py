"""LINE webhook: signature check on the raw body and tolerant event decoding.

The signature must be checked on the exact bytes received, before any JSON parsing, so the
route must hand over ``await request.body()`` and the ``x-line-signature`` header untouched.
LINE redelivers events it could not deliver; ``webhook_event_id`` is the idempotency key to
dedupe them, and ``delivery_context.is_redelivery`` says a redelivery happened.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac

import msgspec

from kuekan.errors import known

SIGNATURE_HEADER = "x-line-signature"
# LINE sends at most a few hundred KB; anything far larger is not LINE.
WEBHOOK_BODY_BYTES_MAX = 1_000_000


def compute_signature(channel_secret: str, body: bytes) -> str:
    """base64(HMAC-SHA256(channel secret, raw body)), as LINE puts in ``x-line-signature``."""
    digest = hmac.new(channel_secret.encode(), body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def verify_signature(channel_secret: str, body: bytes, signature_b64: str) -> bool:
    """Whether ``signature_b64`` is LINE's signature of ``body``; never raises on bad input."""
    if not channel_secret or not signature_b64:
        return False
    try:
        given = base64.b64decode(signature_b64, validate=True)
    except (binascii.Error, ValueError):
        return False
    expected = hmac.new(channel_secret.encode(), body, hashlib.sha256).digest()
    return hmac.compare_digest(given, expected)


class Source(msgspec.Struct, frozen=True, rename="camel"):
    type: str
    user_id: str | None = None
    group_id: str | None = None
    room_id: str | None = None


class DeliveryContext(msgspec.Struct, frozen=True, rename="camel"):
    is_redelivery: bool = False


class EventMessage(msgspec.Struct, frozen=True, rename="camel"):
    """The fields KueKan reads from text and location messages; others are ignored."""

    id: str
    type: str
    text: str | None = None
    quote_token: str | None = None
    latitude: float | None = None
    longitude: float | None = None
    address: str | None = None


class Postback(msgspec.Struct, frozen=True):
    data: str
    params: dict[str, str] | None = None


class WebhookEvent(msgspec.Struct, frozen=True, rename="camel"):
    """One webhook event; unknown event types and fields decode without error."""

    type: str
    timestamp: int
    webhook_event_id: str
    mode: str = "active"
    source: Source | None = None
    delivery_context: DeliveryContext = msgspec.field(default_factory=DeliveryContext)
    reply_token: str | None = None
    message: EventMessage | None = None
    postback: Postback | None = None

    @property
    def user_id(self) -> str | None:
        return self.source.user_id if self.source else None

    @property
    def is_redelivery(self) -> bool:
        return self.delivery_context.is_redelivery


class WebhookPayload(msgspec.Struct, frozen=True):
    destination: str = ""
    events: list[WebhookEvent] = msgspec.field(default_factory=list)


_decoder = msgspec.json.Decoder(WebhookPayload)


def parse_events(body: bytes) -> list[WebhookEvent]:
    """Decode the events of a verified webhook body; a malformed body is a 400 DomainError."""
    if len(body) > WEBHOOK_BODY_BYTES_MAX:
        raise known("webhook_body_too_large")
    try:
        return _decoder.decode(body).events
    except msgspec.DecodeError as exc:
        raise known("invalid_webhook_payload", en=f"Invalid LINE webhook payload: {exc}") from exc
