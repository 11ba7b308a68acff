"""Notification jobs: outbox handlers that plan messages, delivery, and the daily crons."""

from __future__ import annotations

import datetime as dt
from typing import Any

import asyncpg
from arq import cron
from arq.worker import Retry, func
from asyncpg.pool import PoolConnectionProxy

from kuekan.geo.districts import districts
from kuekan.kit.backoff import backoff_s
from kuekan.kit.clock import bangkok_day
from kuekan.members.model import add_months
from kuekan.notify import repository as repo
from kuekan.notify.districts import fence_district
from kuekan.notify.line import LineClient
from kuekan.notify.service import DeliveryRetry, deliver
from kuekan.notify.sms import SmsClient
from kuekan.notify.templates import render
from kuekan.outbox.handlers import Event, Handler, HandlerContext, Subscriber
from kuekan.outbox.queue import JobQueue
from kuekan.settings import Settings

Conn = asyncpg.Connection | PoolConnectionProxy

DELIVER_JOB = "deliver_message"
SEGMENT_MEMBERS_MAX = 200_000
CRON_BATCH_ROWS = 1000
COUPON_WARN_DAYS = 3
# A mission is announced by the cron within this long of its creation (the cron runs every
# 5 minutes; the margin covers a worker outage). Older missions are never announced.
NEW_MISSION_WINDOW_S = 6 * 3600
BANGKOK_UTC_OFFSET_H = 7


def _int(v: Any) -> int:
    try:
        return 0 if isinstance(v, bool) else int(v or 0)
    except (TypeError, ValueError):
        return 0


# Outbox handlers (inside the handler transaction) -------------------------------------------
async def digest_checkin(ctx: HandlerContext, conn: Conn, ev: Event) -> None:
    points = _int(ev.payload.get("points_awarded"))
    if ev.member_id and points > 0:
        await repo.add_to_digest(conn, ev.member_id, bangkok_day(ev.at), points, 1)


async def digest_award(ctx: HandlerContext, conn: Conn, ev: Event) -> None:
    points = _int(ev.payload.get("points"))
    if ev.member_id and points > 0:
        await repo.add_to_digest(conn, ev.member_id, bangkok_day(ev.at), points, 0)


async def plan_broadcast(ctx: HandlerContext, conn: Conn, ev: Event) -> None:
    b = await repo.get_broadcast(conn, _int(ev.payload.get("broadcast_id")))
    if b is None:
        return
    districts = list(b["district_codes"]) if b["district_codes"] else None
    params = {"title": b["title"], "body": b["body"]}
    if districts is None:
        await repo.create_message(conn, dedup_key=f"broadcast:{b['id']}", kind=b["kind"],
                                  channel="line", endpoint="broadcast", outbox_id=ev.id,
                                  messages=[render("province_broadcast", "th", **params),
                                            render("province_broadcast", "en", **params)])
        return
    audiences = ctx.settings.line_district_audiences
    if all(d in audiences for d in districts):
        # LINE holds the segment: one narrowcast to the districts' audience groups.
        recipient = {"type": "operator", "or": [{"type": "audience", "audienceGroupId":
                                                 audiences[d]} for d in districts]}
        # LINE counts one message per member reached; our own segment is the quota estimate.
        size = await repo.reachable_count(conn, districts)
        await repo.create_message(conn, dedup_key=f"broadcast:{b['id']}", kind=b["kind"],
                                  channel="line", endpoint="narrowcast", outbox_id=ev.id,
                                  options={"recipient": recipient, "audience_size": size},
                                  messages=[render("province_broadcast", "th", **params)])
        return
    await _multicast_by_lang(conn, f"broadcast:{b['id']}", b["kind"], "province_broadcast",
                             {"th": params, "en": params}, districts, ev.id)


async def plan_mission_nearby(ctx: HandlerContext, conn: Conn, ev: Event) -> None:
    p = ev.payload
    district = p.get("district_code")
    title = p.get("title_th") or p.get("title") or p.get("title_en")
    if not district or not title:
        return
    name = str(p.get("district_name") or district)
    params = {lang: {"mission_title": str(p.get(f"title_{lang}") or title), "district": name}
              for lang in ("th", "en")}
    mission = p.get("mission_id") or p.get("id") or ev.id
    await _multicast_by_lang(conn, f"mission_nearby:{mission}", "mission_nearby",
                             "mission_nearby", params, [str(district)], ev.id)


async def _multicast_by_lang(conn: Conn, key: str, kind: str, template: str,
                             params: dict[str, dict[str, Any]], districts: list[str],
                             outbox_id: int | None) -> list[int]:
    """One multicast per language of the segment (the client chunks by 500); ids of the new
    messages (none when this key was planned before)."""
    by_lang: dict[str, list[str]] = {}
    for m in await repo.segment(conn, districts, SEGMENT_MEMBERS_MAX):
        by_lang.setdefault(m["lang"], []).append(m["line_sub"])
    ids: list[int] = []
    for lang, subs in by_lang.items():
        mid = await repo.create_message(conn, dedup_key=f"{key}:{lang}", kind=kind,
                                        channel="line", endpoint="multicast", recipients=subs,
                                        outbox_id=outbox_id,
                                        messages=[render(template, lang, **params[lang])])
        if mid is not None:
            ids.append(mid)
    return ids


async def plan_otp(ctx: HandlerContext, conn: Conn, ev: Event) -> None:
    p = ev.payload
    if not p.get("code"):
        return  # planned already (a re-driven row has its code removed)
    text = f"KueKan OTP: {p['code']} (หมดอายุใน {ctx.settings.otp_ttl_s // 60} นาที)"
    await repo.create_message(conn, dedup_key=f"otp:{p['challenge_id']}", kind="otp",
                              channel="sms", endpoint="sms", member_id=ev.member_id,
                              recipients=[p["phone"]], outbox_id=ev.id,
                              messages=[{"type": "text", "text": text}])
    # The code now lives only in the message (redacted once sent), not in the event log.
    await conn.execute("update outbox set payload = payload - 'code' where id = $1", ev.id)


HANDLERS: dict[str, list[Handler]] = {
    "checkin.completed": [digest_checkin],
    "points.awarded": [digest_award],
    "mission.completed": [digest_award],  # collection/chain bonus, purchase missions
    "broadcast.requested": [plan_broadcast],
    "mission.created": [plan_mission_nearby],
    "mission.published": [plan_mission_nearby],
    "otp.requested": [plan_otp],
}


# Delivery -------------------------------------------------------------------------------------
def open_clients(ctx: dict[str, Any]) -> None:
    s: Settings = ctx["settings"]
    ctx["line"] = (LineClient(s.line_api_base, s.line_channel_access_token)
                   if s.line_channel_access_token else None)
    ctx["sms"] = SmsClient(s.sms_api_base, s.sms_api_key) if s.sms_api_key else None


async def deliver_message(ctx: dict[str, Any], message_id: int) -> str:
    s: Settings = ctx["settings"]
    job_try = int(ctx.get("job_try", 1))
    try:
        return await deliver(ctx["pool"], ctx.get("line"), ctx.get("sms"), message_id)
    except DeliveryRetry as exc:
        if job_try >= s.outbox_max_tries:
            await repo.finish(ctx["pool"], message_id, "failed", None, str(exc)[:500])
            return "failed"
        delay = max(exc.retry_after_s or 0.0,
                    backoff_s(job_try, s.outbox_retry_base_s, s.outbox_retry_cap_s))
        raise Retry(defer=delay) from exc


PLANNING_TOPICS = frozenset({"broadcast.requested", "mission.created", "mission.published",
                             "otp.requested"})


async def enqueue_for_outbox(pool: asyncpg.Pool, queue: JobQueue, outbox_id: int) -> int:
    ids = await repo.pending_for_outbox(pool, outbox_id)
    return await queue.enqueue_many(DELIVER_JOB, [(f"notify:{i}", (i,)) for i in ids])


async def enqueue_stuck(pool: asyncpg.Pool, queue: JobQueue, older_than_s: float) -> int:
    """Pending messages whose job was lost; delivering twice is safe (same retry key)."""
    n = 0
    for i in await repo.stuck(pool, older_than_s, CRON_BATCH_ROWS):
        n += await queue.recover(DELIVER_JOB, i, job_id=f"notify:{i}") != "queued"
    return n


async def after_outbox(ctx: dict[str, Any], outbox_id: int, topic: str) -> None:
    """After a planning event committed: its deliveries run as their own jobs."""
    if topic in PLANNING_TOPICS and "queue" in ctx:
        await enqueue_for_outbox(ctx["pool"], ctx["queue"], outbox_id)


async def sweep(ctx: dict[str, Any]) -> dict[str, int]:
    """The outbox sweep's part for notifications: re-send messages whose job was lost."""
    settings: Settings = ctx["settings"]
    return {"messages": await enqueue_stuck(ctx["pool"], ctx["queue"],
                                            settings.outbox_orphan_after_s)}


SUBSCRIBER = Subscriber("notify", HANDLERS, after=after_outbox, sweep=sweep)


async def startup(ctx: dict[str, Any]) -> None:
    """Worker startup: the LINE and SMS clients, before the outbox's first sweep."""
    open_clients(ctx)


# Crons ----------------------------------------------------------------------------------------
async def _plan_and_enqueue(ctx: dict[str, Any], plans: list[dict[str, Any]]) -> int:
    ids: list[int] = []
    async with ctx["pool"].acquire() as conn, conn.transaction():
        for plan in plans:
            mid = await repo.create_message(conn, **plan)
            if mid is not None:
                ids.append(mid)
    await ctx["queue"].enqueue_many(DELIVER_JOB, [(f"notify:{i}", (i,)) for i in ids])
    return len(ids)


def digest_key(member_id: int, day: dt.date, sent_points: int) -> str:
    """One digest per member, day and increment (points already reported when it was made)."""
    return f"digest:{member_id}:{day}:{sent_points}"


async def send_points_digests(ctx: dict[str, Any], day: dt.date | None = None) -> int:
    """One LINE message per member per day with the day's points, never one per check-in.

    Each run reports what was added since the member's previous digest, so points that
    arrive after the day's digest went out are reported by the next run (the next day's
    catch-up), never twice and never lost.
    """
    day = day or bangkok_day()
    total = 0
    while True:
        async with ctx["pool"].acquire() as conn, conn.transaction():
            rows = await repo.due_digests(conn, day, CRON_BATCH_ROWS)
            ids: list[int] = []
            for r in rows:
                mid = await repo.create_message(
                    conn, dedup_key=digest_key(r["member_id"], r["day"], r["sent_points"]),
                    kind="points_digest", channel="line", endpoint="push", member_id=r["member_id"],
                    recipients=[r["line_sub"]],
                    messages=[render("points_digest", r["lang"], points=r["points"],
                                     checkins=r["checkins"])])
                if mid is not None:
                    ids.append(mid)
            await repo.mark_digests(conn, rows)
        await ctx["queue"].enqueue_many(DELIVER_JOB, [(f"notify:{i}", (i,)) for i in ids])
        total += len(ids)
        if len(rows) < CRON_BATCH_ROWS:
            return total


async def notify_coupons_expiring(ctx: dict[str, Any], today: dt.date | None = None) -> int:
    """Daily: one push per unused coupon whose expiry falls 3 Bangkok days from today."""
    on = (today or bangkok_day()) + dt.timedelta(days=COUPON_WARN_DAYS)
    async with ctx["pool"].acquire() as conn:
        rows = await repo.coupons_expiring_on(conn, on, SEGMENT_MEMBERS_MAX)
    return await _plan_and_enqueue(ctx, [
        {"dedup_key": f"coupon_expiring:{r['id']}", "kind": "coupon_expiring",
         "channel": "line", "endpoint": "push", "member_id": r["member_id"],
         "recipients": [r["line_sub"]],
         "messages": [render("coupon_expiring", r["lang"], coupon_name=r["reward_name"] or "-",
                             days=COUPON_WARN_DAYS, expires_on=on)]} for r in rows])


async def notify_points_expiring(ctx: dict[str, Any], today: dt.date | None = None) -> int:
    """On the 1st: what is left of the lots that expire at the end of this month.

    A lot of month M expires at the end of month M + ``points_expiry_months``
    (``members.model.lot_expires_at``), so this month's are the lots of this month minus that.
    """
    s: Settings = ctx["settings"]
    today = today or bangkok_day()
    if today.day != 1:
        return 0  # scheduled daily: ARQ's month-rollover cron arithmetic is unreliable
    first = today.replace(day=1)
    lot_month = add_months(first, -s.points_expiry_months)
    last_day = add_months(first, 1) - dt.timedelta(days=1)
    async with ctx["pool"].acquire() as conn:
        rows = await repo.lots_expiring(conn, lot_month, SEGMENT_MEMBERS_MAX)
    return await _plan_and_enqueue(ctx, [
        {"dedup_key": f"points_expiring:{r['member_id']}:{first}", "kind": "points_expiring",
         "channel": "line", "endpoint": "push", "member_id": r["member_id"],
         "recipients": [r["line_sub"]],
         "messages": [render("points_expiring", r["lang"], points=r["points"],
                             expires_on=last_day)]} for r in rows])


async def notify_new_missions(ctx: dict[str, Any]) -> int:
    """Cron: announce each mission created recently to the members of the district its
    geofence lies in, once (the dedup key is the mission's, whoever planned it first)."""
    planned: list[int] = []
    async with ctx["pool"].acquire() as conn:
        missions = await repo.recent_missions(conn, NEW_MISSION_WINDOW_S, CRON_BATCH_ROWS)
    for m in missions:
        district = fence_district(m["geofence_code"], m["geometry"])
        if district is None:
            continue
        params = {lang: {"mission_title": m[f"title_{lang}"],
                         "district": districts().name(district, lang)} for lang in ("th", "en")}
        async with ctx["pool"].acquire() as conn, conn.transaction():
            planned += await _multicast_by_lang(conn, f"mission_nearby:{m['id']}",
                                                "mission_nearby", "mission_nearby", params,
                                                [district], None)
    await ctx["queue"].enqueue_many(DELIVER_JOB, [(f"notify:{i}", (i,)) for i in planned])
    return len(planned)


CRON_FUNCTIONS: list[Any] = [send_points_digests, notify_coupons_expiring, notify_points_expiring,
                             notify_new_missions]


def cron_jobs(s: Settings) -> list[Any]:
    digest_utc = (s.line_digest_hour_local - BANGKOK_UTC_OFFSET_H) % 24
    return [
        cron(send_points_digests, hour={digest_utc}, minute={0}, timeout=600),
        cron(notify_coupons_expiring, hour={3}, minute={0}, timeout=600),  # 10:00 Bangkok
        cron(notify_points_expiring, hour={2}, minute={0}, timeout=600),  # 09:00, acts on the 1st
        cron(notify_new_missions, minute=set(range(0, 60, 5)), second={40}, timeout=300,
             unique=True),
    ]


def jobs(s: Settings) -> list[Any]:
    """Every job function of notifications, for kuekan.worker."""
    return [func(deliver_message, name=DELIVER_JOB, timeout=120, max_tries=s.outbox_max_tries + 1),
            *CRON_FUNCTIONS]
