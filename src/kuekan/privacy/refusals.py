"""Privacy' refusal codes, registered in the one catalogue (:mod:`kuekan.errors`).

The package's ``__init__`` imports this module, so any use of the package registers them.
"""

from __future__ import annotations

from kuekan.errors import register

REFUSALS = register({
    "confirmation_required": (422, "Set confirm to true to erase", "กรุณายืนยันการลบข้อมูล"),
    "erasure_refused_on_hold": (403, "Erasure is not possible while the account is on hold or"
                                " banned", "ไม่สามารถลบข้อมูลได้ขณะที่บัญชีถูกระงับหรือถูกแบน"),
})
