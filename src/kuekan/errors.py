"""Domain errors, the one refusal catalogue, and their RFC 9457 mapping.

Every refusal a user can cause is a :class:`DomainError` carrying a stable ``code``, an HTTP
status and a message in Thai and English. The texts live in one catalogue, keyed by code:
the codes shared by several domains (the ledger's SQL functions, authentication, idempotency,
the HTTP layer) are registered below, and each domain registers its own codes from its
``refusals.py``, which its package ``__init__`` imports, so importing any module of a domain
registers that domain's codes. :func:`known` is the one lookup, used by Python code and by the
mapping of refusals raised inside SQL (``kuekan.db.pool``), which knows only the code.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, NamedTuple


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


class Refusal(NamedTuple):
    """One catalogue entry: the HTTP status a code usually carries and its two messages."""

    status: int
    en: str
    th: str


_CATALOGUE: dict[str, Refusal] = {}
CATALOGUE: Mapping[str, Refusal] = MappingProxyType(_CATALOGUE)

# What an unregistered code says; the catalogue test keeps every raised code out of it.
FALLBACK_TH = "ไม่สามารถทำรายการได้"


def register(entries: Mapping[str, tuple[int, str, str]]) -> Mapping[str, Refusal]:
    """Add refusal codes to the catalogue (at import); returns the entries added.

    A code registered twice must say the same thing both times: two domains giving one code two
    different texts is a bug, caught when the second module is imported.
    """
    added: dict[str, Refusal] = {}
    for code, (status, en, th) in entries.items():
        entry = Refusal(status, en, th)
        previous = _CATALOGUE.get(code)
        if previous is not None and previous != entry:
            raise ValueError(f"refusal code {code!r} registered twice with different texts")
        _CATALOGUE[code] = entry
        added[code] = entry
    return MappingProxyType(added)


def known(code: str, status: int | None = None, *, en: str | None = None,
          th: str | None = None, **extra: Any) -> DomainError:
    """The DomainError for a catalogue code: one text per code, wherever it is raised.

    ``status`` overrides the catalogue's (a refusal raised in SQL carries its own, from the
    SQLSTATE); ``en``/``th`` replace the text where the message names a detail (which field,
    which limit); ``extra`` members are added to the problem document.
    """
    entry = _CATALOGUE.get(code)
    if entry is None:
        entry = Refusal(409, code.replace("_", " ").capitalize(), FALLBACK_TH)
    return DomainError(code, status or entry.status, en or entry.en, th or entry.th,
                       extra=extra or None)


def invalid(detail_en: str, detail_th: str | None = None, **extra: Any) -> DomainError:
    """A 422 payload validation error naming what is wrong."""
    return known("validation_failed", en=detail_en, th=detail_th, **extra)


# Codes shared by several domains: raised by the ledger's SQL functions (0002: kk_refuse) and
# Python alike, by authentication, by the idempotency gate and by the HTTP layer.
SHARED = register({
    # The HTTP layer (kuekan.app).
    "validation_failed": (422, "Invalid request", "ข้อมูลที่ส่งมาไม่ถูกต้อง"),
    "internal_error": (500, "Internal error", "เกิดข้อผิดพลาดภายในระบบ"),
    "temporarily_unavailable": (503, "Temporarily unavailable; retry with the same Idempotency-Key",
                                "ระบบไม่พร้อมให้บริการชั่วคราว โปรดลองใหม่ด้วย Idempotency-Key เดิม"),
    "not_found": (404, "Not found", "ไม่พบข้อมูลที่ร้องขอ"),
    "forbidden": (403, "Forbidden", "ไม่มีสิทธิ์"),
    "method_not_allowed": (405, "Method not allowed", "ไม่รองรับเมธอดนี้"),
    "payload_too_large": (413, "Request body too large", "ข้อมูลมีขนาดใหญ่เกินไป"),
    "unsupported_media_type": (415, "Unsupported media type", "ไม่รองรับชนิดข้อมูลนี้"),
    "http_error": (400, "Bad request", "คำขอไม่ถูกต้อง"),
    "already_exists": (409, "Something with the same unique value exists",
                       "มีข้อมูลที่ซ้ำกันอยู่แล้ว"),
    "rate_limited": (429, "Too many requests", "มีคำขอมากเกินไป โปรดลองใหม่ภายหลัง"),
    # Authentication and roles (kuekan.auth).
    "unauthorized": (401, "Missing, invalid or expired token", "โทเค็นไม่ถูกต้องหรือหมดอายุ"),
    "forbidden_role": (403, "Your role cannot use this route",
                       "สิทธิ์ของคุณไม่สามารถใช้งานส่วนนี้ได้"),
    # Staff and admin sign-in, sessions and the access policy (kuekan.auth.staff, .policy).
    "staff_disabled": (401, "This staff or admin sign-in is disabled or was changed; sign in"
                       " again", "บัญชีพนักงานนี้ถูกระงับหรือเปลี่ยนแปลง กรุณาเข้าสู่ระบบใหม่"),
    "member_banned": (403, "This member account is banned or erased",
                      "บัญชีสมาชิกนี้ถูกระงับถาวรหรือถูกลบแล้ว"),
    "refresh_token_invalid": (401, "Refresh token unknown, expired or revoked; sign in again",
                              "โทเค็นสำหรับต่ออายุไม่ถูกต้อง กรุณาเข้าสู่ระบบใหม่"),
    "refresh_token_reused": (401, "Refresh token already used; every session of this sign-in"
                             " is revoked, sign in again",
                             "โทเค็นสำหรับต่ออายุถูกใช้ไปแล้ว ทุกเซสชันถูกยกเลิก กรุณาเข้าสู่ระบบใหม่"),
    "invitation_invalid": (403, "The invitation code is unknown, used or expired",
                           "รหัสคำเชิญไม่ถูกต้อง ถูกใช้แล้ว หรือหมดอายุ"),
    "staff_not_invited": (403, "This LINE account is not linked to a merchant or an"
                          " organisation; ask an admin for an invitation",
                          "บัญชี LINE นี้ยังไม่ได้รับคำเชิญ กรุณาขอคำเชิญจากผู้ดูแลระบบ"),
    "forbidden_scope": (403, "Your organisation may not see this data",
                        "หน่วยงานของคุณไม่มีสิทธิ์เข้าถึงข้อมูลนี้"),
    "org_not_found": (404, "Unknown organisation", "ไม่พบหน่วยงานนี้"),
    "staff_not_found": (404, "Staff member not found", "ไม่พบพนักงาน"),
    "invalid_id_token": (401, "LINE ID token rejected", "โทเค็น LINE ไม่ถูกต้อง"),
    "line_unavailable": (503, "LINE keys unavailable", "ไม่สามารถตรวจสอบกับ LINE ได้ในขณะนี้"),
    # The idempotency gate (kuekan.idempotency).
    "idempotency_key_in_flight": (
        409, "A request with this Idempotency-Key is still being processed; retry shortly",
        "คำขอที่ใช้ Idempotency-Key นี้กำลังดำเนินการอยู่ โปรดลองใหม่อีกครั้ง"),
    "idempotency_key_reused": (
        422, "This Idempotency-Key was already used with a different request body",
        "Idempotency-Key นี้ถูกใช้กับคำขออื่นแล้ว"),
    "idempotency_key_required": (
        400, "The Idempotency-Key header is required (1-255 characters)",
        "ต้องระบุ Idempotency-Key (1-255 ตัวอักษร)"),
    # The ledger's SQL functions (and Python checks of the same rules).
    "insufficient_points": (409, "Not enough available points", "แต้มคงเหลือไม่เพียงพอ"),
    "daily_limit_reached": (409, "Daily points limit reached", "ถึงขีดจำกัดแต้มรายวันแล้ว"),
    "merchant_daily_cap_reached": (409, "The merchant's daily award cap is reached",
                                   "ร้านค้าให้แต้มครบเพดานรายวันแล้ว"),
    "funder_budget_exhausted": (409, "The funder's points budget is exhausted",
                                "งบประมาณแต้มของผู้สนับสนุนหมดแล้ว"),
    "mission_budget_exhausted": (409, "The mission's points budget is exhausted",
                                 "งบประมาณแต้มของภารกิจหมดแล้ว"),
    "member_on_hold": (403, "Your account is on hold pending review",
                       "บัญชีของคุณถูกระงับชั่วคราวระหว่างการตรวจสอบ"),
    "member_not_found": (404, "Member not found", "ไม่พบสมาชิก"),
    "merchant_not_found": (404, "Merchant not found", "ไม่พบร้านค้า"),
    "funder_not_found": (404, "Funder not found", "ไม่พบผู้สนับสนุนแต้ม"),
    "transfer_not_found": (404, "Transfer not found", "ไม่พบรายการโอนแต้ม"),
    "transfer_not_reversible": (409, "This transfer cannot be reversed",
                                "รายการนี้ไม่สามารถกลับรายการได้"),
    "transfer_already_reversed": (409, "This transfer was already reversed",
                                  "รายการนี้ถูกกลับรายการแล้ว"),
    "pending_not_found": (404, "Reservation not found", "ไม่พบรายการจองแต้ม"),
    "pending_not_open": (409, "The reservation is no longer open", "รายการจองแต้มนี้ปิดไปแล้ว"),
    "coupon_already_used": (409, "This coupon has already been used", "คูปองนี้ถูกใช้ไปแล้ว"),
    "coupon_void": (409, "This coupon is void", "คูปองนี้ถูกยกเลิกแล้ว"),
    "coupon_expired": (409, "This coupon has expired", "คูปองนี้หมดอายุแล้ว"),
    "invalid_amount": (422, "Points must be a positive integer", "จำนวนแต้มต้องเป็นจำนวนเต็มบวก"),
    "funder_code_taken": (409, "A funder with this code exists", "รหัสผู้สนับสนุนนี้ถูกใช้แล้ว"),
})
