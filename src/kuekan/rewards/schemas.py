"""Rewards request and response bodies (the public contract of API.md)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated, Any, Literal

import msgspec

from kuekan.kit.bounds import Id, check_instant

Name = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
Category = Literal["otop_product", "merchant_voucher", "public_service"]
THB_MAX = Decimal(10_000_000)
Token = Annotated[str, msgspec.Meta(min_length=10, max_length=2000)]
CouponCode = Annotated[str, msgspec.Meta(min_length=4, max_length=200)]
Key = Annotated[str, msgspec.Meta(min_length=1, max_length=255)]


def check_thb(value: Decimal | None) -> None:
    """Money: 0 < THB <= 10,000,000 with at most 2 places (msgspec cannot bound a Decimal)."""
    if value is None:
        return
    if not value.is_finite() or not Decimal(0) < value <= THB_MAX:
        raise ValueError("purchase_thb must be > 0 and <= 10000000")
    if value.as_tuple().exponent < -2:  # type: ignore[operator]
        raise ValueError("purchase_thb has at most 2 decimal places")


class RewardIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    name: Name
    cost_points: Annotated[int, msgspec.Meta(ge=1, le=10_000_000)]
    stock: Annotated[int, msgspec.Meta(ge=0, le=10_000_000)]
    merchant_ids: Annotated[list[Id], msgspec.Meta(min_length=1, max_length=500)]
    per_member_limit: Annotated[int, msgspec.Meta(ge=1, le=10_000)] | None = None
    coupon_valid_days: Annotated[int, msgspec.Meta(ge=1, le=366)] = 30
    name_en: Name | None = None
    category: Category = "merchant_voucher"
    min_tier: Annotated[str, msgspec.Meta(max_length=32)] | None = None
    funder_id: Id | None = None


class RewardPatch(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Fields an admin may change; stock_delta adds to (or takes from) the current stock."""

    name: Name | None = None
    name_en: Name | None = None
    stock_delta: Annotated[int, msgspec.Meta(ge=-10_000_000, le=10_000_000)] | None = None
    per_member_limit: Annotated[int, msgspec.Meta(ge=1, le=10_000)] | None = None
    coupon_valid_days: Annotated[int, msgspec.Meta(ge=1, le=366)] | None = None
    status: Literal["active", "retired"] | None = None
    merchant_ids: Annotated[list[Id], msgspec.Meta(min_length=1, max_length=500)] | None = None


class MerchantPin(msgspec.Struct):
    """A partner merchant where a reward can be used, ready to put on a map."""

    id: int
    name: str
    district_code: str
    category: str
    lat: float
    lon: float


class RewardOut(msgspec.Struct):
    id: int
    name: str
    name_en: str
    category: str
    cost_points: int
    stock: int
    per_member_limit: int | None
    coupon_valid_days: int
    min_tier: str | None
    funder_id: int | None
    status: str
    merchant_ids: list[int]
    merchants: list[MerchantPin]


class RewardList(msgspec.Struct):
    items: list[RewardOut]
    next_cursor: str | None = None


class RedeemIn(msgspec.Struct, forbid_unknown_fields=True):
    reward_id: Id


class CouponOut(msgspec.Struct):
    id: int
    code: str
    coupon_qr: str
    reward_id: int
    reward_name: str
    points: int
    status: str
    expires_at: dt.datetime
    created_at: dt.datetime
    redeemed_merchant_id: int | None
    merchant_ids: list[int]


class CouponList(msgspec.Struct):
    items: list[CouponOut]
    next_cursor: str | None = None


class MemberQrOut(msgspec.Struct):
    token: str
    expires_at: dt.datetime


class ScanIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    member_token: Token
    purchase_thb: Decimal | None = None
    coupon_code: CouponCode | None = None

    def __post_init__(self) -> None:
        check_thb(self.purchase_thb)


class BatchItemIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    idempotency_key: Key
    member_token: Token
    scanned_at: dt.datetime
    purchase_thb: Decimal | None = None
    coupon_code: CouponCode | None = None

    def __post_init__(self) -> None:
        check_thb(self.purchase_thb)
        check_instant("scanned_at", self.scanned_at)


class BatchIn(msgspec.Struct, forbid_unknown_fields=True):
    items: Annotated[list[BatchItemIn], msgspec.Meta(min_length=1, max_length=200)]


class BatchItemOut(msgspec.Struct, omit_defaults=True):
    idempotency_key: str
    status: int
    result: dict[str, Any] | None = None
    problem: dict[str, Any] | None = None
    replayed: bool = False


class BatchOut(msgspec.Struct):
    items: list[BatchItemOut]
