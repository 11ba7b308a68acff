"""PDPA use-cases: a member's data export and erasure by pseudonymisation.

Each domain's repository reads or clears its own tables; this module gathers them, and erasure
runs as one transaction with its audit row.
"""

from __future__ import annotations

import hashlib
from typing import Any

import asyncpg

from kuekan import audit
from kuekan.auth import repository as auth_repo
from kuekan.errors import known
from kuekan.fraud import repository as fraud_repo
from kuekan.ledger import repository as ledger_repo
from kuekan.members import repository as members_repo
from kuekan.notify import repository as notify_repo
from kuekan.privacy import repository as repo

EXPORT_TRANSFERS_MAX = 100_000
EXPORT_ROWS_MAX = 100_000  # check-ins, coupons: far above any real member's count


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
            "checkins": await repo.checkins_for_export(conn, member_id, EXPORT_ROWS_MAX),
            "coupons": await repo.coupons_for_export(conn, member_id, EXPORT_ROWS_MAX),
        }


async def erase(pool: asyncpg.Pool, member_id: int, alias: str, actor: str) -> None:
    """Pseudonymise every personal value (kk_erase_member: LINE id, name, phones, check-in
    coordinates and device ids, outbox payloads, notification recipients, webhook user ids,
    fraud evidence) and end the member's sessions; transfers, lots and balances stay untouched,
    so the ledger stays balanced and auditable under the pseudonym. Refused (403
    erasure_refused_on_hold) while on hold or banned."""
    async with pool.acquire() as conn, conn.transaction():
        await repo.erase_member(conn, member_id, alias)
        await auth_repo.revoke_subject(conn, "member", member_id)
        await audit.record(conn, actor, "member.erasure", f"member:{member_id}",
                           {"pseudonym": alias})
