"""Report files: CSV with a BOM and exact decimals, xlsx with one sheet per entry."""

from __future__ import annotations

import datetime as dt
import io
import zipfile
from decimal import Decimal

from kuekan.kit.export import columns_of, to_csv, to_xlsx

ROWS = [{"day": dt.date(2026, 12, 1), "name": "ร้านโคราช", "thb": Decimal("350.50"),
         "tags": ["otop", "ผ้าไหม"]},
        {"day": dt.date(2026, 12, 2), "name": "B", "thb": Decimal(0), "tags": []}]


def test_csv_has_a_bom_a_header_and_one_line_a_row_in_column_order() -> None:
    body = to_csv(["name", "thb", "day", "tags"], ROWS)
    assert body.startswith(b"\xef\xbb\xbf")
    lines = body.decode("utf-8-sig").splitlines()
    assert lines[0] == "name,thb,day,tags"
    assert lines[1] == 'ร้านโคราช,350.50,2026-12-01,"[""otop"", ""ผ้าไหม""]"'
    assert len(lines) == 3


def test_csv_without_rows_or_columns_is_empty() -> None:
    assert to_csv(columns_of([]), []) == b"\xef\xbb\xbf"
    assert columns_of(ROWS) == ["day", "name", "thb", "tags"]


def test_xlsx_has_one_sheet_per_entry_with_the_texts() -> None:
    body = to_xlsx({"a very long sheet name over thirty-one chars": (["name"], ROWS),
                    "second": (["thb"], ROWS[:1])})
    book = zipfile.ZipFile(io.BytesIO(body))
    sheets = [n for n in book.namelist() if n.startswith("xl/worksheets/sheet")]
    assert len(sheets) == 2
    workbook = book.read("xl/workbook.xml").decode()
    assert "a very long sheet name over thi" in workbook and "second" in workbook
    strings = book.read("xl/sharedStrings.xml").decode()
    assert "ร้านโคราช" in strings
