-- The database's own ceiling for one redemption: the SQL the API runs for POST /redemptions,
-- in one transaction: idempotency claim, kk_redeem_reward (reserve, per-member limit, stock,
-- coupon, outbox), stored response. Variables: -D minid=.. -D maxid=.. -D reward=..
\set mid random(:minid, :maxid)
\set r random(1, 4611686018427387903)
BEGIN;
select kk_idem_claim('m:' || :mid::text, 'pg-' || :client_id::text || '-' || :r::text, 'pgbench');
select kk_redeem_reward(:mid::bigint, :reward::bigint,
    array['PG' || :client_id::text || '-' || :r::text],
    jsonb_build_object('idem', 'm:' || :mid::text || ':pg-' || :client_id::text || '-' || :r::text));
select kk_idem_store('m:' || :mid::text, 'pg-' || :client_id::text || '-' || :r::text, 201, '{"coupon_code": "x"}'::jsonb);
COMMIT;
