"""Test fixtures on real PostgreSQL and Redis (never mocks of our own storage).

The session gets a fresh database ``kuekan_test`` (migrated from sql/migrations) and Redis db 9,
and one real API server process on a free loopback port. Tests create their own members and
funders with unique ids, so they never depend on each other's data.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import redis.asyncio as aioredis

from kuekan.db.migrate import database_name, with_database

os.environ.setdefault("KUEKAN_ENV", "test")


def _test_urls() -> tuple[str, str]:
    """A database of this session's own on the configured server, and a Redis db that is not
    the dev one (db 0 becomes db 9), so tests never touch dev data or each other."""
    server = os.environ.get("KUEKAN_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/kuekan")
    redis_url = os.environ.get("KUEKAN_REDIS_URL", "redis://127.0.0.1:6379/0")
    if redis_url.endswith("/0"):
        redis_url = redis_url[:-2] + "/9"
    elif redis_url.endswith("db=0"):
        redis_url = redis_url[:-4] + "db=9"
    return with_database(server, f"kuekan_test_{os.getpid()}"), redis_url


os.environ["KUEKAN_DATABASE_URL"], os.environ["KUEKAN_REDIS_URL"] = _test_urls()

from kuekan.auth.tokens import Principal, TokenService  # noqa: E402
from kuekan.db import create_pool  # noqa: E402
from kuekan.db.migrate import migrate  # noqa: E402
from kuekan.ledger import repository as ledger_repo  # noqa: E402
from kuekan.ledger.check import check_ledger  # noqa: E402
from kuekan.members import repository as members_repo  # noqa: E402
from kuekan.settings import Settings, load_settings  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _recreate_database(dsn: str) -> None:
    name = database_name(dsn)
    admin = await asyncpg.connect(with_database(dsn, "postgres"))
    try:
        await admin.execute(
            "select pg_terminate_backend(pid) from pg_stat_activity where datname = $1", name)
        await admin.execute(f'drop database if exists "{name}"')
        await admin.execute(f'create database "{name}"')
    finally:
        await admin.close()


async def _drop_database(dsn: str) -> None:
    name = database_name(dsn)
    admin = await asyncpg.connect(with_database(dsn, "postgres"))
    try:
        await admin.execute(
            "select pg_terminate_backend(pid) from pg_stat_activity where datname = $1", name)
        await admin.execute(f'drop database if exists "{name}"')
    finally:
        await admin.close()


@pytest.fixture(scope="session")
def settings() -> Settings:
    return load_settings("test")


@pytest.fixture(scope="session")
async def database(settings: Settings) -> AsyncIterator[str]:
    await _recreate_database(settings.database_url)
    await migrate(settings.database_url)
    yield settings.database_url
    if os.environ.get("KUEKAN_KEEP_TEST_DB") != "1":
        await _drop_database(settings.database_url)


@pytest.fixture(scope="session")
async def pool(database: str, settings: Settings) -> AsyncIterator[asyncpg.Pool]:
    p = await create_pool(settings, min_size=1, max_size=15)
    yield p
    await p.close()


@pytest.fixture(scope="session")
async def redis(settings: Settings) -> AsyncIterator[aioredis.Redis]:
    r = aioredis.from_url(settings.redis_url)
    await r.flushdb()
    yield r
    await r.aclose()


def start_server(env_extra: dict[str, str] | None = None) -> tuple[subprocess.Popen[bytes], str]:
    """Start ``kuekan serve`` on a free loopback port; return the process and its base URL."""
    port = _free_port()
    log = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the server process
    env = {**os.environ, "KUEKAN_RATE_LIMITS": "off", **(env_extra or {})}
    proc = subprocess.Popen(
        [sys.executable, "-m", "kuekan", "serve", "--host", "127.0.0.1", "--port", str(port)],
        # stderr goes to a file: a pipe nobody reads would block a chatty server.
        env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=log, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            log.seek(0)
            err = log.read().decode(errors="replace")
            raise RuntimeError(f"API server exited early:\n{err[-3000:]}")
        try:
            if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    kill_group(proc)
    raise RuntimeError("API server did not become ready in 30 s")


def kill_group(proc: subprocess.Popen[Any]) -> None:
    """SIGKILL a process started with ``start_new_session=True`` and everything in its group."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM (a clean stop), then the whole process group is killed whatever happened."""
    proc.terminate()
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=10)
    kill_group(proc)


@pytest.fixture(scope="session")
def api_url(database: str, redis: aioredis.Redis) -> Iterator[str]:
    proc, base = start_server()
    yield base
    stop_server(proc)


@pytest.fixture(scope="session")
async def http(api_url: str) -> AsyncIterator[httpx.AsyncClient]:
    limits = httpx.Limits(max_connections=300, max_keepalive_connections=300)
    async with httpx.AsyncClient(base_url=f"{api_url}/api/v1", timeout=60, limits=limits) as c:
        yield c


@pytest.fixture(scope="session")
def tokens(settings: Settings) -> TokenService:
    return TokenService(settings)


class World:
    """Helpers to make members, staff, funders and tokens for one test."""

    def __init__(self, pool: asyncpg.Pool, tokens: TokenService, settings: Settings) -> None:
        self.pool = pool
        self.tokens = tokens
        self.settings = settings

    async def member(self, prefix: str = "Ut") -> tuple[int, dict[str, str]]:
        sub = f"{prefix}-{uuid.uuid4().hex[:12]}"
        mid = (await members_repo.ensure_members(self.pool, [sub]))[sub]
        return mid, self.auth(Principal("member", mid, sub))

    async def members(self, n: int) -> list[tuple[int, dict[str, str]]]:
        subs = [f"Ubulk-{uuid.uuid4().hex[:12]}" for _ in range(n)]
        ids = await members_repo.ensure_members(self.pool, subs)
        return [(ids[s], self.auth(Principal("member", ids[s], s))) for s in subs]

    async def admin(self, org: str = "pao") -> dict[str, str]:
        sub = f"Uadm-{uuid.uuid4().hex[:12]}"
        sid = await members_repo.ensure_staff(self.pool, sub, "admin", None, org)
        return self.auth(Principal("admin", sid, sub, org=org))

    async def funder(self, budget: int | None = None) -> int:
        async with self.pool.acquire() as conn:
            row = await ledger_repo.create_funder(
                conn, f"F{uuid.uuid4().hex[:10]}", "Test funder", "pao", budget,
                self.settings.budget_slices)
        return int(row["id"])

    def auth(self, principal: Principal, **kw: Any) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens.issue(principal, **kw)}"}


@pytest.fixture
async def world(pool: asyncpg.Pool, tokens: TokenService, settings: Settings) -> World:
    return World(pool, tokens, settings)


def idem(**headers: str) -> dict[str, str]:
    return {"Idempotency-Key": uuid.uuid4().hex, **headers}


async def assert_ledger_ok(pool: asyncpg.Pool) -> None:
    failed = [r for r in await check_ledger(pool) if not r.ok]
    assert not failed, failed


@pytest.fixture(autouse=True, scope="module")
async def _ledger_invariants_after_module(request: pytest.FixtureRequest) -> AsyncIterator[None]:
    """check-ledger passes after every test module that touched the database."""
    yield
    if "pool" in request.fixturenames or _module_used_db(request):
        p: asyncpg.Pool = request.getfixturevalue("pool")
        await asyncio.wait_for(assert_ledger_ok(p), timeout=60)


def _module_used_db(request: pytest.FixtureRequest) -> bool:
    return any("pool" in getattr(item, "fixturenames", ())
               for item in request.session.items if item.module is request.module)
