"""Append-only, hash-chained audit log of admin and merchant actions.

``record(conn, actor, action, subject, details)`` appends a row in the caller's transaction
(so the entry commits or rolls back with the action); :mod:`kuekan.audit.verify` re-walks the
chain (``python -m kuekan verify-audit``); :mod:`kuekan.audit.middleware` records every
state-changing admin/merchant HTTP request.
"""

from __future__ import annotations

from typing import Any

import asyncpg
from asyncpg.pool import PoolConnectionProxy

Conn = asyncpg.Connection | PoolConnectionProxy


async def record(conn: asyncpg.Pool | Conn, actor: str, action: str,
                 subject: str, details: dict[str, Any] | None = None) -> int:
    """Append one audit row; returns its id. The chain lock is held to the end of the
    caller's transaction, so call it last in a transaction, not first."""
    return int(await conn.fetchval("select kk_audit_append($1, $2, $3, $4)",
                                   actor, action, subject, details or {}))


__all__ = ["record"]
