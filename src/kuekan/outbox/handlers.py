"""Outbox events and the handler registry (topic → handlers run in one transaction)."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from kuekan.settings import Settings

Conn = asyncpg.Connection | PoolConnectionProxy

PROBE_TOPIC = "ops.probe"
# A probe may ask to sleep (a stand-in for a slow job in fault tests); bounded all the same.
PROBE_SLEEP_S_MAX = 60.0


@dataclass(frozen=True, slots=True)
class Event:
    """One outbox row as handlers see it; ``payload`` is whatever the producer wrote."""

    id: int
    topic: str
    member_id: int | None
    payload: dict[str, Any]
    created_at: dt.datetime
    redrives: int = 0

    @property
    def at(self) -> dt.datetime:
        """When it happened: the producer's ``at`` if it is a valid time, else the row's."""
        raw = self.payload.get("at")
        if isinstance(raw, str):
            try:
                parsed = dt.datetime.fromisoformat(raw)
            except ValueError:
                return self.created_at
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)
        return self.created_at


@dataclass(frozen=True, slots=True)
class HandlerContext:
    settings: Settings
    job_try: int


Handler = Callable[[HandlerContext, Conn, Event], Awaitable[None]]


class ProbeFailedError(RuntimeError):
    """Raised by the probe on request, to exercise retries and the dead-letter table."""


async def probe(ctx: HandlerContext, conn: Conn, ev: Event) -> None:
    """Record one effect; optionally fail (until re-driven) or sleep mid-transaction first."""
    if ev.payload.get("fail") or (ev.payload.get("fail_until_redrive") and ev.redrives == 0):
        raise ProbeFailedError(f"probe {ev.id} asked to fail")
    await conn.execute("insert into ops_probe_effects (outbox_id) values ($1)", ev.id)
    sleep_s = float(ev.payload.get("sleep_s") or 0)
    if sleep_s > 0 and ctx.job_try <= int(ev.payload.get("sleep_tries", 1)):
        await asyncio.sleep(min(sleep_s, PROBE_SLEEP_S_MAX))
