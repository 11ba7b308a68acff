"""Analytics' refusal codes, registered in the one catalogue (:mod:`kuekan.errors`).

The package's ``__init__`` imports this module, so any use of the package registers them.
"""

from __future__ import annotations

from kuekan.errors import register

REFUSALS = register({
    "forbidden_scope": (403, "Your organisation may not see this data",
                        "หน่วยงานของคุณไม่มีสิทธิ์เข้าถึงข้อมูลนี้"),
})
