-- Micro-batching ceiling: the same kk_award_idem call as award.sql, but :batch awards (random
-- members, unique keys) in ONE statement and ONE commit, as an API that groups concurrent awards
-- would do. Rows go in (slice, member) order, the lock order that keeps batches deadlock-free.
-- Each row is one award: compare (pgbench TPS x batch) with award.sql's TPS.
-- Variables: -D minid=.. -D maxid=.. -D funder=.. -D scope=.. -D batch=8
\set r random(1, 4611686018427387903)
select count(*) from (
    select kk_award_idem(:scope::text, 'pgb-' || :client_id::text || '-' || :r::text || '-' || s.g,
        'pgbench', s.mid, :funder::bigint, 10, 'adjust', (now() at time zone 'Asia/Bangkok')::date,
        null, null, array['funder:' || :funder::text],
        jsonb_build_object('reason', 'pgbench award', 'by', :scope::text, 'org', 'pao'),
        false, 16, jsonb_build_object('funder_id', :funder::bigint), 'points.adjusted')
      from (select g, mid from (
                select g, (:minid::bigint
                           + floor(random() * (:maxid::bigint - :minid::bigint + 1)))::bigint as mid
                  from generate_series(1, :batch::int) g) x
             order by mid % 16, mid) s) awarded;
