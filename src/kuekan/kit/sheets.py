"""Spreadsheet exports never turn a caller's text into a formula.

Merchant names, campaign codes and reasons come from callers and land in the settlement and
analytics exports that finance staff open in Excel. A cell ``=HYPERLINK(...)`` or
``=cmd|' /C calc'!A0`` would run as a formula there (CSV/formula injection). XlsxWriter writes
strings that start with ``=`` as formulas unless told not to (``WORKBOOK_OPTIONS``); a CSV has
no types at all, so a text that a spreadsheet would read as a formula gets a leading
apostrophe (``csv_cell``), which Excel and LibreOffice show as plain text.
"""

from __future__ import annotations

from typing import Any

WORKBOOK_OPTIONS: dict[str, Any] = {
    "in_memory": True,
    "strings_to_formulas": False,  # "=..." is written as text
    "strings_to_urls": False,  # "http://..." stays text, not a live link
}
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\n")


def csv_cell(value: Any) -> Any:
    """A CSV value a spreadsheet shows as the text it is (numbers pass unchanged)."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value
