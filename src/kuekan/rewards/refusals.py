"""Rewards' refusal codes, registered in the one catalogue (:mod:`kuekan.errors`).

The package's ``__init__`` imports this module, so any use of the package registers them.
"""

from __future__ import annotations

from kuekan.errors import register

REFUSALS = register({
    "reward_not_found": (404, "Reward not found", "ไม่พบของรางวัล"),
    "reward_unavailable": (409, "This reward is no longer offered", "ของรางวัลนี้ไม่เปิดให้แลกแล้ว"),
    "out_of_stock": (409, "This reward is out of stock", "ของรางวัลหมดแล้ว"),
    "reward_limit_reached": (409, "You already hold the most coupons allowed for this reward",
                             "คุณแลกของรางวัลนี้ครบจำนวนที่กำหนดแล้ว"),
    "tier_too_low": (403, "Your tier cannot redeem this reward",
                     "ระดับสมาชิกของคุณยังไม่สามารถแลกของรางวัลนี้ได้"),
    "coupon_not_found": (404, "Coupon not found", "ไม่พบคูปอง"),
    "coupon_not_owned": (403, "This coupon belongs to another member",
                         "คูปองนี้เป็นของสมาชิกคนอื่น"),
    "coupon_wrong_merchant": (403, "This coupon cannot be used at this merchant",
                              "คูปองนี้ใช้ที่ร้านนี้ไม่ได้"),
    "coupon_qr_invalid": (403, "The coupon QR code is not genuine", "QR คูปองไม่ถูกต้อง"),
    "member_token_invalid": (403, "The member QR code is not valid",
                             "QR สมาชิกไม่ถูกต้อง"),
    "member_token_expired": (403, "The member QR code has expired; ask the member to refresh it",
                             "QR สมาชิกหมดอายุแล้ว กรุณาให้สมาชิกเปิด QR ใหม่"),
    "member_token_replayed": (409, "This member QR code was already used at another merchant",
                              "QR สมาชิกนี้ถูกใช้ที่ร้านอื่นไปแล้ว"),
    "member_token_used": (409, "This member QR code was already used for this action; ask the"
                          " member to show a fresh one",
                          "QR สมาชิกนี้ถูกใช้ทำรายการนี้แล้ว กรุณาให้สมาชิกเปิด QR ใหม่"),
    "scan_time_before_token": (409, "The scan time is before the member QR code was issued",
                               "เวลาสแกนอยู่ก่อนเวลาที่ออก QR สมาชิก"),
    "merchant_suspended": (403, "This merchant is suspended", "ร้านค้านี้ถูกระงับการใช้งาน"),
    "merchant_offline_cap_reached": (409, "The merchant's daily offline award cap is reached",
                                     "ร้านค้าให้แต้มแบบออฟไลน์ครบเพดานรายวันแล้ว"),
    "self_award_forbidden": (403, "Staff cannot award points to their own member account",
                             "พนักงานไม่สามารถให้แต้มกับบัญชีสมาชิกของตนเองได้"),
    "purchase_below_minimum": (409, "The purchase is below the merchant's minimum spend",
                               "ยอดซื้อต่ำกว่ายอดขั้นต่ำของร้าน"),
    "offline_window_expired": (409, "The offline scan is older than the offline window",
                               "รายการสแกนออฟไลน์เก่าเกินกว่าที่ระบบรับได้"),
    "scanned_at_in_future": (422, "scanned_at is in the future", "เวลาสแกนอยู่ในอนาคต"),
    "scanned_at_needs_offset": (422, "scanned_at needs a UTC offset",
                                "เวลาสแกนต้องระบุเขตเวลา"),
    "scan_needs_one_action": (422, "Send either purchase_thb or coupon_code, not both",
                              "ระบุยอดซื้อหรือรหัสคูปองอย่างใดอย่างหนึ่ง"),
    "unknown_merchants": (422, "Some merchant_ids do not exist", "ไม่พบร้านค้าบางร้าน"),
    "unknown_tier": (422, "Unknown tier", "ไม่พบระดับสมาชิกนี้"),
    "stock_negative": (409, "Stock cannot go below zero", "จำนวนคงเหลือติดลบไม่ได้"),
})
