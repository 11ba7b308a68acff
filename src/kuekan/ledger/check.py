"""The ledger invariants of DESIGN.md §3, checkable at any time (``kuekan check-ledger``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import msgspec


class CheckResult(msgspec.Struct):
    name: str
    ok: bool
    detail: str


CHECKS: list[tuple[str, str, str]] = [
    (
        "1. sum of all account balances is zero",
        "select (select coalesce(sum(posted), 0) from member_balances)"
        " + (select coalesce(sum(posted), 0) from account_slices)",
        "zero",
    ),
    (
        "2. no member's available balance is negative",
        "select count(*) from member_balances where posted - reserved < 0 or reserved < 0",
        "zero",
    ),
    (
        "2b. reserved equals the open pending transfers",
        "select count(*) from member_balances b where b.reserved <> coalesce((select sum(amount)"
        " from pending_transfers p where p.member_id = b.member_id and p.status = 'pending'), 0)",
        "zero",
    ),
    (
        "3. each account's balance equals the sum of its transfers",
        """
        with bal as (
            select account_id, posted from member_balances
            union all
            select account_id, sum(posted) from account_slices group by account_id
        ), moves as (
            select account_id, sum(delta) as net from (
                select credit_account_id as account_id, amount as delta from transfers
                union all
                select debit_account_id, -amount from transfers) x
            group by account_id
        )
        select count(*) from bal full join moves using (account_id)
         where coalesce(bal.posted, 0) <> coalesce(moves.net, 0)
        """,
        "zero",
    ),
    (
        "4. an idempotency key was applied at most once",
        "select count(*) from (select 1 from transfers where ref ? 'idem'"
        " group by ref ->> 'idem', coalesce(ref ->> 'leg', 'main') having count(*) > 1) d",
        "zero",
    ),
    (
        "5. every awarded point belongs to exactly one funder",
        """
        select (select count(*) from transfers t join member_balances b
                  on b.account_id = t.credit_account_id
                 where t.kind in ('award', 'adjust') and t.funder_id is null)
             + (select count(*) from (
                  select funder_id, sum(earned) as earned from lots group by funder_id) l
                  full join (
                  select t.funder_id, sum(t.amount) as awarded from transfers t
                    join member_balances b on b.account_id = t.credit_account_id
                   where t.kind in ('award', 'adjust') group by t.funder_id) a using (funder_id)
                 where coalesce(l.earned, 0) <> coalesce(a.awarded, 0))
        """,
        "zero",
    ),
    (
        "5b. each pocket equals its lots (posted = earned - spent - expired; reserved matches)",
        """
        select count(*) from member_balances b
          left join (select member_id, sum(earned - spent - expired) as held,
                            sum(reserved) as reserved
                       from lots group by member_id) l using (member_id)
         where b.posted <> coalesce(l.held, 0) or b.reserved <> coalesce(l.reserved, 0)
        """,
        "zero",
    ),
    (
        "5c. every outgoing point is traced to the lots it consumed",
        """
        select count(*) from transfers t
          join member_balances b on b.account_id = t.debit_account_id
         where t.amount <> coalesce((select sum(amount) from transfer_lots tl
                                      where tl.transfer_id = t.id), 0)
        """,
        "zero",
    ),
]


async def check_ledger(conn: asyncpg.Connection | asyncpg.Pool) -> list[CheckResult]:
    """Run every invariant in one repeatable-read snapshot, so a busy ledger checks cleanly."""
    results: list[CheckResult] = []
    async with _snapshot(conn) as c:
        for name, sql, _ in CHECKS:
            value = await c.fetchval(sql)
            results.append(CheckResult(name=name, ok=value == 0,
                                       detail="ok" if value == 0 else f"found {value}"))
    return results


@asynccontextmanager
async def _snapshot(db: asyncpg.Connection | asyncpg.Pool) -> AsyncIterator[Any]:
    if isinstance(db, asyncpg.Pool):
        async with db.acquire() as conn, conn.transaction(isolation="repeatable_read",
                                                          readonly=True):
            yield conn
    elif db.is_in_transaction():
        yield db  # already inside the caller's transaction: check what it sees
    else:
        async with db.transaction(isolation="repeatable_read", readonly=True):
            yield db
