"""Fraud use-cases: evaluate outbox events, apply outcomes, decide reviews, holds, blacklist.

Event handlers run inside the outbox handler's transaction (exactly once per event); review
decisions and admin actions run in their own transaction and write an audit row in it.
"""

from __future__ import annotations

from typing import Any, cast

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from kuekan import audit, metrics
from kuekan.errors import DomainError, known
from kuekan.fraud import model
from kuekan.fraud import repository as repo
from kuekan.fraud.model import Checkin, Finding, Thresholds
from kuekan.ledger import repository as ledger_repo
from kuekan.logging import get_logger
from kuekan.outbox.handlers import Event, Handler, HandlerContext, Subscriber

Conn = asyncpg.Connection | PoolConnectionProxy

log = get_logger("kuekan.fraud")


def _int(v: Any) -> int | None:
    try:
        return None if v is None or isinstance(v, bool) else int(v)
    except (TypeError, ValueError):
        return None


def _float(v: Any) -> float | None:
    try:
        return None if v is None or isinstance(v, bool) else float(v)
    except (TypeError, ValueError):
        return None


def _staff_id(p: dict[str, Any]) -> int | None:
    raw_ref = p.get("ref")
    ref: dict[str, Any] = raw_ref if isinstance(raw_ref, dict) else {}
    for raw in (p.get("staff_id"), ref.get("staff_id"), ref.get("by"), p.get("by")):
        text = raw[2:] if isinstance(raw, str) and raw.startswith("s:") else raw
        if (sid := _int(text)) is not None:
            return sid
    return None


# Event handlers ----------------------------------------------------------------------------
async def on_checkin(ctx: HandlerContext, conn: Conn, ev: Event) -> None:
    p = ev.payload
    member_id = _int(p.get("member_id")) or ev.member_id
    if member_id is None:
        return
    mission_id = _int(p.get("mission_id"))
    fence, live_event = await repo.mission_context(conn, mission_id, ev.at)
    geofence_id = _int(p.get("geofence_id")) or fence
    # The event exemption holds only at the event's own geofence.
    flagged = bool(p.get("event") or p.get("is_event") or live_event)
    own_fence = fence is None or geofence_id == fence
    c = Checkin(member_id=member_id, at=ev.at, lat=_float(p.get("lat")), lon=_float(p.get("lon")),
                accuracy_m=_float(p.get("accuracy_m")), device_id=p.get("device_id") or None,
                geofence_id=geofence_id, is_event=flagged and own_fence)
    prev = await repo.previous_checkin(conn, ev.id, c)
    await repo.insert_checkin(conn, ev.id, c, mission_id)
    s = ctx.settings
    th = Thresholds.from_settings(s)
    st = await repo.checkin_stats(conn, ev.id, c, s.fraud_velocity_window_s,
                                  s.fraud_geofence_burst_window_s, s.fraud_device_window_days,
                                  th.geofence_burst_max)
    findings = [
        model.checkin_velocity(c, st["in_window"], th),
        model.impossible_travel(c, prev, th),
        model.device_many_accounts(c, st["device_accounts"], th),
        model.geofence_burst(c, st["at_geofence"], th),
        model.accuracy_anomaly(c, st["same_coords"], th),
    ]
    if await repo.blacklisted(conn, "device", c.device_id):
        findings.append(model.finding("blacklisted", {"device_id": c.device_id},
                                      member_id=member_id, device_id=c.device_id))
    await apply_findings(ctx, conn, ev, [f for f in findings if f is not None])


async def on_award(ctx: HandlerContext, conn: Conn, ev: Event) -> None:
    """points.awarded / scan.purchase: merchant bursts and staff awarding themselves."""
    p = ev.payload
    merchant_id, member_id = _int(p.get("merchant_id")), _int(p.get("member_id")) or ev.member_id
    if merchant_id is None or member_id is None:
        return  # mission and admin awards are covered by the check-in rules and the audit log
    staff_id = _staff_id(p)
    points = _int(p.get("points")) or 0
    new = await repo.insert_award(conn, ev.id, "award", member_id, merchant_id, staff_id, points,
                                  _int(p.get("transfer_id")), ev.at)
    if not new:
        return  # the same transfer came through another topic already
    s = ctx.settings
    th = Thresholds.from_settings(s)
    recent, baseline = await repo.merchant_counts(conn, merchant_id, ev.at, s.fraud_burst_window_s,
                                                  s.fraud_burst_baseline_days)
    findings: list[Finding | None] = [model.merchant_award_burst(merchant_id, recent, baseline, th)]
    if staff_id is not None:
        staff_sub, member_sub = await repo.line_subs(conn, staff_id, member_id)
        findings.append(model.staff_self_award(member_id, merchant_id, staff_id, staff_sub,
                                               member_sub))
    findings.append(await _loop(ctx, conn, ev, member_id, merchant_id))
    if await repo.blacklisted(conn, "merchant", merchant_id):
        findings.append(model.finding("blacklisted", {"merchant_id": merchant_id},
                                      member_id=member_id, merchant_id=merchant_id))
    await apply_findings(ctx, conn, ev, [f for f in findings if f is not None])


async def on_redeem(ctx: HandlerContext, conn: Conn, ev: Event) -> None:
    """coupon.redeemed (and similar): the spending half of award → redeem loops."""
    p = ev.payload
    merchant_id, member_id = _int(p.get("merchant_id")), _int(p.get("member_id")) or ev.member_id
    if merchant_id is None or member_id is None:
        return
    await repo.insert_award(conn, ev.id, "redeem", member_id, merchant_id, _staff_id(p),
                            _int(p.get("points")) or 0, _int(p.get("transfer_id")), ev.at)
    f = await _loop(ctx, conn, ev, member_id, merchant_id)
    await apply_findings(ctx, conn, ev, [f] if f else [])


async def _loop(ctx: HandlerContext, conn: Conn, ev: Event, member_id: int,
                merchant_id: int) -> Finding | None:
    awards, redeems = await repo.loop_counts(conn, member_id, merchant_id, ev.at,
                                             ctx.settings.fraud_loop_window_h)
    return model.award_redeem_loop(member_id, merchant_id, awards, redeems,
                                   Thresholds.from_settings(ctx.settings))


HANDLERS: dict[str, list[Handler]] = {
    "checkin.completed": [on_checkin],
    "points.awarded": [on_award],
    "scan.purchase": [on_award],
    "coupon.redeemed": [on_redeem],
    "coupon.posted": [on_redeem],
    "scan.redeem": [on_redeem],
}
SUBSCRIBER = Subscriber("fraud", HANDLERS)


# Outcomes -----------------------------------------------------------------------------------
async def apply_findings(ctx: HandlerContext, conn: Conn, ev: Event,
                         findings: list[Finding]) -> None:
    for f in findings:
        alert_id = await repo.insert_alert(conn, f, ev.id)
        if alert_id is None:
            continue
        metrics.FRAUD_ALERTS.labels(f.rule).inc()
        log.warning("fraud_alert", rule=f.rule, member_id=f.member_id,
                    merchant_id=f.merchant_id, outbox_id=ev.id)
        if f.severity == "low":
            continue
        held = await _hold_points(conn, ev, f)
        holds_member = f.severity == "high" and f.member_id is not None
        review_id = await repo.insert_review(conn, alert_id, f, holds_member, held)
        if holds_member:
            assert f.member_id is not None
            await repo.hold_member(conn, f.member_id, f"fraud:{f.rule}:review:{review_id}")


async def _hold_points(conn: Conn, ev: Event, f: Finding) -> list[dict[str, Any]]:
    """Reserve the points this event awarded (as far as still available) until the review."""
    p = ev.payload
    transfer_id = _int(p.get("transfer_id"))
    points = _int(p.get("points_awarded")) or _int(p.get("points")) or 0
    if f.member_id is None or transfer_id is None or points <= 0:
        return []
    amount = min(points, await repo.available(conn, f.member_id))
    if amount <= 0:
        return []
    pending_id = await repo.reserve_hold(conn, f.member_id, amount,
                                         {"fraud_hold": f.rule, "transfer_id": transfer_id})
    return [{"transfer_id": transfer_id, "points": amount, "pending_id": pending_id}]


# Reviews --------------------------------------------------------------------------------------
def review_closed() -> DomainError:
    return known("review_closed")


async def decide_review(pool: asyncpg.Pool, review_id: int, approve: bool, by: str,
                        note: str | None, strikes_to_ban: int, slices: int) -> dict[str, Any]:
    """Approve (release held points) or reject (reverse exactly the held points, add a strike;
    the third strike bans). Never deletes anything."""
    async with pool.acquire() as conn, conn.transaction():
        r = await repo.lock_review(conn, review_id)
        if r is None:
            raise known("review_not_found")
        if r["status"] != "open":
            raise review_closed()
        reversed_points, strikes = 0, None
        for h in r["held"]:
            await ledger_repo.void(cast(asyncpg.Connection, conn), h["pending_id"])
            if not approve:
                reversed_points += await _reverse_held(conn, h, review_id, by, slices)
        member_id = r["member_id"]
        status = "approved" if approve else "rejected"
        if member_id is not None and not approve:
            strikes = await repo.add_strike(conn, member_id, review_id)
            if strikes >= strikes_to_ban:
                await repo.ban_member(conn, member_id, f"fraud:strikes:{strikes}")
                await repo.add_blacklist(conn, "member", str(member_id),
                                         f"{strikes} strikes", by)
        if member_id is not None and r["holds_member"] and not await \
                repo.other_open_holding_reviews(conn, member_id, review_id):
            await repo.release_member(conn, member_id, fraud_only=True)
        await repo.close_review(conn, review_id, status, by, note)
        result = {"id": review_id, "status": status, "reversed_points": reversed_points,
                  "strikes": strikes, "member_status": await repo.member_status(conn, member_id)
                  if member_id is not None else None}
        await audit.record(conn, by, f"fraud.review.{status}", f"review:{review_id}",
                           {**result, "note": note})
    return result


async def _reverse_held(conn: Conn, held: dict[str, Any], review_id: int, by: str,
                        slices: int) -> int:
    ref = {"fraud_review": review_id, "by": by}
    points = int(held["points"])
    if await repo.transfer_amount(conn, held["transfer_id"]) == points:
        await ledger_repo.reverse(cast(asyncpg.Connection, conn), held["transfer_id"], ref, slices)
    else:
        # Only part was still there to hold: take back exactly that part.
        member_id = await repo.transfer_member(conn, held["transfer_id"])
        await ledger_repo.adjust_down(cast(asyncpg.Connection, conn), member_id, points, ref,
                                      slices)
    return points


# Holds and blacklist -----------------------------------------------------------------------
def cannot_hold() -> DomainError:
    return known("member_not_holdable")


async def hold(pool: asyncpg.Pool, member_id: int, reason: str, by: str) -> str:
    async with pool.acquire() as conn, conn.transaction():
        if await repo.member_status(conn, member_id) is None:
            raise known("member_not_found", 404)
        if not await repo.hold_member(conn, member_id, reason):
            raise cannot_hold()
        await audit.record(conn, by, "member.hold", f"member:{member_id}", {"reason": reason})
    return "on_hold"


async def lift_hold(pool: asyncpg.Pool, member_id: int, by: str) -> str:
    async with pool.acquire() as conn, conn.transaction():
        status = await repo.member_status(conn, member_id)
        if status is None:
            raise known("member_not_found", 404)
        if status != "on_hold":
            raise known("member_not_on_hold")
        await repo.release_member(conn, member_id, fraud_only=False)
        await audit.record(conn, by, "member.hold_lifted", f"member:{member_id}", {})
    return "active"


async def blacklist(pool: asyncpg.Pool, kind: str, value: str, reason: str,
                    by: str) -> asyncpg.Record:
    async with pool.acquire() as conn, conn.transaction():
        row = await repo.add_blacklist(conn, kind, value, reason, by)
        if row is None:
            raise known("already_blacklisted")
        await _apply_blacklist(conn, kind, value, on=True, reason=reason)
        await audit.record(conn, by, "blacklist.add", f"{kind}:{value}", {"reason": reason})
    return row


async def unblacklist(pool: asyncpg.Pool, entry_id: int, by: str) -> asyncpg.Record:
    async with pool.acquire() as conn, conn.transaction():
        row = await repo.lift_blacklist(conn, entry_id, by)
        if row is None:
            raise known("blacklist_entry_not_found")
        await _apply_blacklist(conn, row["kind"], row["value"], on=False, reason="")
        await audit.record(conn, by, "blacklist.lift", f"{row['kind']}:{row['value']}", {})
    return row


async def _apply_blacklist(conn: Conn, kind: str, value: str, *, on: bool,
                           reason: str) -> None:
    ident = _int(value)
    if ident is None:
        return
    if kind == "member":
        if on:
            await repo.ban_member(conn, ident, f"blacklist:{reason}")
        else:
            await conn.execute("update members set status = 'active', hold_reason = null"
                               " where id = $1 and status = 'banned'", ident)
    elif kind == "merchant":
        await repo.set_merchant_status(conn, ident, "suspended" if on else "active")
