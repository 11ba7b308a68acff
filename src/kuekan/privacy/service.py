"""PDPA use-cases: a member's data export and erasure by pseudonymisation.

Each domain's repository reads or clears its own tables; this module gathers them, and erasure
runs as one transaction with its audit row.
"""

from __future__ import annotations

import hashlib
from typing import Any

import asyncpg

from kuekan import audit
from kuekan.errors import known
from kuekan.fraud import repository as fraud_repo
from kuekan.ledger import repository as ledger_repo
from kuekan.members import repository as members_repo
from kuekan.notify import repository as notify_repo
from kuekan.privacy import repository as repo

EXPORT_TRANSFERS_MAX = 100_000


def pseudonym(salt: str, member_id: int) -> str:
    return "erased-" + hashlib.sha256(f"{salt}:{member_id}".encode()).hexdigest()[:24]


async def export(pool: asyncpg.Pool, member_id: int) -> dict[str, Any]:
    """Everything the service keeps about the member (one connection, read only)."""
    async with pool.acquire() as conn:
        member = await members_repo.personal_data(conn, member_id)
        if member is None:
            raise known("member_not_found", 404)
        return {
            "member": member,
            "pocket": await ledger_repo.member_pocket(conn, member_id),
            "transfers": await ledger_repo.member_transfers(conn, member_id,
                                                            EXPORT_TRANSFERS_MAX),
            "consents": await repo.all_consents(conn, member_id),
            "notification_preferences": await notify_repo.prefs_for_export(conn, member_id),
            "checkins_seen_by_fraud_checks": await fraud_repo.checkins_for_export(conn,
                                                                                  member_id),
        }


async def erase(pool: asyncpg.Pool, member_id: int, alias: str, actor: str) -> None:
    """Pseudonymise personal fields; transfers, lots and balances stay untouched, so the
    ledger stays balanced and auditable under the pseudonym."""
    async with pool.acquire() as conn, conn.transaction():
        await members_repo.pseudonymise(conn, member_id, alias)
        await notify_repo.erase_contact(conn, member_id)
        await fraud_repo.erase_checkins(conn, member_id)
        await repo.record_erasure(conn, member_id, alias)
        await audit.record(conn, actor, "member.erasure", f"member:{member_id}",
                           {"pseudonym": alias})
