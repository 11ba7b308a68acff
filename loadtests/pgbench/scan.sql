-- The database's own ceiling for one merchant purchase scan: exactly the SQL the API runs for
-- POST /api/v1/merchant/scans with purchase_thb, in one transaction: the durable idempotency
-- claim, kk_purchase_scan (QR jti use, award from the merchant's funder with the member and
-- merchant daily counters, the funder budget take, lot, tier check, outbox), the missions'
-- purchase progress, and the stored response.
-- Variables: -D minid=.. -D maxid=.. -D merchant=.. -D cap=..
\set mid random(:minid, :maxid)
\set r random(1, 4611686018427387903)
BEGIN;
select kk_idem_claim('shop:' || :merchant::text, 'pg-' || :client_id::text || '-' || :r::text, 'pgbench');
select kk_purchase_scan(:mid::bigint, :merchant::bigint, 'pg-' || :client_id::text || '-' || :r::text,
    10, (now() at time zone 'Asia/Bangkok')::date, :cap::bigint,
    jsonb_build_object('idem', 'shop:' || :merchant::text || ':pg-' || :client_id::text || '-' || :r::text,
                       'merchant_id', :merchant::bigint, 'purchase_thb', '100'), 16);
select kk_purchase_progress(:mid::bigint, :merchant::bigint, 'food', 100, (now() at time zone 'Asia/Bangkok')::date, :cap::bigint, 16);
select kk_idem_store('shop:' || :merchant::text, 'pg-' || :client_id::text || '-' || :r::text, 201, '{"action": "award"}'::jsonb);
COMMIT;
