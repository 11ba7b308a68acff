"""Cursor pagination: ``?limit=`` (bounded) and an opaque ``?cursor=``."""

from __future__ import annotations

from kuekan.errors import invalid
from kuekan.settings import Settings


def page_limit(settings: Settings, limit: int | None) -> int:
    if limit is None:
        return settings.page_limit_default
    if not 1 <= limit <= settings.page_limit_max:
        raise invalid(f"limit must be between 1 and {settings.page_limit_max}",
                      f"limit ต้องอยู่ระหว่าง 1 ถึง {settings.page_limit_max}")
    return limit


def parse_cursor(cursor: str | None) -> int | None:
    if cursor is None or cursor == "":
        return None
    if not cursor.isdigit() or len(cursor) > 18:
        raise invalid("cursor is not valid", "cursor ไม่ถูกต้อง")
    return int(cursor)
