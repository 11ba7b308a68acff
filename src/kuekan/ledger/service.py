"""Ledger use-cases behind idempotency keys and limits.

Two ways to run an idempotent operation:

* ``award``: the hot path. Redis claim + limits in one script, then one SQL function call that
  claims the durable key, moves the points, writes the outbox and stores the response.
* ``run``: any other operation, as a transaction that claims the key, calls ``op`` and stores
  its response.

A business refusal (a DomainError) is stored too, so a retry with the same key gets the same
answer; a crash or a lost connection stores nothing, so the retry runs again.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg

from kuekan import cache, metrics
from kuekan.errors import DomainError
from kuekan.idempotency import Gate, LimitCheck, Outcome, Replay, Stored, resolve_stored
from kuekan.kit.clock import bangkok_day
from kuekan.ledger import repository as repo
from kuekan.settings import Settings

# ``op`` gets a pooled connection inside the transaction (asyncpg's PoolConnectionProxy).
TxOp = Callable[[Any], Awaitable[tuple[int, Any]]]


class Ledger:
    """Idempotent ledger operations for the API and the workers."""

    def __init__(self, pool: asyncpg.Pool, gate: Gate, settings: Settings) -> None:
        self.pool = pool
        self.gate = gate
        self.settings = settings

    # Limit builders -----------------------------------------------------------------------
    def member_day_limit(self, member_id: int, day: dt.date) -> LimitCheck:
        return LimitCheck(cache.member_day_key(member_id, day.isoformat()),
                          self.settings.member_daily_cap_points, "daily_limit_reached")

    @staticmethod
    def merchant_day_limit(merchant_id: int, day: dt.date, cap: int | None) -> list[LimitCheck]:
        if cap is None:
            return []
        return [LimitCheck(cache.merchant_day_key(merchant_id, day.isoformat()), cap,
                           "merchant_daily_cap_reached")]

    @staticmethod
    def budget_limit(name: str, total: int | None) -> list[LimitCheck]:
        if total is None:
            return []
        kind = name.split(":", 1)[0]
        return [LimitCheck(cache.budget_key(name), total, f"{kind}_budget_exhausted")]

    # Hot path -----------------------------------------------------------------------------
    async def award(
        self, *, scope: str, key: str, req_hash: str, member_id: int, funder_id: int,
        points: int, kind: str = "award", counts_toward_daily_cap: bool = True,
        merchant_id: int | None = None, budget_keys: list[str] | None = None,
        limits: list[LimitCheck] | None = None, ref: dict[str, Any] | None = None,
        check_hold: bool = True, extra: dict[str, Any] | None = None,
        outbox_topic: str | None = "points.awarded", day: dt.date | None = None,
    ) -> Outcome:
        """Award ``points`` from a funder to a member, exactly once per (scope, key)."""
        day = day or bangkok_day()
        checks = list(limits or [])
        if counts_toward_daily_cap:
            checks.insert(0, self.member_day_limit(member_id, day))
        outcome = await self.one_call(
            scope=scope, key=key, req_hash=req_hash, amount=points, limits=checks,
            call=lambda: repo.award_idem(
                self.pool, scope=scope, key=key, req_hash=req_hash, member_id=member_id,
                funder_id=funder_id, points=points, kind=kind, day=day,
                member_cap=self.settings.member_daily_cap_points if counts_toward_daily_cap
                else None,
                merchant_id=merchant_id, budget_keys=budget_keys or [], ref=ref or {},
                check_hold=check_hold, slices=self.settings.budget_slices, extra=extra or {},
                outbox_topic=outbox_topic,
            ))
        if not outcome.replayed:
            metrics.AWARDS.labels(kind).inc()
            metrics.AWARDED_POINTS.labels(kind).inc(points)
        return outcome

    async def one_call(self, *, scope: str, key: str, req_hash: str, amount: int,
                       limits: list[LimitCheck],
                       call: Callable[[], Awaitable[dict[str, Any]]]) -> Outcome:
        """An operation that is one SQL function call claiming the durable key itself and
        answering ``{status, body, hash, replay}`` (``kk_award_idem``,
        ``kk_purchase_scan_idem``): the Redis claim and limits before it, and after it the
        stored response, or the counters given back when it refused or failed."""
        replay = await self.gate.claim(scope, key, req_hash, amount, limits)
        if replay is not None:
            return Outcome(replay.status, replay.body, replayed=True)
        try:
            res = await call()
        except DomainError as err:
            await self._refused(scope, key, req_hash, err, amount, limits)
            raise
        except BaseException:
            await self.gate.abort(scope, key, amount, limits)
            raise
        if res["replay"]:
            await self.gate.abort(scope, key, amount, limits, drop_key=False)
            return await self._replayed(scope, key, req_hash, res)
        await self.gate.finish(scope, key, req_hash, res["status"], res["body"])
        return Outcome(res["status"], res["body"])

    # Any other operation -----------------------------------------------------------------
    async def run(self, *, scope: str, key: str, req_hash: str, op: TxOp,
                  amount: int = 0, limits: list[LimitCheck] | None = None) -> Outcome:
        """Run ``op`` in a transaction that claims and stores the idempotency key."""
        checks = list(limits or [])
        replay = await self.gate.claim(scope, key, req_hash, amount, checks)
        if replay is not None:
            return Outcome(replay.status, replay.body, replayed=True)
        try:
            async with self.pool.acquire() as conn, conn.transaction():
                prev = await conn.fetchval("select kk_idem_claim($1, $2, $3)",
                                           scope, key, req_hash)
                if prev is None:
                    status, body = await op(conn)
                    await conn.execute("select kk_idem_store($1, $2, $3, $4)",
                                       scope, key, status, body)
        except DomainError as err:
            await self._refused(scope, key, req_hash, err, amount, checks)
            raise
        except BaseException:
            await self.gate.abort(scope, key, amount, checks)
            raise
        if prev is not None:
            await self.gate.abort(scope, key, amount, checks, drop_key=False)
            return await self._replayed(scope, key, req_hash, {**prev, "replay": True})
        await self.gate.finish(scope, key, req_hash, status, body)
        return Outcome(status, body)

    async def _refused(self, scope: str, key: str, req_hash: str, err: DomainError,
                       amount: int, checks: list[LimitCheck]) -> None:
        if err.status >= 500:
            await self.gate.abort(scope, key, amount, checks)
            return
        problem = err.to_problem()
        await repo.store_refusal(self.pool, scope, key, req_hash, err.status, problem)
        await self.gate.abort(scope, key, amount, checks, drop_key=False)
        await self.gate.finish(scope, key, req_hash, err.status, problem)

    async def _replayed(self, scope: str, key: str, req_hash: str,
                        res: dict[str, Any]) -> Outcome:
        replay: Replay = resolve_stored(
            Stored(hash=res["hash"], status=res["status"], body=res["body"]), req_hash)
        await self.gate.finish(scope, key, req_hash, replay.status, replay.body)
        return Outcome(replay.status, replay.body, replayed=True)
