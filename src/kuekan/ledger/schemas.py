"""Admin ledger bodies: funders and manual awards/adjustments."""

from __future__ import annotations

from typing import Annotated

import msgspec

from kuekan.kit.bounds import Id, Reason

Code = Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
Points = Annotated[int, msgspec.Meta(ge=-1_000_000, le=1_000_000)]


class FunderIn(msgspec.Struct, forbid_unknown_fields=True):
    code: Code
    name: Name
    budget_points: Annotated[int, msgspec.Meta(ge=0, le=10**12)] | None = None
    org: Annotated[str, msgspec.Meta(pattern=r"^(pao|chamber)$")] | None = None


class FunderOut(msgspec.Struct):
    id: int
    code: str
    name: str
    org: str | None
    budget_points: int | None
    budget_remaining_points: int | None
    liability_points: int


class FunderList(msgspec.Struct):
    items: list[FunderOut]
    next_cursor: str | None = None


class AwardIn(msgspec.Struct, forbid_unknown_fields=True):
    member_id: Id
    points: Points
    funder_id: Id
    reason: Reason


class ReverseIn(msgspec.Struct, forbid_unknown_fields=True):
    reason: Reason
