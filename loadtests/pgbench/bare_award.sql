-- The physical reference for one award: the bare transaction any points ledger must do at
-- least — one INSERT carrying a unique idempotency key and one UPDATE of a balance — on two
-- plain tables (bare_ledger, bare_balances; loadtests/bench_wrk.py creates them). Not our SQL:
-- the ratio "HTTP awards/s / this TPS" shows what the whole service costs over the minimum.
-- Variables: -D members=..
\set mid random(1, :members)
\set r random(1, 4611686018427387903)
begin;
insert into bare_ledger (key, member, amount)
    values ('b-' || :client_id::text || '-' || :r::text, :mid, 10);
update bare_balances set balance = balance + 10 where member = :mid;
commit;
