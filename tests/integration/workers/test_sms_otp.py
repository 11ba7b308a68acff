"""Phone OTP end to end: the API, the outbox job, delivery to the fake SMS gateway over HTTP."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from typing import Any

import asyncpg
import httpx
import pytest

from kuekan.notify import jobs as notify_jobs
from kuekan.notify.sms import SmsClient
from kuekan.outbox.jobs import handle_outbox
from tests.conftest import World
from tests.fakes.sms_server import MESSAGES_PATH, FakeSmsServer


@pytest.fixture
def sms_server() -> Iterator[FakeSmsServer]:
    with FakeSmsServer() as server:
        yield server


@pytest.fixture
async def sms(sms_server: FakeSmsServer) -> AsyncIterator[SmsClient]:
    async with SmsClient(sms_server.base_url, sms_server.api_key, max_retries=3,
                         backoff_base_s=0.001, backoff_max_s=0.01) as client:
        yield client


async def test_otp_is_sent_once_retried_on_500_and_verifies(
        ctx: dict[str, Any], pool: asyncpg.Pool, http: httpx.AsyncClient, world: World,
        sms: SmsClient, sms_server: FakeSmsServer) -> None:
    ctx = {**ctx, "sms": sms}
    member, me = await world.member()
    r = await http.post("/me/phone/otp", headers=me, json={"phone": "081-234 5678"})
    assert r.status_code == 202, r.text
    challenge = r.json()["challenge_id"]
    oid = await pool.fetchval("select id from outbox where topic = 'otp.requested'"
                              " and payload ->> 'challenge_id' = $1", challenge)
    assert await handle_outbox(ctx, oid) == "done"
    # The code is no longer in the event log once the message is planned.
    assert await pool.fetchval("select payload ? 'code' from outbox where id = $1", oid) is False
    msg = await pool.fetchrow("select id, retry_key from notify_messages where dedup_key = $1",
                              f"otp:{challenge}")
    assert msg is not None

    sms_server.fail_next(1, 500, path=MESSAGES_PATH)
    assert await notify_jobs.deliver_message(ctx, msg["id"]) == "sent"
    attempts = sms_server.requests_to(MESSAGES_PATH)
    assert len(attempts) == 2
    assert {a.json["reference"] for a in attempts} == {str(msg["retry_key"])}
    (sent,) = sms_server.messages
    assert sent.to == "+66812345678"
    # A second run of the job (a redelivered ARQ job) sends nothing more.
    assert await notify_jobs.deliver_message(ctx, msg["id"]) == "sent"
    assert len(sms_server.messages) == 1
    assert await pool.fetchval("select messages from notify_messages where id = $1",
                               msg["id"]) == "[redacted]"

    code = re.search(r"\b(\d{6})\b", sent.text)
    assert code is not None
    wrong = await http.post("/me/phone/verify", headers=me, json={
        "challenge_id": challenge, "code": "000000" if code[1] != "000000" else "111111"})
    assert wrong.status_code == 409 and wrong.json()["code"] == "otp_invalid"
    ok = await http.post("/me/phone/verify", headers=me,
                         json={"challenge_id": challenge, "code": code[1]})
    assert ok.status_code == 200, ok.text
    assert await pool.fetchval("select phone from notify_prefs where member_id = $1",
                               member) == "+66812345678"


@pytest.mark.parametrize("phone", ["02 123 4567", "+1 415 555 0100", "08123", "not a number"])
async def test_an_invalid_number_is_refused_with_problem_json_and_nothing_is_sent(
        pool: asyncpg.Pool, http: httpx.AsyncClient, world: World, phone: str) -> None:
    member, me = await world.member()
    r = await http.post("/me/phone/otp", headers=me, json={"phone": phone})
    assert r.status_code == 422
    assert r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    assert body["code"] == "invalid_msisdn" and "Thai mobile" in body["detail"]
    assert body["message_th"]
    assert await pool.fetchval("select count(*) from otp_challenges where member_id = $1",
                               member) == 0
    assert await pool.fetchval("select count(*) from outbox where topic = 'otp.requested'"
                               " and member_id = $1", member) == 0
