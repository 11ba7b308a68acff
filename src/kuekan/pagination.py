"""Cursor pagination, the one way: ``?limit=`` bounded by settings and an opaque ``?cursor=``.

A list route takes ``limit: int | None`` and ``cursor: str | None``, reads at most
:func:`page_limit` rows after :func:`parse_cursor`'s id (keyset: ``where id > $cursor order by
id``), and answers :func:`next_cursor` of what it read. Lists built in memory (the member's
mission catalogue) page by offset with the same helpers.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

from kuekan.errors import invalid
from kuekan.settings import Settings

T = TypeVar("T")
CURSOR_DIGITS_MAX = 19  # a bigint id


def page_limit(settings: Settings, limit: int | None) -> int:
    """The page size: the default when absent, else 1..``settings.page_limit_max`` or a 422."""
    if limit is None:
        return settings.page_limit_default
    if not 1 <= limit <= settings.page_limit_max:
        raise invalid(f"limit must be between 1 and {settings.page_limit_max}",
                      f"limit ต้องอยู่ระหว่าง 1 ถึง {settings.page_limit_max}")
    return limit


def parse_cursor(cursor: str | None) -> int | None:
    """The id (or offset) a cursor stands for; None for the first page; a 422 when forged."""
    if cursor is None or cursor == "":
        return None
    if not cursor.isdigit() or len(cursor) > CURSOR_DIGITS_MAX:
        raise invalid("cursor is not valid", "cursor ไม่ถูกต้อง")
    return int(cursor)


def next_cursor(items: Sequence[T], limit: int, key: Callable[[T], int]) -> str | None:
    """The cursor of the page after ``items`` (keyed by the last item), or None on the last."""
    return str(key(items[-1])) if items and len(items) == limit else None
