"""Agency API' refusal codes, registered in the one catalogue (:mod:`kuekan.errors`).

The package's ``__init__`` imports this module, so any use of the package registers them.
"""

from __future__ import annotations

from kuekan.errors import register

REFUSALS = register({
    "invalid_api_key": (401, "Missing, unknown or revoked API key",
                        "คีย์ API ไม่ถูกต้องหรือถูกยกเลิกแล้ว"),
    "api_key_scope_missing": (403, "This API key lacks the scope for this data",
                              "คีย์ API นี้ไม่มีสิทธิ์สำหรับข้อมูลนี้"),
    "api_key_not_found": (404, "API key not found", "ไม่พบคีย์ API"),
    "webhook_url_refused": (422, "Webhook URL refused: it must resolve to public addresses",
                            "ไม่อนุญาต URL ของ webhook นี้: ต้องเป็นที่อยู่สาธารณะ"),
})
