"""Outbox events and the subscriber registry (topic → handlers run in one transaction).

The outbox knows no subscriber: the composition root (``kuekan.worker``) builds one
:class:`Subscribers` from every domain's :class:`Subscriber` and hands it to the jobs in the
worker context (``ctx["outbox"]``)."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
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


# After a row's transaction committed, with the row's topic (e.g. queue the deliveries it planned).
AfterHook = Callable[[dict[str, Any], int, str], Awaitable[None]]
# In the orphan sweep: re-queue this subscriber's own lost work; returns counts by name.
SweepHook = Callable[[dict[str, Any]], Awaitable[dict[str, int]]]


@dataclass(frozen=True, slots=True)
class Subscriber:
    """What one domain hangs on the outbox: handlers by topic and optional hooks."""

    name: str
    handlers: Mapping[str, Sequence[Handler]] = field(default_factory=dict)
    after: AfterHook | None = None
    sweep: SweepHook | None = None


class Subscribers:
    """Every subscriber of the outbox, plus the ops probe; built once by the worker."""

    def __init__(self, *subscribers: Subscriber) -> None:
        self.subscribers = (Subscriber("ops", {PROBE_TOPIC: [probe]}), *subscribers)
        by_topic: dict[str, list[Handler]] = {}
        for sub in self.subscribers:
            for topic, handlers in sub.handlers.items():
                by_topic.setdefault(topic, []).extend(handlers)
        self._by_topic = {topic: tuple(hs) for topic, hs in by_topic.items()}

    def handlers(self, topic: str) -> tuple[Handler, ...]:
        return self._by_topic.get(topic, ())

    async def after(self, ctx: dict[str, Any], outbox_id: int, topic: str) -> None:
        for sub in self.subscribers:
            if sub.after is not None:
                await sub.after(ctx, outbox_id, topic)

    async def sweep(self, ctx: dict[str, Any]) -> dict[str, int]:
        counts: dict[str, int] = {}
        for sub in self.subscribers:
            if sub.sweep is not None:
                counts.update(await sub.sweep(ctx))
        return counts
