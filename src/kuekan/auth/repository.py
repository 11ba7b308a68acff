"""The only caller of the SQL of staff, invitations, refresh tokens and organisation scopes."""

from __future__ import annotations

import datetime as dt

import asyncpg
from asyncpg.pool import PoolConnectionProxy

Db = asyncpg.Pool | asyncpg.Connection | PoolConnectionProxy

STAFF_COLUMNS = ("select s.id, s.role, s.merchant_id, s.org, s.status, s.token_version,"
                 " s.display_name, s.created_at, s.disabled_at, m.status as merchant_status,"
                 " coalesce(s.org, f.org) as scope_org"
                 " from staff s left join merchants m on m.id = s.merchant_id"
                 " left join funders f on f.id = m.funder_id")


# Staff -----------------------------------------------------------------------------------------
async def staff_state(db: Db, staff_id: int) -> asyncpg.Record | None:
    """What a request of this staff member's token is checked against."""
    return await db.fetchrow(STAFF_COLUMNS + " where s.id = $1", staff_id)


async def staff_by_line_sub(db: Db, line_sub: str) -> asyncpg.Record | None:
    return await db.fetchrow(STAFF_COLUMNS + " where s.line_sub = $1", line_sub)


async def list_staff(db: Db, org: str | None, after_id: int | None,
                     limit: int) -> list[asyncpg.Record]:
    """Staff and admins in ``org`` (its admins and the staff of its merchants); all for None."""
    return await db.fetch(
        "select * from (" + STAFF_COLUMNS + ") x"  # noqa: S608 - constant SQL
        " where ($1::text is null or x.scope_org = $1) and ($2::bigint is null or x.id > $2)"
        " order by x.id limit $3", org, after_id, limit)


async def set_staff_status(conn: Db, staff_id: int, active: bool, by: str) -> bool:
    """Disable (or enable) a staff member; both bump the version, so every token issued
    before stops at its next request."""
    status = await conn.execute(
        "update staff set status = $2, token_version = token_version + 1,"
        " disabled_at = case when $2 = 'disabled' then now() end,"
        " disabled_by = case when $2 = 'disabled' then $3 end where id = $1",
        staff_id, "active" if active else "disabled", by)
    return bool(status.endswith(" 1"))


async def link_staff(conn: Db, line_sub: str, role: str, merchant_id: int | None,
                     org: str | None, name: str) -> asyncpg.Record | None:
    """Create the staff row of a LINE account, or re-link an active one to a new role (its
    older tokens stop); None when the account's staff row is disabled."""
    return await conn.fetchrow(
        "insert into staff as s (line_sub, role, merchant_id, org, display_name)"
        " values ($1, $2, $3, $4, $5) on conflict (line_sub) do update"
        " set role = excluded.role, merchant_id = excluded.merchant_id, org = excluded.org,"
        "     display_name = excluded.display_name, token_version = s.token_version + 1"
        " where s.status = 'active' returning id, token_version",
        line_sub, role, merchant_id, org, name)


async def reactivate_for_cli(conn: Db, staff_id: int) -> int:
    """dev/test only (the token CLI): make the row usable; return its token version."""
    version: int = await conn.fetchval(
        "update staff set status = 'active', disabled_at = null, disabled_by = null"
        " where id = $1 returning token_version", staff_id)
    return version


# Invitations -----------------------------------------------------------------------------------
async def create_invitation(conn: Db, code_hash: str, role: str, merchant_id: int | None,
                            org: str | None, by: str, expires_at: dt.datetime) -> asyncpg.Record:
    row = await conn.fetchrow(
        "insert into staff_invitations (code_hash, role, merchant_id, org, created_by, expires_at)"
        " values ($1, $2, $3, $4, $5, $6)"
        " returning id, role, merchant_id, org, expires_at, created_at",
        code_hash, role, merchant_id, org, by, expires_at)
    assert row is not None
    return row


async def redeem_invitation(conn: Db, code_hash: str) -> asyncpg.Record | None:
    """Take an open invitation (once); the caller's transaction links the staff row."""
    return await conn.fetchrow(
        "update staff_invitations set redeemed_at = now() where code_hash = $1"
        " and redeemed_at is null and expires_at > now()"
        " returning id, role, merchant_id, org", code_hash)


async def mark_invitation_staff(conn: Db, invitation_id: int, staff_id: int) -> None:
    await conn.execute("update staff_invitations set staff_id = $2 where id = $1",
                       invitation_id, staff_id)


# Refresh tokens --------------------------------------------------------------------------------
async def store_refresh(conn: Db, jti: str, family: str, kind: str, subject_id: int,
                        expires_at: dt.datetime) -> None:
    await conn.execute(
        "insert into refresh_tokens (jti, family, kind, subject_id, expires_at)"
        " values ($1, $2, $3, $4, $5)", jti, family, kind, subject_id, expires_at)


async def use_refresh(conn: Db, jti: str) -> asyncpg.Record | None:
    """Mark a live refresh token used (once); None when unknown, used or revoked."""
    return await conn.fetchrow(
        "update refresh_tokens set used_at = now() where jti = $1 and used_at is null"
        " and revoked_at is null and expires_at > now() returning family, kind, subject_id",
        jti)


async def refresh_family(conn: Db, jti: str) -> str | None:
    family: str | None = await conn.fetchval(
        "select family from refresh_tokens where jti = $1", jti)
    return family


async def revoke_family(conn: Db, family: str) -> int:
    status = await conn.execute("update refresh_tokens set revoked_at = now()"
                                " where family = $1 and revoked_at is null", family)
    return int(status.split()[-1])


async def revoke_subject(conn: Db, kind: str, subject_id: int) -> int:
    status = await conn.execute("update refresh_tokens set revoked_at = now()"
                                " where kind = $1 and subject_id = $2 and revoked_at is null",
                                kind, subject_id)
    return int(status.split()[-1])


async def delete_expired_refresh(db: Db, before: dt.datetime, limit: int) -> int:
    status = await db.execute(
        "delete from refresh_tokens where ctid in (select ctid from refresh_tokens"
        " where expires_at < $1 limit $2)", before, limit)
    return int(status.split()[-1])


async def member_status(db: Db, member_id: int) -> str | None:
    status: str | None = await db.fetchval("select status from members where id = $1",
                                           member_id)
    return status


# Organisation scopes (kuekan.auth.policy) -------------------------------------------------------
async def funder_org(db: Db, funder_id: int) -> tuple[bool, str | None]:
    row = await db.fetchrow("select org from funders where id = $1", funder_id)
    return (row is not None, row["org"] if row else None)


async def merchant_org(db: Db, merchant_id: int) -> tuple[bool, str | None]:
    row = await db.fetchrow("select f.org from merchants m join funders f on f.id = m.funder_id"
                            " where m.id = $1", merchant_id)
    return (row is not None, row["org"] if row else None)


async def merchants_outside_org(db: Db, merchant_ids: list[int], org: str) -> list[int]:
    rows = await db.fetch(
        "select m.id from merchants m join funders f on f.id = m.funder_id"
        " where m.id = any($1::bigint[]) and f.org is distinct from $2", merchant_ids, org)
    return [r["id"] for r in rows]


async def mission_org(db: Db, mission_id: int) -> tuple[bool, str | None]:
    row = await db.fetchrow("select f.org from missions x join funders f on f.id = x.funder_id"
                            " where x.id = $1", mission_id)
    return (row is not None, row["org"] if row else None)


async def reward_org(db: Db, reward_id: int) -> tuple[bool, str | None]:
    """A reward belongs to its funder's organisation; one without a funder to the PAO."""
    row = await db.fetchrow("select coalesce(f.org, 'pao') as org from rewards r"
                            " left join funders f on f.id = r.funder_id where r.id = $1",
                            reward_id)
    return (row is not None, row["org"] if row else None)


async def transfer_org(db: Db, transfer_id: int) -> tuple[bool, str | None]:
    """A transfer belongs to its funder's organisation; one without a funder to the PAO."""
    row = await db.fetchrow("select coalesce(f.org, 'pao') as org from transfers t"
                            " left join funders f on f.id = t.funder_id where t.id = $1",
                            transfer_id)
    return (row is not None, row["org"] if row else None)


async def staff_org(db: Db, staff_id: int) -> tuple[bool, str | None]:
    row = await db.fetchrow("select scope_org from (" + STAFF_COLUMNS + ") x"  # noqa: S608
                            " where x.id = $1", staff_id)
    return (row is not None, row["scope_org"] if row else None)


async def org_funder_ids(db: Db, org: str) -> set[int]:
    return {r["id"] for r in await db.fetch("select id from funders where org = $1", org)}


async def org_exists(db: Db, org: str) -> bool:
    return bool(await db.fetchval("select true from organisations where code = $1", org))
