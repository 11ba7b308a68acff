"""Report files, the one way: CSV (UTF-8 with a BOM, so Excel reads Thai text right) and xlsx
(XlsxWriter, in memory, header row bold). Pure: bytes in memory, no I/O."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

import xlsxwriter

from kuekan.kit.sheets import WORKBOOK_OPTIONS, csv_cell

Rows = Sequence[Mapping[str, Any]]
SHEET_NAME_MAX = 31  # Excel's limit
COLUMN_WIDTH = 16


def columns_of(rows: Rows) -> list[str]:
    """The columns of rows that all share the first row's keys."""
    return list(rows[0]) if rows else []


def to_csv(columns: Sequence[str], rows: Rows) -> bytes:
    """One CSV file: a header of ``columns`` (none when there are none), then one line a row."""
    buf = io.StringIO()
    w = csv.writer(buf)
    if columns:
        w.writerow(columns)
    for r in rows:
        w.writerow([csv_cell(cell(r.get(c), numeric=False)) for c in columns])
    return buf.getvalue().encode("utf-8-sig")


def to_xlsx(sheets: Mapping[str, tuple[Sequence[str], Rows]]) -> bytes:
    """One workbook, one sheet per entry (name cut to Excel's 31 characters)."""
    buf = io.BytesIO()
    book = xlsxwriter.Workbook(buf, WORKBOOK_OPTIONS)
    bold = book.add_format({"bold": True})
    for name, (columns, rows) in sheets.items():
        sheet = book.add_worksheet(name[:SHEET_NAME_MAX])
        if columns:
            sheet.write_row(0, 0, list(columns), bold)
            sheet.set_column(0, len(columns) - 1, COLUMN_WIDTH)
        for i, r in enumerate(rows, start=1):
            sheet.write_row(i, 0, [cell(r.get(c), numeric=True) for c in columns])
    book.close()
    return buf.getvalue()


def cell(v: Any, *, numeric: bool) -> Any:
    """A value as a cell: dates in ISO 8601, lists and objects as JSON, decimals exact in CSV
    and as numbers in a workbook."""
    if isinstance(v, Decimal):
        return float(v) if numeric else str(v)
    if isinstance(v, dt.date | dt.datetime):
        return v.isoformat()
    if isinstance(v, list | dict):
        return json.dumps(v, ensure_ascii=False, default=str)
    return v
