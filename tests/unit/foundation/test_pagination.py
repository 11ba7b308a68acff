"""Cursor pagination: bounds from settings, forged cursors refused, the next cursor."""

from __future__ import annotations

import msgspec
import pytest

from kuekan.errors import DomainError
from kuekan.pagination import next_cursor, page_limit, parse_cursor
from kuekan.settings import load_settings


def test_the_page_size_comes_from_settings() -> None:
    s = msgspec.structs.replace(load_settings("test"), page_limit_default=7, page_limit_max=9)
    assert page_limit(s, None) == 7
    assert page_limit(s, 9) == 9
    for bad in (0, 10, -1):
        with pytest.raises(DomainError) as caught:
            page_limit(s, bad)
        assert caught.value.code == "validation_failed" and caught.value.status == 422
        assert "9" in caught.value.message_en


def test_cursors_are_ids_and_forged_ones_are_refused() -> None:
    assert parse_cursor(None) is None and parse_cursor("") is None
    assert parse_cursor("9223372036854775807") == 2**63 - 1
    for bad in ("-1", "1e3", "abc", "1" * 20):
        with pytest.raises(DomainError):
            parse_cursor(bad)


def test_the_next_cursor_is_the_last_key_of_a_full_page_only() -> None:
    assert next_cursor([{"id": 3}, {"id": 5}], 2, lambda r: r["id"]) == "5"
    assert next_cursor([{"id": 3}], 2, lambda r: r["id"]) is None
    assert next_cursor([], 2, lambda r: r["id"]) is None
