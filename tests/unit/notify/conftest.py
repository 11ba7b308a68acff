"""Fixtures: the LINE and SMS fakes on ephemeral ports, and clients with tiny backoffs."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from kuekan.notify.line import LineClient
from kuekan.notify.sms import SmsClient
from tests.fakes.line_server import FakeLineServer
from tests.fakes.sms_server import FakeSmsServer

# Small enough that retry tests take milliseconds, large enough to be measurable.
BACKOFF_BASE_S = 0.001
BACKOFF_MAX_S = 0.01


@pytest.fixture
def line_server() -> Iterator[FakeLineServer]:
    with FakeLineServer() as server:
        yield server


@pytest.fixture
def sms_server() -> Iterator[FakeSmsServer]:
    with FakeSmsServer() as server:
        yield server


@pytest.fixture
async def line(line_server: FakeLineServer) -> AsyncIterator[LineClient]:
    async with LineClient(
        line_server.base_url,
        line_server.channel_access_token,
        max_retries=3,
        backoff_base_s=BACKOFF_BASE_S,
        backoff_max_s=BACKOFF_MAX_S,
    ) as client:
        yield client


@pytest.fixture
async def sms(sms_server: FakeSmsServer) -> AsyncIterator[SmsClient]:
    async with SmsClient(
        sms_server.base_url,
        sms_server.api_key,
        max_retries=3,
        backoff_base_s=BACKOFF_BASE_S,
        backoff_max_s=BACKOFF_MAX_S,
    ) as client:
        yield client
