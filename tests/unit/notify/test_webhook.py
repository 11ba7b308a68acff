"""LINE webhook signature verification and event decoding."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import pytest

from kuekan.errors import DomainError
from kuekan.notify.webhook import compute_signature, parse_events, verify_signature

SECRET = "8c5a2b0f4e1d7c3a9b6e2f1d0c4a7b3e"
BODY = json.dumps({
    "destination": "Uxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
    "events": [
        {
            "type": "message",
            "message": {"type": "text", "id": "468789577898262530", "text": "เช็กอิน",
                        "quoteToken": "q3Plxr4AgKd", "emojis": []},
            "webhookEventId": "01H810YECXQQZ37VAXPF6H9E6T",
            "deliveryContext": {"isRedelivery": False},
            "timestamp": 1692251666727,
            "source": {"type": "user", "userId": "U4af4980629"},
            "replyToken": "38ef843bde154d9b91c21320ffd17a0f",
            "mode": "active",
        },
        {
            "type": "follow",
            "follow": {"isUnblocked": True},
            "webhookEventId": "01H810YECXQQZ37VAXPF6H9E6U",
            "deliveryContext": {"isRedelivery": True},
            "timestamp": 1692251666800,
            "source": {"type": "user", "userId": "U1234"},
            "replyToken": "aaaa",
            "mode": "active",
        },
        {
            "type": "someFutureEvent",
            "webhookEventId": "01H810YECXQQZ37VAXPF6H9E6V",
            "timestamp": 1692251666900,
            "brandNewField": {"nested": [1, 2, 3]},
        },
    ],
}, ensure_ascii=False).encode()


def test_signature_computed_with_the_channel_secret_verifies() -> None:
    assert verify_signature(SECRET, BODY, compute_signature(SECRET, BODY))


def test_signature_matches_an_independent_hmac_sha256() -> None:
    expected = base64.b64encode(hmac.new(SECRET.encode(), BODY, hashlib.sha256).digest()).decode()
    assert compute_signature(SECRET, BODY) == expected


def test_tampered_body_fails_verification() -> None:
    signature = compute_signature(SECRET, BODY)
    assert not verify_signature(SECRET, BODY.replace(b"U1234", b"U9999"), signature)


def test_wrong_secret_fails_verification() -> None:
    signature = compute_signature("another-channel-secret", BODY)
    assert not verify_signature(SECRET, BODY, signature)


@pytest.mark.parametrize(
    "signature", ["!!!not base64!!!", "", "abc", base64.b64encode(b"x").decode()]
)
def test_garbage_or_short_signature_fails_without_raising(signature: str) -> None:
    assert not verify_signature(SECRET, BODY, signature)


def test_empty_secret_never_verifies() -> None:
    assert not verify_signature("", BODY, compute_signature("", BODY))


def test_events_decode_with_unknown_types_and_fields_tolerated() -> None:
    message, follow, future = parse_events(BODY)

    assert message.type == "message"
    assert message.webhook_event_id == "01H810YECXQQZ37VAXPF6H9E6T"
    assert message.user_id == "U4af4980629"
    assert message.message is not None
    assert message.message.text == "เช็กอิน"
    assert message.reply_token == "38ef843bde154d9b91c21320ffd17a0f"
    assert not message.is_redelivery
    assert follow.is_redelivery
    assert follow.user_id == "U1234"
    assert future.type == "someFutureEvent"
    assert future.source is None
    assert not future.is_redelivery


@pytest.mark.parametrize("body", [b"not json", b'{"events": [{"type": "message"}]}', b"[]"])
def test_malformed_payload_is_a_400_domain_error(body: bytes) -> None:
    with pytest.raises(DomainError) as caught:
        parse_events(body)
    assert caught.value.status == 400
    assert caught.value.code == "invalid_webhook_payload"


def test_empty_event_list_is_valid() -> None:
    assert parse_events(b'{"destination": "U1", "events": []}') == []
