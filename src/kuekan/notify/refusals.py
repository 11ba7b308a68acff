"""Notifications' refusal codes, registered in the one catalogue (:mod:`kuekan.errors`).

The package's ``__init__`` imports this module, so any use of the package registers them.
"""

from __future__ import annotations

from kuekan.errors import register

REFUSALS = register({
    "invalid_msisdn": (422, "Enter a Thai mobile number, e.g. 081 234 5678 or +66 81 234 5678",
                       "กรุณากรอกหมายเลขโทรศัพท์มือถือไทย เช่น 081 234 5678 หรือ +66 81 234 5678"),
    "webhook_body_too_large": (413, "Webhook body too large", "ข้อมูล webhook มีขนาดใหญ่เกินไป"),
    "invalid_webhook_payload": (400, "Invalid LINE webhook payload",
                                "ข้อมูล webhook จาก LINE ไม่ถูกต้อง"),
    "invalid_signature": (401, "X-Line-Signature does not verify",
                          "ลายเซ็น X-Line-Signature ไม่ถูกต้อง"),
    "otp_rate_limited": (429, "Too many OTP requests; retry later",
                         "ขอรหัส OTP บ่อยเกินไป โปรดลองใหม่ภายหลัง"),
    "otp_invalid": (409, "The code is wrong or expired", "รหัส OTP ไม่ถูกต้องหรือหมดอายุ"),
})
