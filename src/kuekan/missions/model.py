"""Mission rules and types: pure, no I/O.

A :class:`Mission` is the cached, immutable view the check-in path reads; validation of what an
admin submits, venue codes live here too; refusal texts are in ``refusals.py``.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import math
import secrets
from decimal import Decimal
from typing import Literal

import msgspec

from kuekan.errors import invalid

Kind = Literal["checkin", "event", "purchase", "action", "collection", "chain"]
Recurrence = Literal["once", "daily", "weekly"]
Audience = Literal["all", "resident", "tourist"]

# Kinds a member completes through POST /checkins; the others progress by themselves.
CHECKIN_KINDS = frozenset({"checkin", "event", "action"})
MAX_COLLECTION_PLACES = 1_000
MAX_CHAIN_STEPS = 50
MAX_PURCHASE_TARGETS = 500
MAX_MULTIPLIER = Decimal(10)
MAX_SPEND_THB = Decimal(10_000_000)
# Bounds the number of windows a venue code is checked against (grace_s / rotate_s + 1).
MAX_VENUE_WINDOWS = 721
VENUE_CODE_BYTES = 5  # 40 bits -> 8 base32 characters, easy to read off a screen.


class KindRules(msgspec.Struct, frozen=True, kw_only=True):
    """The fields only some mission kinds use (purchase, collection, chain), declared once for
    the stored mission, the admin's spec and the API's view of a mission."""

    min_spend_thb: Decimal | None = None
    merchant_ids: list[int] | None = None
    categories: list[str] | None = None
    collection_geofence_ids: list[int] | None = None
    collection_required: int | None = None
    badge_code: str | None = None
    reward_multiplier: Decimal | None = None
    reward_multiplier_days: int | None = None
    chain_steps: list[int] | None = None


class Mission(KindRules, frozen=True, kw_only=True):
    """A mission as stored; the check-in path reads it from the in-process catalogue."""

    id: int
    code: str
    kind: Kind
    title_th: str
    title_en: str
    description_th: str = ""
    description_en: str = ""
    points: int
    funder_id: int
    geofence_id: int | None = None
    starts_at: dt.datetime
    ends_at: dt.datetime | None = None
    recurrence: Recurrence = "once"
    per_member_cap: int | None = None
    budget_points: int | None = None
    audience: Audience = "all"
    multiplier_eligible: bool = True
    venue_code_required: bool = False
    venue_secret: str = ""
    venue_code_rotate_s: int = 30
    venue_code_grace_s: int = 60
    status: Literal["active", "disabled"] = "active"

    def is_active(self, now: dt.datetime) -> bool:
        return (self.status == "active" and self.starts_at <= now
                and (self.ends_at is None or now < self.ends_at))


# --- Refusals (texts: kuekan.missions.refusals) -----------------------------------------------


def decision_refusal(decision: str) -> str | None:
    """The refusal code for a geofence decision, or None when the decision accepts."""
    return {"outside": "outside_geofence", "inaccurate": "inaccurate_location"}.get(decision)


# --- Venue codes ------------------------------------------------------------------------------


def new_venue_secret() -> str:
    return secrets.token_hex(32)


def venue_code(secret: str, mission_id: int, window: int) -> str:
    """The code shown on the venue's screen during ``window`` (= unix time // rotate_s)."""
    mac = hmac.new(bytes.fromhex(secret), f"kk-venue:{mission_id}:{window}".encode(),
                   hashlib.sha256).digest()
    return base64.b32encode(mac[:VENUE_CODE_BYTES]).decode()


def venue_window(now_s: float, rotate_s: int) -> int:
    return math.floor(now_s / rotate_s)


def verify_venue_code(code: str | None, *, secret: str, mission_id: int, now_s: float,
                      rotate_s: int, grace_s: int) -> bool:
    """True when ``code`` is the current code or one shown within the last ``grace_s``."""
    if not code or len(code) > 32:
        return False
    given = code.strip().upper().replace("-", "").replace(" ", "")
    newest = venue_window(now_s, rotate_s)
    oldest = max(venue_window(now_s - grace_s, rotate_s), newest - MAX_VENUE_WINDOWS + 1)
    ok = False
    for window in range(oldest, newest + 1):
        # Check every window (no early exit) so timing does not tell which one matched.
        ok |= hmac.compare_digest(given, venue_code(secret, mission_id, window))
    return ok


# --- Validation of admin input ----------------------------------------------------------------


class MissionSpec(KindRules, frozen=True, kw_only=True):
    """What an admin may set on a mission (create, or the merged result of an update)."""

    code: str
    kind: Kind
    title_th: str
    title_en: str
    points: int
    funder_id: int
    starts_at: dt.datetime
    ends_at: dt.datetime | None = None
    geofence_id: int | None = None
    recurrence: Recurrence = "once"
    per_member_cap: int | None = None
    budget_points: int | None = None
    audience: Audience = "all"
    multiplier_eligible: bool = True
    venue_code_required: bool = False
    venue_code_rotate_s: int = 30
    venue_code_grace_s: int = 60
    description_th: str = ""
    description_en: str = ""


def validate_spec(spec: MissionSpec) -> MissionSpec:
    """Check the rules that tie fields together; raise a 422 naming the first broken one."""
    if spec.starts_at.tzinfo is None or (spec.ends_at is not None and spec.ends_at.tzinfo is None):
        raise invalid("starts_at and ends_at need a UTC offset", "เวลาต้องระบุเขตเวลา")
    if spec.ends_at is not None and spec.ends_at <= spec.starts_at:
        raise invalid("ends_at must be after starts_at", "เวลาสิ้นสุดต้องหลังเวลาเริ่มต้น")
    if (spec.reward_multiplier is None) != (spec.reward_multiplier_days is None):
        raise invalid("reward_multiplier and reward_multiplier_days go together",
                      "ต้องระบุตัวคูณและจำนวนวันคู่กัน")
    if spec.reward_multiplier is not None and not 1 <= spec.reward_multiplier <= MAX_MULTIPLIER:
        raise invalid(f"reward_multiplier must be between 1 and {MAX_MULTIPLIER}",
                      "ตัวคูณแต้มไม่ถูกต้อง")
    if spec.min_spend_thb is not None and not 0 < spec.min_spend_thb <= MAX_SPEND_THB:
        raise invalid(f"min_spend_thb must be > 0 and <= {MAX_SPEND_THB}", "ยอดซื้อขั้นต่ำไม่ถูกต้อง")
    _KIND_RULES[spec.kind](spec)
    return spec


def _checkin(spec: MissionSpec) -> None:
    if spec.geofence_id is None and not spec.venue_code_required:
        raise invalid("a checkin mission needs a geofence_id, a venue code, or both",
                      "ภารกิจเช็คอินต้องมีรั้วพิกัดหรือรหัสสถานที่")
    _no_targets(spec)


def _event(spec: MissionSpec) -> None:
    if spec.geofence_id is None or spec.ends_at is None:
        raise invalid("an event mission needs a geofence_id and an ends_at",
                      "ภารกิจกิจกรรมต้องมีรั้วพิกัดและเวลาสิ้นสุด")
    _no_targets(spec)


def _action(spec: MissionSpec) -> None:
    if not spec.venue_code_required:
        raise invalid("an action mission is confirmed by an organiser code:"
                      " set venue_code_required",
                      "ภารกิจกิจกรรมต้องยืนยันด้วยรหัสจากผู้จัด")
    _no_targets(spec)


def _purchase(spec: MissionSpec) -> None:
    if spec.min_spend_thb is None or spec.min_spend_thb <= 0:
        raise invalid("a purchase mission needs min_spend_thb > 0", "ต้องระบุยอดซื้อขั้นต่ำ")
    if spec.geofence_id is not None or spec.venue_code_required:
        raise invalid("a purchase mission is progressed by merchant scans, not check-ins",
                      "ภารกิจซื้อสินค้าไม่ใช้การเช็คอิน")
    targets = len(spec.merchant_ids or []) + len(spec.categories or [])
    if targets > MAX_PURCHASE_TARGETS:
        raise invalid(f"at most {MAX_PURCHASE_TARGETS} merchants and categories",
                      "ร้านค้าและหมวดหมู่มากเกินไป")


def _collection(spec: MissionSpec) -> None:
    places = spec.collection_geofence_ids or []
    if not places or len(places) > MAX_COLLECTION_PLACES or len(set(places)) != len(places):
        raise invalid(f"a collection needs 1 to {MAX_COLLECTION_PLACES} distinct geofence ids",
                      "ภารกิจสะสมต้องมีรายการรั้วพิกัดที่ไม่ซ้ำกัน")
    if spec.collection_required is None or not 1 <= spec.collection_required <= len(places):
        raise invalid("collection_required must be between 1 and the number of places",
                      "จำนวนสถานที่ที่ต้องสะสมไม่ถูกต้อง")
    _no_checkin_fields(spec)


def _chain(spec: MissionSpec) -> None:
    steps = spec.chain_steps or []
    if not 2 <= len(steps) <= MAX_CHAIN_STEPS or len(set(steps)) != len(steps):
        raise invalid(f"a chain needs 2 to {MAX_CHAIN_STEPS} distinct step mission ids",
                      "ภารกิจต่อเนื่องต้องมีขั้นตอน 2 ขั้นขึ้นไปที่ไม่ซ้ำกัน")
    _no_checkin_fields(spec)


def _no_targets(spec: MissionSpec) -> None:
    if spec.min_spend_thb is not None or spec.collection_geofence_ids or spec.chain_steps:
        raise invalid(f"a {spec.kind} mission takes no purchase, collection or chain fields",
                      "ภารกิจประเภทนี้ไม่ใช้ข้อมูลการซื้อ การสะสม หรือขั้นตอน")


def _no_checkin_fields(spec: MissionSpec) -> None:
    if spec.geofence_id is not None or spec.venue_code_required:
        raise invalid(f"a {spec.kind} mission completes by itself;"
                      " it has no geofence or venue code",
                      "ภารกิจประเภทนี้ไม่มีรั้วพิกัดหรือรหัสสถานที่")
    if spec.recurrence != "once":
        raise invalid(f"a {spec.kind} mission completes once", "ภารกิจประเภทนี้ทำสำเร็จได้ครั้งเดียว")


_KIND_RULES = {"checkin": _checkin, "event": _event, "action": _action, "purchase": _purchase,
               "collection": _collection, "chain": _chain}
