"""Outbox' refusal codes, registered in the one catalogue (:mod:`kuekan.errors`).

The package's ``__init__`` imports this module, so any use of the package registers them.
"""

from __future__ import annotations

from kuekan.errors import register

REFUSALS = register({
    "dead_letter_not_found": (404, "No dead-lettered outbox row with this id",
                              "ไม่พบรายการที่ล้มเหลวนี้"),
})
