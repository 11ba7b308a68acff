"""Merchant, report and settlement bodies."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

import msgspec

from kuekan.kit.bounds import Id


class MerchantIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    district_code: Annotated[str, msgspec.Meta(pattern=r"^[0-9]{4}$")]
    lat: Annotated[float, msgspec.Meta(ge=-90, le=90)]
    lon: Annotated[float, msgspec.Meta(ge=-180, le=180)]
    category: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    thb_per_point: Decimal
    funder_id: Id
    min_spend_thb: Decimal = Decimal(0)
    daily_award_cap_points: Annotated[int, msgspec.Meta(ge=0, le=10**9)] | None = None
    # Points the shop's offline uploads may award per day; omitted: the database default.
    offline_daily_cap_points: Annotated[int, msgspec.Meta(ge=0, le=10**9)] | None = None

    def __post_init__(self) -> None:
        # msgspec cannot bound a Decimal in its Meta, so the bounds are checked here.
        if not (self.thb_per_point.is_finite() and self.min_spend_thb.is_finite()):
            raise ValueError("money must be a finite number")
        if not Decimal(0) < self.thb_per_point <= Decimal(1_000_000):
            raise ValueError("thb_per_point must be > 0 and <= 1000000")
        if not Decimal(0) <= self.min_spend_thb <= Decimal(10_000_000):
            raise ValueError("min_spend_thb must be between 0 and 10000000")
        for v in (self.thb_per_point, self.min_spend_thb):
            if v.as_tuple().exponent < -2:  # type: ignore[operator]
                raise ValueError("money has at most 2 decimal places")


class MerchantOut(msgspec.Struct):
    id: int
    name: str
    district_code: str
    lat: float
    lon: float
    category: str
    thb_per_point: Decimal
    min_spend_thb: Decimal
    funder_id: int
    daily_award_cap_points: int | None
    redemption_account_id: int
    status: str
    offline_daily_cap_points: int = 0


class MerchantList(msgspec.Struct):
    items: list[MerchantOut]
    next_cursor: str | None = None


class StaffIn(msgspec.Struct, forbid_unknown_fields=True):
    line_sub: Annotated[str, msgspec.Meta(min_length=1, max_length=100)]


class StaffOut(msgspec.Struct):
    id: int
    line_sub: str
    merchant_id: int
