"""SmsClient against the fake SMS gateway over real HTTP, and Thai MSISDN rules."""

from __future__ import annotations

import pytest

from kuekan.errors import DomainError
from kuekan.notify.sms import SmsClient, SmsError, normalize_msisdn
from kuekan.notify.transport import Notifier
from tests.fakes.sms_server import MESSAGES_PATH, FakeSmsServer

OTP = "รหัส OTP ของคุณคือ 482913 (KueKan)"


@pytest.mark.parametrize(
    ("raw", "e164"),
    [
        ("0812345678", "+66812345678"),
        ("081-234-5678", "+66812345678"),
        ("+66 91 234 5678", "+66912345678"),
        ("062 345 6789", "+66623456789"),
    ],
)
def test_thai_mobile_numbers_normalise_to_e164(raw: str, e164: str) -> None:
    assert normalize_msisdn(raw) == e164


@pytest.mark.parametrize(
    "raw",
    ["044123456", "+6644123456", "081234567", "08123456789", "+1 415 555 0100", "", "abc"],
)
def test_landlines_and_malformed_numbers_are_refused(raw: str) -> None:
    with pytest.raises(DomainError) as caught:
        normalize_msisdn(raw)
    assert caught.value.code == "invalid_msisdn"
    assert caught.value.status == 422
    assert caught.value.message_th


async def test_send_posts_e164_text_and_reference_and_returns_the_gateway_id(
    sms: SmsClient, sms_server: FakeSmsServer
) -> None:
    result = await sms.send("081-234-5678", OTP, idempotency_key="otp-7f3a")

    [request] = sms_server.requests_to(MESSAGES_PATH)
    assert request.headers["authorization"] == f"Bearer {sms_server.api_key}"
    assert request.json == {"to": "+66812345678", "text": OTP, "reference": "otp-7f3a"}
    assert result.status == 202
    assert result.request_id == sms_server.messages[0].id
    assert result.retry_key == "otp-7f3a"


async def test_send_retries_500_and_429_with_the_same_reference(
    sms: SmsClient, sms_server: FakeSmsServer
) -> None:
    sms_server.fail_next(1, 500)
    sms_server.fail_next(1, 429, retry_after=0)

    result = await sms.send("0812345678", OTP)

    references = {r.json["reference"] for r in sms_server.requests_to(MESSAGES_PATH)}
    assert len(sms_server.requests_to(MESSAGES_PATH)) == 3
    assert references == {result.retry_key}
    assert result.attempts == 3
    assert len(sms_server.messages) == 1
    assert sms.rate_limited_total == 1


async def test_lost_answer_then_retry_counts_as_sent_once(
    sms: SmsClient, sms_server: FakeSmsServer
) -> None:
    sms_server.fail_next(1, 503, accept=True)

    result = await sms.send("0812345678", OTP)

    assert result.duplicate
    assert result.request_id == sms_server.messages[0].id
    assert len(sms_server.messages) == 1


async def test_persistent_503_fails_after_max_retries(
    sms: SmsClient, sms_server: FakeSmsServer
) -> None:
    sms_server.fail_next(100, 503)

    with pytest.raises(SmsError) as caught:
        await sms.send("0812345678", OTP, idempotency_key="otp-1")

    assert len(sms_server.requests) == 4
    assert caught.value.status == 503
    assert caught.value.retry_key == "otp-1"
    assert sms_server.messages == []


async def test_invalid_number_is_refused_before_any_request(
    sms: SmsClient, sms_server: FakeSmsServer
) -> None:
    with pytest.raises(DomainError):
        await sms.send("044-123-456", OTP)

    assert sms_server.requests == []


async def test_wrong_api_key_is_not_retried(sms_server: FakeSmsServer) -> None:
    async with SmsClient(sms_server.base_url, "wrong", backoff_base_s=0.001,
                         backoff_max_s=0.01) as client:
        with pytest.raises(SmsError) as caught:
            await client.send("0812345678", OTP)

    assert caught.value.status == 401
    assert not caught.value.retryable
    assert len(sms_server.requests) == 1


async def test_sms_client_is_a_notifier(sms: SmsClient) -> None:
    notifier: Notifier = sms

    assert isinstance(sms, Notifier)
    assert notifier.channel == "sms"
