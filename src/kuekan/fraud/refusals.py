"""Fraud' refusal codes, registered in the one catalogue (:mod:`kuekan.errors`).

The package's ``__init__`` imports this module, so any use of the package registers them.
"""

from __future__ import annotations

from kuekan.errors import register

REFUSALS = register({
    "review_not_found": (404, "Review not found", "ไม่พบรายการตรวจสอบ"),
    "review_closed": (409, "This review was already decided", "รายการตรวจสอบนี้ได้รับการพิจารณาแล้ว"),
    "member_not_holdable": (409, "This member cannot be put on hold",
                            "ไม่สามารถระงับบัญชีสมาชิกนี้ได้"),
    "member_not_on_hold": (409, "This member is not on hold", "สมาชิกนี้ไม่ได้ถูกระงับ"),
    "already_blacklisted": (409, "Already on the blacklist", "อยู่ในบัญชีดำอยู่แล้ว"),
    "blacklist_entry_not_found": (404, "Blacklist entry not found", "ไม่พบรายการในบัญชีดำ"),
})
