"""Thai and English message templates rendered to LINE text messages.

Each kind names its parameters exactly; a missing, unexpected or mistyped parameter raises
:class:`TemplateError` naming them, so a typo in a worker fails loudly instead of sending
"{points}" to ten thousand people. Dates are shown in Thai style with the Buddhist Era year.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

Lang = Literal["th", "en"]
TemplateKind = Literal[
    "points_digest",
    "coupon_expiring",
    "points_expiring",
    "mission_nearby",
    "province_broadcast",
    "disaster_alert",
]

# LINE rejects a text message over 5,000 characters.
TEXT_CHARS_MAX = 5_000
BUDDHIST_ERA_OFFSET_YEARS = 543
THAI_MONTHS_SHORT = (
    "ม.ค.", "ก.พ.", "มี.ค.", "เม.ย.", "พ.ค.", "มิ.ย.",
    "ก.ค.", "ส.ค.", "ก.ย.", "ต.ค.", "พ.ย.", "ธ.ค.",
)


class TemplateError(ValueError):
    """A template was asked for with the wrong kind, language or parameters."""


def _date(day: dt.date, lang: Lang) -> str:
    if lang == "th":
        year_be = day.year + BUDDHIST_ERA_OFFSET_YEARS
        return f"{day.day} {THAI_MONTHS_SHORT[day.month - 1]} {year_be}"
    return f"{day.day} {day:%b} {day.year}"


def _count(n: int, word: str) -> str:
    return f"{n:,} {word}" if n == 1 else f"{n:,} {word}s"


def _points_digest(lang: Lang, p: Mapping[str, Any]) -> str:
    if lang == "th":
        return f"วันนี้คุณได้รับ {p['points']:,} แต้ม จากการเช็กอิน {p['checkins']:,} ครั้ง"
    return (
        f"You earned {_count(p['points'], 'point')} from "
        f"{_count(p['checkins'], 'check-in')} today"
    )


def _coupon_expiring(lang: Lang, p: Mapping[str, Any]) -> str:
    on = _date(p["expires_on"], lang)
    if lang == "th":
        return f"คูปอง “{p['coupon_name']}” จะหมดอายุในอีก {p['days']} วัน ({on}) อย่าลืมใช้นะ"
    return f"Your coupon “{p['coupon_name']}” expires in {_count(p['days'], 'day')}, on {on}."


def _points_expiring(lang: Lang, p: Mapping[str, Any]) -> str:
    on = _date(p["expires_on"], lang)
    if lang == "th":
        return f"แต้มของคุณ {p['points']:,} แต้มจะหมดอายุภายในเดือนนี้ ({on}) ใช้ก่อนหมดอายุนะ"
    return f"{_count(p['points'], 'point')} expire this month, on {on}. Use them before then."


def _mission_nearby(lang: Lang, p: Mapping[str, Any]) -> str:
    if lang == "th":
        return f"ภารกิจใหม่ใกล้คุณใน{p['district']}: {p['mission_title']}"
    return f"New mission near you in {p['district']}: {p['mission_title']}"


def _province_broadcast(lang: Lang, p: Mapping[str, Any]) -> str:
    if lang == "th":
        return f"📢 ประกาศจากจังหวัดนครราชสีมา: {p['title']}\n{p['body']}"
    return f"📢 Nakhon Ratchasima announcement: {p['title']}\n{p['body']}"


def _disaster_alert(lang: Lang, p: Mapping[str, Any]) -> str:
    if lang == "th":
        return f"⚠️ แจ้งเตือนภัย{p['hazard']} พื้นที่{p['district']}\n{p['instructions']}"
    return f"⚠️ {p['hazard']} alert for {p['district']}\n{p['instructions']}"


@dataclass(frozen=True, slots=True)
class _Spec:
    params: Mapping[str, type]
    text: Callable[[Lang, Mapping[str, Any]], str]


_SPECS: Mapping[str, _Spec] = {
    "points_digest": _Spec({"points": int, "checkins": int}, _points_digest),
    "coupon_expiring": _Spec(
        {"coupon_name": str, "days": int, "expires_on": dt.date}, _coupon_expiring
    ),
    "points_expiring": _Spec({"points": int, "expires_on": dt.date}, _points_expiring),
    "mission_nearby": _Spec({"mission_title": str, "district": str}, _mission_nearby),
    "province_broadcast": _Spec({"title": str, "body": str}, _province_broadcast),
    "disaster_alert": _Spec(
        {"hazard": str, "district": str, "instructions": str}, _disaster_alert
    ),
}

KINDS: tuple[str, ...] = tuple(_SPECS)


def _check_params(kind: str, spec: _Spec, params: Mapping[str, Any]) -> None:
    missing = sorted(set(spec.params) - set(params))
    unexpected = sorted(set(params) - set(spec.params))
    if missing or unexpected:
        raise TemplateError(
            f"template {kind!r}: missing params {missing}, unexpected params {unexpected}"
        )
    for name, expected in spec.params.items():
        value = params[name]
        # bool is an int subclass and a datetime is a date subclass; neither is meant here.
        wrong = not isinstance(value, expected) or isinstance(value, bool) or (
            expected is dt.date and isinstance(value, dt.datetime)
        )
        if wrong:
            raise TemplateError(
                f"template {kind!r}: param {name!r} must be {expected.__name__}, "
                f"got {type(value).__name__}"
            )
        if expected is int and value < 0:
            raise TemplateError(f"template {kind!r}: param {name!r} must not be negative")
        if expected is str and not value.strip():
            raise TemplateError(f"template {kind!r}: param {name!r} must not be blank")


def render_text(kind: str, lang: str, **params: Any) -> str:
    """The message text of ``kind`` in ``lang``; see :func:`render`."""
    spec = _SPECS.get(kind)
    if spec is None:
        raise TemplateError(f"unknown template {kind!r}; known: {list(KINDS)}")
    if lang not in ("th", "en"):
        raise TemplateError(f"unknown language {lang!r}; use 'th' or 'en'")
    _check_params(kind, spec, params)
    text = spec.text("th" if lang == "th" else "en", params)
    if len(text) > TEXT_CHARS_MAX:
        raise TemplateError(f"template {kind!r} rendered {len(text)} chars; LINE allows 5,000")
    return text


def render(kind: str, lang: str, **params: Any) -> dict[str, str]:
    """A LINE text message ``{"type": "text", "text": ...}`` for ``kind`` in ``lang``."""
    return {"type": "text", "text": render_text(kind, lang, **params)}
