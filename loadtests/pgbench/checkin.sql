-- The database's own ceiling for one check-in: exactly the SQL call the API makes for
-- POST /api/v1/checkins after its in-memory geofence decision (kk_checkin_idem: durable
-- idempotency claim, mission/member/period checks, progress row, check-in row, award with the
-- daily cap and the sliced funder + mission budgets, completion, outbox, stored response).
-- Each transaction takes the next member of a contiguous block (a sequence), so every call is a
-- first check-in, as in the HTTP run. Variables: -D minid=.. -D count=.. -D mission=..
\set r random(1, 4611686018427387903)
with s as (select :minid::bigint + nextval('kk_bench_checkin_seq') % :count::bigint as m)
select kk_checkin_idem('m:' || s.m, 'pg-' || :client_id::text || '-' || :r::text, 'pgbench',
    s.m, :mission::bigint, (now() at time zone 'Asia/Bangkok')::date, 14.9745, 102.0990, 8,
    120.5, 'inside', false, 'pgbench', '{}'::bigint[], 1000, 16)
  from s;
