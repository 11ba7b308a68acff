"""The asyncpg pool and the mapping of refusals raised in SQL (SQLSTATE KKnnn) to DomainErrors.

A SQL function knows only the refusal's code and status; its texts come from the one catalogue
(:func:`kuekan.errors.known`), the same as for a refusal raised in Python."""

from __future__ import annotations

import json
from typing import Any

import asyncpg

from kuekan.errors import DomainError, known
from kuekan.settings import Settings

_STATUS_BY_STATE = {"KK409": 409, "KK403": 403, "KK404": 404, "KK422": 422}


def refusal_from_db(code: str, status: int = 409) -> DomainError:
    """The DomainError for a refusal code raised by a SQL function, with its catalogue text."""
    return known(code, status)


def refusal_for_state(code: str, sqlstate: str) -> DomainError:
    """The DomainError for refusal ``code`` raised with SQLSTATE ``sqlstate`` (KK409 ...)."""
    return refusal_from_db(code, _STATUS_BY_STATE.get(sqlstate, 409))


def map_db_error(exc: asyncpg.PostgresError) -> DomainError | None:
    """Turn a KKnnn refusal into a DomainError; anything else stays an internal error."""
    state = getattr(exc, "sqlstate", "") or ""
    if state in _STATUS_BY_STATE:
        return refusal_for_state(str(getattr(exc, "message", "")), state)
    return None


async def init_connection(conn: asyncpg.Connection) -> None:
    """Set up a connection as the pool does (jsonb/json in and out as Python objects); for a
    connection opened outside the pool, e.g. by a benchmark."""
    await conn.set_type_codec("jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")
    await conn.set_type_codec("json", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


async def _keep_session(conn: asyncpg.Connection) -> None:
    """Release without asyncpg's reset query (advisory unlock, CLOSE ALL, UNLISTEN, RESET ALL).

    asyncpg still rolls back an open transaction on release. The service never changes session
    state on pooled connections and takes only transaction-scoped advisory locks, so the reset
    statements were a wasted round trip on every query (10-14 % of API CPU, docs/PERFORMANCE.md).
    """


async def create_pool(settings: Settings, **overrides: Any) -> asyncpg.Pool:
    """Create the pool with the configured bounds; statements are prepared and cached."""
    pool = await asyncpg.create_pool(
        settings.database_url,
        min_size=overrides.get("min_size", settings.db_pool_min),
        max_size=overrides.get("max_size", settings.db_pool_max),
        command_timeout=settings.db_command_timeout_s,
        init=init_connection,
        reset=_keep_session,
        server_settings={"application_name": "kuekan", "timezone": "UTC"},
    )
    assert pool is not None
    return pool
