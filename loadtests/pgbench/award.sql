-- The database's own ceiling for one award: exactly the SQL call the API makes for
-- POST /api/v1/admin/awards (kk_award_idem: durable idempotency claim, double-entry transfer,
-- member balance, monthly lot, sliced funder account, sliced budget take, outbox row, stored
-- response), one transaction per call, one random member, a unique key per transaction.
-- Variables from the command line: -D minid=.. -D maxid=.. -D funder=.. -D scope=..
\set mid random(:minid, :maxid)
\set r random(1, 4611686018427387903)
select kk_award_idem(:scope::text, 'pg-' || :client_id::text || '-' || :r::text, 'pgbench',
    :mid::bigint, :funder::bigint, 10, 'adjust', (now() at time zone 'Asia/Bangkok')::date,
    null, null, array['funder:' || :funder::text],
    jsonb_build_object('reason', 'pgbench award', 'by', :scope::text, 'org', 'pao'),
    false, 16, jsonb_build_object('funder_id', :funder::bigint), 'points.adjusted');
