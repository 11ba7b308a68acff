"""LineClient against the fake LINE API over real HTTP."""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid

import pytest

from kuekan.notify.line import (
    LineClient,
    LineError,
    LineMulticastError,
    chunk_retry_key,
    new_retry_key,
    retry_key_for,
)
from kuekan.notify.transport import Notifier
from tests.fakes.line_server import FakeLineServer
from tests.unit.notify.conftest import BACKOFF_BASE_S, BACKOFF_MAX_S

TEXT = [{"type": "text", "text": "สวัสดีโคราช"}]
PUSH = "/v2/bot/message/push"
MULTICAST = "/v2/bot/message/multicast"


def _client(server: FakeLineServer, **kwargs: object) -> LineClient:
    options: dict[str, object] = {
        "max_retries": 3, "backoff_base_s": BACKOFF_BASE_S, "backoff_max_s": BACKOFF_MAX_S,
    }
    options.update(kwargs)
    return LineClient(server.base_url, server.channel_access_token, **options)  # type: ignore[arg-type]


async def test_push_sends_bearer_json_and_a_uuid_retry_key(
    line: LineClient, line_server: FakeLineServer
) -> None:
    result = await line.push("U1", TEXT)

    [request] = line_server.requests_to(PUSH)
    assert request.headers["authorization"] == f"Bearer {line_server.channel_access_token}"
    assert request.json == {"to": "U1", "messages": TEXT, "notificationDisabled": False}
    assert request.headers["x-line-retry-key"] == result.retry_key
    assert uuid.UUID(result.retry_key or "")
    assert result.accepted
    assert not result.duplicate
    assert result.attempts == 1
    assert result.request_id == line_server.deliveries[0].request_id


async def test_multicast_of_1200_members_makes_three_calls_of_at_most_500(
    line: LineClient, line_server: FakeLineServer
) -> None:
    members = [f"U{i:04d}" for i in range(1_200)]

    result = await line.multicast(members, TEXT)

    calls = line_server.requests_to(MULTICAST)
    assert [len(call.json["to"]) for call in calls] == [500, 500, 200]
    assert [m for call in calls for m in call.json["to"]] == members
    keys = [call.headers["x-line-retry-key"] for call in calls]
    assert keys == [chunk_retry_key(result.retry_key, i) for i in range(3)]
    assert len(set(keys)) == 3
    assert len(result.chunks) == 3
    assert result.accepted


async def test_multicast_sends_a_member_listed_twice_once(
    line: LineClient, line_server: FakeLineServer
) -> None:
    await line.multicast(["U1", "U2", "U1"], TEXT)

    assert line_server.deliveries[0].to == ["U1", "U2"]


async def test_429_then_success_sends_once_with_the_same_retry_key(
    line: LineClient, line_server: FakeLineServer
) -> None:
    line_server.fail_next(1, 429, retry_after=0)

    result = await line.push("U1", TEXT)

    keys = [r.headers["x-line-retry-key"] for r in line_server.requests_to(PUSH)]
    assert keys == [result.retry_key, result.retry_key]
    assert result.accepted
    assert result.attempts == 2
    assert not result.duplicate
    assert len(line_server.deliveries) == 1
    assert line.rate_limited_total == 1
    assert line.rate_limited_by_endpoint["push"] == 1


async def test_429_waits_at_least_retry_after(line_server: FakeLineServer) -> None:
    line_server.fail_next(1, 429, retry_after=1)

    async with _client(line_server, backoff_max_s=2.0) as client:
        await client.push("U1", TEXT)

    first, second = line_server.requests_to(PUSH)
    assert second.at_s - first.at_s >= 0.95


async def test_retry_after_beyond_the_cap_fails_retryable_without_sleeping(
    line: LineClient, line_server: FakeLineServer
) -> None:
    line_server.fail_next(1, 429, retry_after=120)
    started = time.monotonic()

    with pytest.raises(LineError) as caught:
        await line.push("U1", TEXT)

    assert time.monotonic() - started < 1.0
    assert caught.value.status == 429
    assert caught.value.retryable
    assert caught.value.retry_after_s == 120
    assert len(line_server.requests_to(PUSH)) == 1


async def test_monthly_limit_429_is_not_retried(
    line: LineClient, line_server: FakeLineServer
) -> None:
    line_server.fail_next(5, 429, body={"message": "You have reached your monthly limit."})

    with pytest.raises(LineError) as caught:
        await line.push("U1", TEXT)

    assert not caught.value.retryable
    assert len(line_server.requests_to(PUSH)) == 1


async def test_500_then_success_retries_with_the_same_key(
    line: LineClient, line_server: FakeLineServer
) -> None:
    line_server.fail_next(1, 500)

    result = await line.push("U1", TEXT)

    first, second = line_server.requests_to(PUSH)
    assert first.headers["x-line-retry-key"] == second.headers["x-line-retry-key"]
    assert result.attempts == 2
    assert result.accepted
    assert line.retries_total == 1
    assert len(line_server.deliveries) == 1


async def test_409_on_retry_counts_as_already_sent(
    line: LineClient, line_server: FakeLineServer
) -> None:
    # LINE took the first push but the answer was lost; the retry then meets the used key.
    line_server.fail_next(1, 500, accept=True)

    result = await line.push("U1", TEXT)

    assert result.accepted
    assert result.duplicate
    assert result.status == 409
    assert result.attempts == 2
    assert len(line_server.deliveries) == 1
    assert result.request_id == line_server.deliveries[0].request_id


async def test_caller_key_is_used_from_the_first_attempt_and_resending_it_is_a_duplicate(
    line: LineClient, line_server: FakeLineServer
) -> None:
    key = new_retry_key()  # a worker persists this before calling

    first = await line.push("U1", TEXT, retry_key=key)
    again = await line.push("U1", TEXT, retry_key=key)

    assert [r.headers["x-line-retry-key"] for r in line_server.requests_to(PUSH)] == [key, key]
    assert not first.duplicate
    assert again.duplicate
    assert len(line_server.deliveries) == 1


async def test_retry_key_that_is_not_a_uuid_is_refused_before_sending(
    line: LineClient, line_server: FakeLineServer
) -> None:
    with pytest.raises(ValueError, match="UUID"):
        await line.push("U1", TEXT, retry_key="outbox-42")

    assert line_server.requests == []


async def test_persistent_500_fails_after_max_retries(
    line: LineClient, line_server: FakeLineServer
) -> None:
    line_server.fail_next(100, 500)

    with pytest.raises(LineError) as caught:
        await line.push("U1", TEXT)

    requests = line_server.requests_to(PUSH)
    assert len(requests) == 4  # max_retries=3 → 4 attempts, then stop
    assert caught.value.status == 500
    assert caught.value.attempts == 4
    assert caught.value.retryable
    assert caught.value.retry_key == requests[0].headers["x-line-retry-key"]
    assert line_server.deliveries == []


async def test_other_4xx_raises_at_once_with_status_and_body(
    line_server: FakeLineServer,
) -> None:
    async with LineClient(line_server.base_url, "wrong-token", backoff_base_s=0.001,
                          backoff_max_s=0.01) as client:
        with pytest.raises(LineError) as caught:
            await client.push("U1", TEXT)

    assert caught.value.status == 401
    assert not caught.value.retryable
    assert "Authentication failed" in caught.value.body["message"]
    assert len(line_server.requests) == 1


async def test_unreachable_api_fails_retryable_after_bounded_attempts() -> None:
    async with LineClient("http://127.0.0.1:9", "token", max_retries=2,
                          backoff_base_s=0.001, backoff_max_s=0.01) as client:
        with pytest.raises(LineError) as caught:
            await client.push("U1", TEXT)

    assert caught.value.status is None
    assert caught.value.retryable
    assert caught.value.attempts == 3


async def test_multicast_resumed_with_the_same_key_sends_only_the_missing_chunks(
    line: LineClient, line_server: FakeLineServer
) -> None:
    members = [f"U{i:04d}" for i in range(1_200)]
    key = new_retry_key()
    line_server.fail_next(1, 400, path=MULTICAST, skip=1)  # second chunk refused once

    with pytest.raises(LineMulticastError) as caught:
        await line.multicast(members, TEXT, retry_key=key)
    assert caught.value.chunk_index == 1
    assert len(caught.value.sent) == 1

    result = await line.multicast(members, TEXT, retry_key=key)

    assert [c.duplicate for c in result.chunks] == [True, False, False]
    delivered = [m for d in line_server.deliveries for m in d.to]
    assert sorted(delivered) == members  # everyone exactly once


async def test_token_bucket_spaces_calls_to_one_endpoint(line_server: FakeLineServer) -> None:
    async with _client(line_server, rate_per_s={"push": 20.0}, burst={"push": 1},
                       backoff_max_s=1.0) as client:
        await asyncio.gather(*(client.push(f"U{i}", TEXT) for i in range(5)))

    arrivals = sorted(r.at_s for r in line_server.requests_to(PUSH))
    gaps = [b - a for a, b in itertools.pairwise(arrivals)]
    assert len(arrivals) == 5
    assert min(gaps) >= 0.02  # 1/20 s apart, less generous scheduling slack
    assert arrivals[-1] - arrivals[0] >= 0.18


async def test_local_rate_limit_hands_back_instead_of_sleeping_past_the_cap(
    line_server: FakeLineServer,
) -> None:
    async with _client(line_server, rate_per_s={"narrowcast": 0.5}, burst={"narrowcast": 1},
                       backoff_max_s=0.1) as client:
        await client.narrowcast(TEXT)
        with pytest.raises(LineError) as caught:
            await client.narrowcast(TEXT)

    assert caught.value.status is None
    assert caught.value.retryable
    assert caught.value.retry_after_s == pytest.approx(2.0, abs=0.1)
    assert len(line_server.requests_to("/v2/bot/message/narrowcast")) == 1


async def test_narrowcast_to_a_district_audience_and_broadcast(
    line: LineClient, line_server: FakeLineServer
) -> None:
    audience = {"type": "audience", "audienceGroupId": 4389303728991}

    narrow = await line.narrowcast(TEXT, recipient=audience)
    wide = await line.broadcast(TEXT)

    [request] = line_server.requests_to("/v2/bot/message/narrowcast")
    assert request.json["recipient"] == audience
    assert "filter" not in request.json
    assert narrow.status == 202
    assert narrow.request_id
    assert wide.status == 200
    assert [d.endpoint for d in line_server.deliveries] == ["narrowcast", "broadcast"]


async def test_check_quota_compares_usage_plus_needed_with_the_limit() -> None:
    with FakeLineServer(quota_limit=1_000, usage=990) as server:
        async with _client(server) as client:
            assert (await client.get_quota()).value == 1_000
            assert await client.get_quota_consumption() == 990
            assert await client.check_quota(10)
            assert not await client.check_quota(11)
            await client.multicast(["U1", "U2"], TEXT)
            assert await client.get_quota_consumption() == 992
            assert not await client.check_quota(9)


async def test_check_quota_without_a_limit_is_always_true(line: LineClient) -> None:
    assert (await line.get_quota()).type == "none"
    assert await line.check_quota(10_000_000)


async def test_line_client_is_a_notifier_and_send_pushes_text(
    line: LineClient, line_server: FakeLineServer
) -> None:
    notifier: Notifier = line
    key = new_retry_key()

    result = await notifier.send("U9", "hello", idempotency_key=key)

    assert isinstance(line, Notifier)
    assert notifier.channel == "line"
    assert result.retry_key == key
    assert line_server.deliveries[0].messages == [{"type": "text", "text": "hello"}]


@pytest.mark.parametrize("count", [0, 6])
async def test_message_count_outside_1_to_5_is_refused(line: LineClient, count: int) -> None:
    with pytest.raises(ValueError, match=r"1\.\.5"):
        await line.push("U1", TEXT * count)


async def test_send_maps_a_non_uuid_idempotency_key_to_a_stable_retry_key(
    line: LineClient, line_server: FakeLineServer
) -> None:
    first = await line.send("U1", "hi", idempotency_key="outbox:1842")
    again = await line.send("U1", "hi", idempotency_key="outbox:1842")

    assert first.retry_key == retry_key_for("outbox:1842") == again.retry_key
    assert uuid.UUID(first.retry_key or "")
    assert again.duplicate
    assert len(line_server.deliveries) == 1
