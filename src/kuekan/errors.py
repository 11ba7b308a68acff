"""Domain errors and their one RFC 9457 mapping.

Every refusal a user can cause is a :class:`DomainError` carrying a stable ``code``, an HTTP
status and a message in Thai and English. The app turns it into ``application/problem+json``.
"""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """A refusal with a stable code, an HTTP status and a Thai/English message."""

    def __init__(
        self,
        code: str,
        status: int,
        message_en: str,
        message_th: str,
        *,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message_en)
        self.code = code
        self.status = status
        self.message_en = message_en
        self.message_th = message_th
        self.extra = extra or {}

    def to_problem(self, instance: str | None = None) -> dict[str, Any]:
        """Return the RFC 9457 problem document for this error."""
        body: dict[str, Any] = {
            "type": f"https://kuekan.dev/problems/{self.code.replace('_', '-')}",
            "title": self.message_en,
            "status": self.status,
            "detail": self.message_en,
            "code": self.code,
            "message_th": self.message_th,
            "message_en": self.message_en,
        }
        if instance:
            body["instance"] = instance
        body.update(self.extra)
        return body


def invalid(detail_en: str, detail_th: str = "ข้อมูลไม่ถูกต้อง", **extra: Any) -> DomainError:
    """A 422 payload validation error."""
    return DomainError("validation_failed", 422, detail_en, detail_th, extra=extra or None)


def not_found(what: str, what_th: str) -> DomainError:
    return DomainError(f"{what}_not_found", 404, f"{what.replace('_', ' ')} not found",
                       f"ไม่พบ{what_th}")


def conflict(code: str, message_en: str, message_th: str, **extra: Any) -> DomainError:
    return DomainError(code, 409, message_en, message_th, extra=extra or None)


def forbidden(code: str, message_en: str, message_th: str) -> DomainError:
    return DomainError(code, 403, message_en, message_th)


# Errors raised from several places, named once so code and message never drift apart.
MEMBER_ON_HOLD = ("member_on_hold", "Your account is on hold pending review",
                  "บัญชีของคุณถูกระงับชั่วคราวระหว่างการตรวจสอบ")
INSUFFICIENT_POINTS = ("insufficient_points", "Not enough available points",
                       "แต้มคงเหลือไม่เพียงพอ")
DAILY_LIMIT = ("daily_limit_reached", "Daily points limit reached",
               "ถึงขีดจำกัดแต้มรายวันแล้ว")
MERCHANT_DAILY_CAP = ("merchant_daily_cap_reached", "The merchant's daily award cap is reached",
                      "ร้านค้าให้แต้มครบเพดานรายวันแล้ว")
FUNDER_BUDGET = ("funder_budget_exhausted", "The funder's points budget is exhausted",
                 "งบประมาณแต้มของผู้สนับสนุนหมดแล้ว")
MISSION_BUDGET = ("mission_budget_exhausted", "The mission's points budget is exhausted",
                  "งบประมาณแต้มของภารกิจหมดแล้ว")


def refusal(spec: tuple[str, str, str], status: int = 409, **extra: Any) -> DomainError:
    """Build a DomainError from one of the named refusal specs above."""
    code, en, th = spec
    return DomainError(code, status, en, th, extra=extra or None)


# Messages for refusals raised inside SQL functions; the SQL side only knows the code.
REFUSAL_TEXT: dict[str, tuple[str, str]] = {
    "insufficient_points": ("Not enough available points", "แต้มคงเหลือไม่เพียงพอ"),
    "daily_limit_reached": ("Daily points limit reached", "ถึงขีดจำกัดแต้มรายวันแล้ว"),
    "merchant_daily_cap_reached": ("The merchant's daily award cap is reached",
                                   "ร้านค้าให้แต้มครบเพดานรายวันแล้ว"),
    "funder_budget_exhausted": ("The funder's points budget is exhausted",
                                "งบประมาณแต้มของผู้สนับสนุนหมดแล้ว"),
    "mission_budget_exhausted": ("The mission's points budget is exhausted",
                                 "งบประมาณแต้มของภารกิจหมดแล้ว"),
    "member_on_hold": ("Your account is on hold pending review",
                       "บัญชีของคุณถูกระงับชั่วคราวระหว่างการตรวจสอบ"),
    "member_not_found": ("Member not found", "ไม่พบสมาชิก"),
    "merchant_not_found": ("Merchant not found", "ไม่พบร้านค้า"),
    "funder_not_found": ("Funder not found", "ไม่พบผู้สนับสนุนแต้ม"),
    "transfer_not_found": ("Transfer not found", "ไม่พบรายการโอนแต้ม"),
    "transfer_not_reversible": ("This transfer cannot be reversed", "รายการนี้ไม่สามารถกลับรายการได้"),
    "transfer_already_reversed": ("This transfer was already reversed", "รายการนี้ถูกกลับรายการแล้ว"),
    "pending_not_found": ("Reservation not found", "ไม่พบรายการจองแต้ม"),
    "pending_not_open": ("The reservation is no longer open", "รายการจองแต้มนี้ปิดไปแล้ว"),
    "coupon_already_used": ("This coupon has already been used", "คูปองนี้ถูกใช้ไปแล้ว"),
    "coupon_void": ("This coupon is void", "คูปองนี้ถูกยกเลิกแล้ว"),
    "coupon_expired": ("This coupon has expired", "คูปองนี้หมดอายุแล้ว"),
    "invalid_amount": ("Points must be a positive integer", "จำนวนแต้มต้องเป็นจำนวนเต็มบวก"),
}


def known(code: str, status: int = 409) -> DomainError:
    """The DomainError for a code of REFUSAL_TEXT (one message per code, wherever raised)."""
    en, th = REFUSAL_TEXT.get(code, (code.replace("_", " ").capitalize(), "ไม่สามารถทำรายการได้"))
    return DomainError(code, status, en, th)
