"""Member-facing request and response bodies (the public contract of API.md)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import msgspec


class MeOut(msgspec.Struct):
    id: int
    line_sub: str
    display_name: str
    tier: str
    status: str
    segment: str


class Expiring(msgspec.Struct):
    month: str
    points: int
    expires_at: dt.datetime


class PocketOut(msgspec.Struct):
    balance: int
    reserved: int
    available: int
    tier: str
    expiring: list[Expiring]


class HistoryItem(msgspec.Struct):
    id: int
    kind: str
    points: int
    funder_id: int | None
    ref: dict[str, Any]
    created_at: dt.datetime


class HistoryPage(msgspec.Struct):
    items: list[HistoryItem]
    next_cursor: str | None
