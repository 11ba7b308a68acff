"""The only caller of the notification tables' SQL."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from kuekan.outbox.repository import emit

Conn = asyncpg.Connection | PoolConnectionProxy

Db = asyncpg.Pool | Conn
# The digest cron also sends the unsent digests of the days before (a worker that was down at
# the digest hour); older ones are dropped, a stale "today you earned" helps nobody.
DIGEST_CATCH_UP_DAYS = 2
# Members reachable on LINE: not erased, not opted out (no prefs row means the default, in).
REACHABLE = ("from members m left join notify_prefs n on n.member_id = m.id"
             " where m.status <> 'erased' and coalesce(n.line_opt_in, true)")


async def create_message(conn: Conn, *, dedup_key: str, kind: str, channel: str,
                         endpoint: str, messages: Any, member_id: int | None = None,
                         recipients: list[str] | None = None,
                         options: dict[str, Any] | None = None,
                         outbox_id: int | None = None) -> int | None:
    """Store a send with its retry key fixed now, before any attempt; None if it exists."""
    return await conn.fetchval(  # type: ignore[no-any-return]
        "insert into notify_messages (dedup_key, kind, channel, endpoint, member_id, recipients,"
        " messages, options, retry_key, outbox_id) values ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10)"
        " on conflict (dedup_key) do nothing returning id",
        dedup_key, kind, channel, endpoint, member_id, recipients or [], messages, options or {},
        uuid.uuid4(), outbox_id)


async def get_message(db: Db, message_id: int) -> asyncpg.Record | None:
    return await db.fetchrow("select * from notify_messages where id = $1", message_id)


async def start_attempt(db: Db, message_id: int) -> int:
    return int(await db.fetchval(
        "update notify_messages set attempts = attempts + 1 where id = $1 returning attempts",
        message_id))


async def finish(db: Db, message_id: int, status: str, request_ids: list[str | None] | None,
                 error: str | None, redact: bool = False) -> None:
    await db.execute(
        "update notify_messages set status = $2, request_ids = $3, error = $4,"
        " sent_at = case when $2 = 'sent' then now() end,"
        " messages = case when $5 then '\"[redacted]\"'::jsonb else messages end where id = $1",
        message_id, status, request_ids, error, redact)


async def note_error(db: Db, message_id: int, error: str) -> None:
    await db.execute("update notify_messages set error = $2 where id = $1", message_id, error)


async def pending_for_outbox(db: Db, outbox_id: int) -> list[int]:
    rows = await db.fetch("select id from notify_messages where outbox_id = $1"
                          " and status = 'pending'", outbox_id)
    return [r["id"] for r in rows]


async def stuck(db: Db, older_than_s: float, limit: int) -> list[int]:
    rows = await db.fetch(
        "select id from notify_messages where status = 'pending'"
        " and created_at < now() - make_interval(secs => $1) order by id limit $2",
        older_than_s, limit)
    return [r["id"] for r in rows]


async def opted_in(db: Db, member_id: int) -> bool:
    return bool(await db.fetchval(
        "select exists (select 1 " + REACHABLE + " and m.id = $1)", member_id))


async def add_to_digest(conn: Conn, member_id: int, day: dt.date, points: int,
                        checkins: int) -> None:
    await conn.execute(
        "insert into notify_digest as d (member_id, day, points, checkins) values ($1,$2,$3,$4)"
        " on conflict (member_id, day) do update set points = d.points + excluded.points,"
        " checkins = d.checkins + excluded.checkins", member_id, day, points, checkins)


async def due_digests(conn: Conn, day: dt.date, limit: int) -> list[asyncpg.Record]:
    return await conn.fetch(
        "select d.member_id, d.day, d.points - d.sent_points as points,"
        " d.checkins - d.sent_checkins as checkins, d.points as total_points,"
        " d.checkins as total_checkins, d.sent_points, m.line_sub,"
        " coalesce(n.lang, 'th') as lang"
        " from notify_digest d join members m on m.id = d.member_id"
        " left join notify_prefs n on n.member_id = m.id"
        " where d.day between $1::date - $3::int and $1 and d.points > d.sent_points"
        " order by d.day, d.member_id limit $2 for update of d skip locked",
        day, limit, DIGEST_CATCH_UP_DAYS)


async def mark_digests(conn: Conn, rows: list[asyncpg.Record]) -> None:
    await conn.execute(
        "update notify_digest d set sent_at = now(), sent_points = x.points,"
        " sent_checkins = x.checkins"
        " from unnest($1::bigint[], $2::date[], $3::bigint[], $4::int[])"
        " as x(member_id, day, points, checkins)"
        " where d.member_id = x.member_id and d.day = x.day",
        [r["member_id"] for r in rows], [r["day"] for r in rows],
        [r["total_points"] for r in rows], [r["total_checkins"] for r in rows])


async def segment(db: Db, district_codes: list[str] | None,
                  limit: int) -> list[asyncpg.Record]:
    """Reachable members of the districts (all districts when None), with their language."""
    return await db.fetch(
        "select m.id, m.line_sub, coalesce(n.lang, 'th') as lang " + REACHABLE +
        " and ($1::text[] is null or m.district_code = any($1)) order by m.id limit $2",
        district_codes, limit)


async def set_line_opt_in(conn: Conn, line_sub: str, opt_in: bool) -> bool:
    status = await conn.execute(
        "insert into notify_prefs (member_id, line_opt_in) select id, $2 from members"
        " where line_sub = $1 on conflict (member_id) do update"
        " set line_opt_in = excluded.line_opt_in, updated_at = now()", line_sub, opt_in)
    return bool(status.endswith(" 1"))


async def first_seen_webhook_event(conn: Conn, event_id: str, kind: str,
                                   user_id: str | None) -> bool:
    status = await conn.execute(
        "insert into line_webhook_events (webhook_event_id, type, user_id) values ($1,$2,$3)"
        " on conflict do nothing", event_id, kind, user_id)
    return bool(status.endswith(" 1"))


async def coupons_expiring_on(conn: Conn, day: dt.date,
                              limit: int) -> list[asyncpg.Record]:
    if await conn.fetchval("select to_regclass('coupons')") is None:
        return []
    return await conn.fetch(
        "select c.id, c.member_id, m.line_sub, coalesce(n.lang, 'th') as lang,"
        " case when coalesce(n.lang, 'th') = 'en' then r.name_en else r.name_th end"
        " as reward_name from coupons c join rewards r on r.id = c.reward_id"
        " join members m on m.id = c.member_id left join notify_prefs n on n.member_id = m.id"
        " where c.status = 'issued' and (c.expires_at at time zone 'Asia/Bangkok')::date = $1"
        " and m.status <> 'erased' and coalesce(n.line_opt_in, true) order by c.id limit $2",
        day, limit)


async def lots_expiring(conn: Conn, lot_month: dt.date,
                        limit: int) -> list[asyncpg.Record]:
    return await conn.fetch(
        "select l.member_id, sum(l.earned - l.spent - l.reserved - l.expired)::bigint as points,"
        " m.line_sub, coalesce(n.lang, 'th') as lang from lots l"
        " join members m on m.id = l.member_id left join notify_prefs n on n.member_id = m.id"
        " where l.month = $1 and m.status <> 'erased' and coalesce(n.line_opt_in, true)"
        " group by l.member_id, m.line_sub, n.lang"
        " having sum(l.earned - l.spent - l.reserved - l.expired) > 0"
        " order by l.member_id limit $2", lot_month, limit)


async def get_broadcast(db: Db, broadcast_id: int) -> asyncpg.Record | None:
    return await db.fetchrow("select * from broadcasts where id = $1", broadcast_id)


async def create_broadcast(conn: Conn, kind: str, title: str, body: str,
                           district_codes: list[str] | None, by: str) -> int:
    bid = int(await conn.fetchval(
        "insert into broadcasts (kind, title, body, district_codes, created_by)"
        " values ($1,$2,$3,$4,$5) returning id", kind, title, body, district_codes, by))
    await emit(conn, "broadcast.requested", {"broadcast_id": bid})
    return bid


async def recent_missions(db: Db, since_s: float, limit: int) -> list[asyncpg.Record]:
    """Active, not yet ended missions created in the last ``since_s`` seconds, with the code,
    name and shape of their geofence (to find the district they are in)."""
    return await db.fetch(
        "select m.id, m.title_th, m.title_en, g.code as geofence_code, g.name as geofence_name,"
        " g.geometry from missions m join geofences g on g.id = m.geofence_id"
        " where m.status = 'active' and (m.ends_at is null or m.ends_at > now())"
        " and m.created_at > now() - make_interval(secs => $1) order by m.id limit $2",
        since_s, limit)


async def reachable_count(db: Db, district_codes: list[str] | None) -> int:
    """How many members a segment reaches (the quota estimate of a narrowcast)."""
    return int(await db.fetchval(
        "select count(*) " + REACHABLE +
        " and ($1::text[] is null or m.district_code = any($1))", district_codes))


# Phone verification by OTP --------------------------------------------------------------------
async def create_otp(conn: Conn, challenge_id: uuid.UUID, member_id: int, phone: str,
                     code_hash: str, ttl_s: int, code: str) -> None:
    """The challenge and, in the same transaction, the event that plans its SMS (the code
    travels in the event only until the message is planned)."""
    await conn.execute(
        "insert into otp_challenges (id, member_id, phone, code_hash, expires_at)"
        " values ($1, $2, $3, $4, now() + make_interval(secs => $5))",
        challenge_id, member_id, phone, code_hash, ttl_s)
    await emit(conn, "otp.requested",
               {"challenge_id": str(challenge_id), "phone": phone, "code": code}, member_id)


async def try_otp(conn: Conn, challenge_id: uuid.UUID, member_id: int,
                  attempts_max: int) -> asyncpg.Record | None:
    """Count one attempt at a live challenge; its phone and code hash, or None when it is
    unknown, someone else's, verified, expired or out of attempts."""
    return await conn.fetchrow(
        "update otp_challenges set attempts = attempts + 1 where id = $1"
        " and member_id = $2 and verified_at is null and expires_at > now()"
        " and attempts < $3 returning phone, code_hash", challenge_id, member_id, attempts_max)


async def verify_phone(conn: Conn, challenge_id: uuid.UUID, member_id: int, phone: str) -> None:
    await conn.execute("update otp_challenges set verified_at = now() where id = $1",
                       challenge_id)
    await conn.execute(
        "insert into notify_prefs (member_id, phone, phone_verified_at)"
        " values ($1, $2, now()) on conflict (member_id) do update"
        " set phone = excluded.phone, phone_verified_at = now(), updated_at = now()",
        member_id, phone)


# PDPA: what a member's export shows, and what erasure clears ----------------------------------
async def prefs_for_export(db: Db, member_id: int) -> list[dict[str, Any]]:
    rows = await db.fetch("select line_opt_in, lang, phone, phone_verified_at from notify_prefs"
                          " where member_id = $1", member_id)
    return [dict(r) for r in rows]


async def erase_contact(conn: Conn, member_id: int) -> None:
    await conn.execute("update notify_prefs set phone = null, phone_verified_at = null,"
                       " line_opt_in = false where member_id = $1", member_id)
    await conn.execute("update otp_challenges set phone = '' where member_id = $1", member_id)
