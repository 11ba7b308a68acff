-- Offline scans bounded, suspended merchants stopped (issue #14, points 4 and 5).
--
-- Contract of a member-QR scan, enforced here whatever the API does:
--   * the scan time lies inside the token's validity: iat - skew <= scanned_at <= exp
--     (scanned_at is the device time of an offline scan, now() online); the API passes the
--     verified token's iat/exp and the allowed clock skew in p_ref->'qr', and a scan without
--     them is refused, so a caller that forgets them cannot skip the check;
--   * one member-QR token (its jti) pays at most one award and one redemption, and is used at
--     one merchant only;
--   * a merchant's offline uploads award at most merchants.offline_daily_cap_points per
--     Asia/Bangkok day of the scan (on top of the merchant's daily award cap);
--   * a suspended merchant neither awards nor redeems (403 merchant_suspended).
--
-- Lock order is unchanged: the QR token's row, then what kk_award / kk_post lock (the member's
-- pocket, its lots, sliced accounts); the offline counter is taken after kk_award refused or
-- not, in the same statement, so a refusal anywhere rolls everything back.
--
-- The function bodies live in sql/functions: kk_qr_claim (new), kk_purchase_scan and
-- kk_scan_coupon (changed); this file holds the tables and columns they use.

alter table qr_uses add column awarded_at timestamptz;
alter table qr_uses add column redeemed_at timestamptz;

alter table merchants add column offline_daily_cap_points bigint not null default 5000
    check (offline_daily_cap_points >= 0);

create table merchant_offline_daily (
    merchant_id bigint not null,
    day date not null,
    points bigint not null default 0 check (points >= 0),
    primary key (merchant_id, day)
);
