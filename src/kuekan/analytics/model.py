"""Pure analytics rules: reading outbox events, folding them into rollup deltas, cohort and
return-rate arithmetic, and the one access policy of every admin/merchant/analytics route.

Imports no asyncpg, redis or litestar: everything here is tested without storage.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

import msgspec

from kuekan.kit.clock import BANGKOK

# Bounds of one consumer run (see docs/ANALYTICS.md). A run reads at most
# BATCH_SIZE * BATCHES_PER_RUN outbox rows, so one cron tick never runs away.
BATCH_SIZE = 1000
BATCHES_PER_RUN = 20
# An id gap younger than this may be a transaction that has not committed yet: wait for it.
GAP_WAIT_S = 10.0
# Redis keys of a day live this long; PostgreSQL keeps the rollups for ever.
DAY_TTL_S = 3 * 86400
MINUTE_TTL_S = 15 * 60
ACTIVE_NOW_MINUTES = 5
TOP_N = 10
EXPORT_ROWS_MAX = 100_000
RANGE_DAYS_MAX = 400

# Topics that mean "a member did something" (admin adjustments are not member activity).
ACTIVITY_TOPICS = frozenset({"checkin.completed", "mission.completed", "scan.purchase",
                             "redemption.created", "coupon.posted", "points.awarded"})
COMPLETION_TOPICS = frozenset({"checkin.completed", "mission.completed"})
CHECKIN_TOPIC = "checkin.completed"
ACCEPTED_DECISIONS = frozenset({"inside", "edge", "accepted", "accept", "ok", "completed"})

# Outbox topic -> the public webhook event name agencies subscribe to.
WEBHOOK_EVENTS: dict[str, str] = {
    "checkin.completed": "mission.completed",
    "mission.completed": "mission.completed",
    "redemption.created": "redemption.created",
    "coupon.posted": "redemption.posted",
}
# Fields an agency may receive: aggregated, never a member's identity.
WEBHOOK_FIELDS = ("mission_id", "geofence_id", "district_code", "points", "merchant_id",
                  "reward_id", "campaign_id", "decision")


class Event(msgspec.Struct, frozen=True):
    """One outbox row as analytics reads it; every field the producer left out is None/0."""

    outbox_id: int
    topic: str
    member_id: int | None
    at: dt.datetime
    points: int = 0
    mission_id: int | None = None
    geofence_id: int | None = None
    district_code: str | None = None
    merchant_id: int | None = None
    campaign: str | None = None
    amount_thb: Decimal = Decimal(0)
    decision: str | None = None
    lat: float | None = None
    lon: float | None = None

    @property
    def day(self) -> dt.date:
        return self.at.astimezone(BANGKOK).date()

    @property
    def hour(self) -> int:
        return self.at.astimezone(BANGKOK).hour

    @property
    def accepted(self) -> bool:
        """A check-in counts as a completed mission when accepted (or, lacking a decision,
        when it paid points)."""
        if self.decision is not None:
            return self.decision.lower() in ACCEPTED_DECISIONS
        return self.points > 0 or self.topic == "mission.completed"


def _int(v: Any) -> int | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, int):
        return v
    if isinstance(v, str) and v.strip().lstrip("-").isdigit():
        return int(v)
    if isinstance(v, float) and v.is_integer():
        return int(v)
    return None


def _first_int(p: Mapping[str, Any], names: tuple[str, ...]) -> int:
    for name in names:
        v = _int(p.get(name))
        if v is not None:
            return v
    return 0


def _float(v: Any) -> float | None:
    if isinstance(v, int | float) and not isinstance(v, bool):
        return float(v)
    try:
        return float(v) if isinstance(v, str) else None
    except ValueError:
        return None


def _decimal(v: Any) -> Decimal:
    if v is None or isinstance(v, bool):
        return Decimal(0)
    try:
        d = Decimal(str(v))
    except (InvalidOperation, ValueError):
        return Decimal(0)
    return d if d.is_finite() and d >= 0 else Decimal(0)


def _time(v: Any, default: dt.datetime) -> dt.datetime:
    if isinstance(v, str):
        try:
            t = dt.datetime.fromisoformat(v)
        except ValueError:
            return default
        return t if t.tzinfo else t.replace(tzinfo=dt.UTC)
    return default


def parse_event(outbox_id: int, topic: str, member_id: int | None, payload: Any,
                created_at: dt.datetime) -> Event:
    """Read one outbox row tolerantly: unknown or malformed fields become None/0."""
    p: Mapping[str, Any] = payload if isinstance(payload, Mapping) else {}
    ref = p.get("ref") if isinstance(p.get("ref"), Mapping) else {}
    assert isinstance(ref, Mapping)
    campaign_id = _int(p.get("campaign_id", ref.get("campaign_id")))
    mission_id = _int(p.get("mission_id", ref.get("mission_id")))
    campaign = (f"campaign:{campaign_id}" if campaign_id is not None
                else f"mission:{mission_id}" if mission_id is not None else None)
    decision = p.get("decision")
    return Event(
        outbox_id=outbox_id, topic=topic,
        member_id=member_id if member_id is not None else _int(p.get("member_id")),
        at=_time(p.get("at"), created_at),
        points=_first_int(p, ("points", "points_awarded", "points_reserved")),
        mission_id=mission_id, geofence_id=_int(p.get("geofence_id")),
        district_code=str(p["district_code"]) if p.get("district_code") else None,
        merchant_id=_int(p.get("merchant_id", ref.get("merchant_id"))), campaign=campaign,
        amount_thb=_decimal(p.get("amount_thb", p.get("purchase_thb"))),
        decision=str(decision) if isinstance(decision, str) else None,
        lat=_float(p.get("lat")), lon=_float(p.get("lon")),
    )


def minute_key(at: dt.datetime) -> str:
    return at.astimezone(dt.UTC).strftime("%Y%m%d%H%M")


class Deltas(msgspec.Struct):
    """What a batch of events adds to every rollup table."""

    daily: dict[tuple[dt.date, str, str], int] = msgspec.field(default_factory=dict)
    activity: dict[tuple[int, dt.date], int] = msgspec.field(default_factory=dict)
    checkins: dict[tuple[dt.date, int, str], list[float]] = msgspec.field(default_factory=dict)
    member_checkins: list[tuple[int, int, dt.datetime, int | None, int | None, str | None]] = \
        msgspec.field(default_factory=list)
    campaigns: dict[tuple[dt.date, str], list[Decimal]] = msgspec.field(default_factory=dict)
    active_minutes: dict[str, set[int]] = msgspec.field(default_factory=dict)


class _Fold:
    """Accumulates one batch; one small method per kind of event."""

    def __init__(self) -> None:
        self.d = Deltas()
        self.daily: defaultdict[tuple[dt.date, str, str], int] = defaultdict(int)
        self.activity: defaultdict[tuple[int, dt.date], int] = defaultdict(int)
        self.minutes: defaultdict[str, set[int]] = defaultdict(set)

    def add(self, ev: Event, metric: str, value: int, dim: str = "") -> None:
        self.daily[(ev.day, metric, dim)] += value

    def campaign(self, ev: Event, points: int, thb: Decimal, scans: int) -> None:
        if ev.campaign is None:
            return
        acc = self.d.campaigns.setdefault((ev.day, ev.campaign), [Decimal(0)] * 3)
        acc[0] += points
        acc[1] += thb
        acc[2] += scans

    def event(self, ev: Event) -> None:
        if ev.topic in ACTIVITY_TOPICS and ev.member_id is not None:
            self.activity[(ev.member_id, ev.day)] += 1
            self.minutes[minute_key(ev.at)].add(ev.member_id)
            self.add(ev, "events_hour", 1, str(ev.hour))
        if ev.topic in COMPLETION_TOPICS:
            self.completion(ev)
        elif ev.topic == "scan.purchase":
            self.scan(ev)
        elif ev.topic == "redemption.created":
            self.add(ev, "redemptions", 1)
            self.add(ev, "redemption_points", max(ev.points, 0))
        elif ev.topic == "coupon.posted":
            self.add(ev, "coupons_posted", 1)
            self.add(ev, "points_redeemed", max(ev.points, 0))
            if ev.merchant_id is not None:
                self.add(ev, "merchant", 1, str(ev.merchant_id))
                self.add(ev, "merchant_redeemed", 1, str(ev.merchant_id))

    def completion(self, ev: Event) -> None:
        if ev.topic == CHECKIN_TOPIC:
            self.add(ev, "checkins", 1, ev.decision or "")
        if not ev.accepted:
            return
        self.add(ev, "missions_completed", 1)
        if ev.mission_id is not None:
            self.add(ev, "mission", 1, str(ev.mission_id))
        self.campaign(ev, ev.points, Decimal(0), 0)
        if ev.topic == CHECKIN_TOPIC:
            self.checkin(ev)

    def checkin(self, ev: Event) -> None:
        acc = self.d.checkins.setdefault((ev.day, ev.geofence_id or 0, ev.district_code or ""),
                                         [0.0, 0.0, 0.0, 0.0])
        acc[0] += 1
        if ev.lat is not None and ev.lon is not None:
            acc[1] += ev.lat
            acc[2] += ev.lon
            acc[3] += 1
        if ev.member_id is not None:
            self.d.member_checkins.append((ev.outbox_id, ev.member_id, ev.at, ev.mission_id,
                                           ev.geofence_id, ev.district_code))

    def scan(self, ev: Event) -> None:
        self.add(ev, "scans", 1)
        if ev.merchant_id is not None:
            m = str(ev.merchant_id)
            self.add(ev, "merchant", 1, m)
            self.add(ev, "merchant_points", ev.points, m)
            self.add(ev, "merchant_spend_satang", int(ev.amount_thb * 100), m)
        self.campaign(ev, ev.points, ev.amount_thb, 1)


def fold(events: Iterable[Event]) -> Deltas:
    """Fold events into rollup deltas (pure; the repository adds them in one transaction)."""
    f = _Fold()
    for ev in events:
        f.event(ev)
    f.d.daily = dict(f.daily)
    f.d.activity = dict(f.activity)
    f.d.active_minutes = dict(f.minutes)
    return f.d


# Ledger transfers that put points into a member's pocket: awards, and admin adjustments up
# (an adjustment down has no funder). Reversals and expiry are not awards.
def awarded_points(kind: str, funder_id: int | None, amount: int) -> int:
    if kind == "award" or (kind == "adjust" and funder_id is not None):
        return amount
    return 0


def fold_transfers(rows: Iterable[tuple[str, int | None, int, dt.datetime]]
                   ) -> dict[tuple[dt.date, str, str], int]:
    """Daily points awarded (total and per funder) from ledger transfers."""
    out: defaultdict[tuple[dt.date, str, str], int] = defaultdict(int)
    for kind, funder_id, amount, created_at in rows:
        points = awarded_points(kind, funder_id, amount)
        day = created_at.astimezone(BANGKOK).date()
        if points:
            out[(day, "points_awarded", "")] += points
            out[(day, "funder_awarded", str(funder_id))] += points
        elif kind == "adjust":
            out[(day, "points_adjusted_down", "")] += amount
    return dict(out)


def contiguous_prefix(cursor: int, rows: list[tuple[int, dt.datetime]], now: dt.datetime,
                      gap_wait_s: float = GAP_WAIT_S) -> int:
    """How many of ``rows`` (ids ascending, after ``cursor``) are safe to consume now.

    Identity values are handed out before commit, so a row with a higher id can become visible
    before a lower one. Stop at the first gap unless the row after it is older than
    ``gap_wait_s``, in which case the missing id was rolled back (or is a burned sequence value).
    """
    expected = cursor + 1
    for i, (oid, created) in enumerate(rows):
        if oid != expected and (now - created).total_seconds() < gap_wait_s:
            return i
        expected = oid + 1
    return len(rows)


def webhook_body(event: Event) -> dict[str, Any]:
    """The agency-facing payload: the public event name and whitelisted, non-personal fields."""
    body: dict[str, Any] = {"event": WEBHOOK_EVENTS[event.topic], "id": event.outbox_id,
                            "at": event.at.astimezone(dt.UTC).isoformat()}
    for name in WEBHOOK_FIELDS:
        value = getattr(event, name, None)
        if value is not None:
            body[name] = value
    if event.campaign is not None:
        body["campaign"] = event.campaign
    return body


# ---------------------------------------------------------------------------------------------
# Cohorts and return rate.

def week_start(day: dt.date) -> dt.date:
    """The Monday of ``day``'s ISO week."""
    return day - dt.timedelta(days=day.weekday())


class CohortRow(msgspec.Struct):
    cohort_week: dt.date
    size: int
    active: list[int]
    retention: list[float | None]


def retention_matrix(sizes: Mapping[dt.date, int], active: Mapping[tuple[dt.date, int], int],
                     weeks: int, as_of: dt.date) -> list[CohortRow]:
    """Rows per signup week: members active k weeks after signup / cohort size.

    ``active[(cohort_week, k)]`` is the number of distinct cohort members active in week k.
    Weeks that have not started by ``as_of`` are None, not 0: nobody could have come back yet.
    """
    rows: list[CohortRow] = []
    current = week_start(as_of)
    for cw in sorted(sizes):
        size = sizes[cw]
        counts: list[int] = []
        rates: list[float | None] = []
        for k in range(weeks):
            if cw + dt.timedelta(weeks=k) > current:
                counts.append(0)
                rates.append(None)
                continue
            n = active.get((cw, k), 0)
            counts.append(n)
            rates.append(round(n / size, 4) if size else 0.0)
        rows.append(CohortRow(cohort_week=cw, size=size, active=counts, retention=rates))
    return rows


def return_windows(as_of: dt.date, days: int = 30) -> tuple[dt.date, dt.date, dt.date]:
    """(previous window start, current window start, as_of): two back-to-back windows of
    ``days`` days each, the current one ending on ``as_of`` inclusive."""
    current = as_of - dt.timedelta(days=days - 1)
    return current - dt.timedelta(days=days), current, as_of


def ratio(numerator: int | float, denominator: int | float) -> float:
    return round(numerator / denominator, 4) if denominator else 0.0


def peak_hour(hours: Mapping[int, int]) -> int | None:
    """The Asia/Bangkok hour with most activity (earliest on a tie), None on an empty day."""
    best = [h for h, n in hours.items() if n > 0]
    if not best:
        return None
    return min(best, key=lambda h: (-hours[h], h))


def roi(points_cost: int, spend_thb: Decimal, point_value_thb: Decimal) -> dict[str, Any]:
    """Spend recorded by merchants per baht of points given away."""
    cost_thb = Decimal(points_cost) * point_value_thb
    return {"points_cost": points_cost, "cost_thb": str(cost_thb.quantize(Decimal("0.01"))),
            "spend_thb": str(spend_thb.quantize(Decimal("0.01"))),
            "spend_per_point_thb": (str((spend_thb / points_cost).quantize(Decimal("0.01")))
                                    if points_cost else None),
            "roi": (float(((spend_thb - cost_thb) / cost_thb).quantize(Decimal("0.0001")))
                    if cost_thb else None)}


# ---------------------------------------------------------------------------------------------
# Access policy: the one place that decides who sees what.

Access = Literal["aggregate", "business", "members", "pao", "shop"]
"""Data classes of routes.

- ``aggregate``: counts with no identity (any admin).
- ``business``: merchants, scans, redemptions (any admin: PAO and Chamber).
- ``members``: member-level rows; the PAO sees them whole, the Chamber only without personal
  fields (:data:`PERSONAL_FIELDS`).
- ``pao``: PAO-only administration (agency keys and webhooks).
- ``shop``: one merchant's own data (that merchant's staff only).
"""

ORGS = ("pao", "chamber")
PERSONAL_FIELDS = frozenset({"display_name", "line_sub", "name", "line_id", "phone", "email"})


def allowed(role: str, org: str | None, access: Access) -> bool:
    """Whether a caller with ``role``/``org`` may call a route of class ``access``."""
    if role == "admin" and org in ORGS:
        return access != "shop" and (access != "pao" or org == "pao")
    if role == "merchant":
        return access == "shop"
    return False


def sees_personal_data(role: str, org: str | None) -> bool:
    return role == "admin" and org == "pao"


def shop_allowed(role: str, own_merchant_id: int | None, target_merchant_id: int) -> bool:
    """Merchant staff only ever see their own shop; admins see any (business data)."""
    if role == "admin":
        return True
    return role == "merchant" and own_merchant_id == target_merchant_id


def redact(rows: list[dict[str, Any]], role: str, org: str | None) -> list[dict[str, Any]]:
    """Drop members' personal fields for anyone but the PAO."""
    if sees_personal_data(role, org):
        return rows
    return [{k: v for k, v in r.items() if k not in PERSONAL_FIELDS} for r in rows]
