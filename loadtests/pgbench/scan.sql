-- The database's own ceiling for one merchant purchase scan: exactly the SQL the API runs for
-- POST /api/v1/merchant/scans with purchase_thb, one statement since migration 0011:
-- kk_purchase_scan_idem claims the durable idempotency key, runs kk_purchase_scan (QR jti use,
-- award from the merchant's funder with the member and merchant daily counters, the funder
-- budget take, lot, tier check, outbox), the missions' purchase progress and the shop's
-- completions, and stores the response.
-- Variables: -D minid=.. -D maxid=.. -D merchant=.. -D cap=..
\set mid random(:minid, :maxid)
\set r random(1, 4611686018427387903)
select kk_purchase_scan_idem('shop:' || :merchant::text, 'pg-' || :client_id::text || '-' || :r::text,
    'pgbench', :mid::bigint, :merchant::bigint, 'pg-' || :client_id::text || '-' || :r::text,
    10, (now() at time zone 'Asia/Bangkok')::date, :cap::bigint,
    jsonb_build_object('idem', 'shop:' || :merchant::text || ':pg-' || :client_id::text || '-' || :r::text,
                       'merchant_id', :merchant::bigint, 'purchase_thb', '100'), 16, 'food', 100);
