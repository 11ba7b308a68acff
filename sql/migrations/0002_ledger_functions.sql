-- Ledger operations as SQL functions: each is one round trip from the API, one transaction,
-- and holds its row locks only while PostgreSQL itself runs (never across the network).
--
-- Refusals raise SQLSTATE KK409 (conflict) / KK403 (forbidden) / KK404 (not found) with the
-- stable refusal code as the message; the API maps them to problem+json.

-- One transfer key per (idempotency key, leg): the database itself refuses a second effect.
create unique index transfers_idem_leg on transfers ((ref ->> 'idem'), (coalesce(ref ->> 'leg', 'main')))
    where ref ? 'idem';
-- kk_refuse(): its current body is sql/functions/kk_refuse.sql
-- kk_month(): its current body is sql/functions/kk_month.sql
-- kk_slice_add(): its current body is sql/functions/kk_slice_add.sql
-- kk_budget_take(): its current body is sql/functions/kk_budget_take.sql
-- kk_budget_give(): its current body is sql/functions/kk_budget_give.sql
-- kk_budget_set(): its current body is sql/functions/kk_budget_set.sql
-- kk_budget_remaining(): its current body is sql/functions/kk_budget_remaining.sql
-- kk_award(): its current body is sql/functions/kk_award.sql
-- kk_consume_lots(): its current body is sql/functions/kk_consume_lots.sql
-- kk_debit(): its current body is sql/functions/kk_debit.sql
-- kk_adjust_down(): its current body is sql/functions/kk_adjust_down.sql
-- kk_reverse(): its current body is sql/functions/kk_reverse.sql
-- kk_reserve(): its current body is sql/functions/kk_reserve.sql
-- kk_post(): its current body is sql/functions/kk_post.sql
-- kk_void(): its current body is sql/functions/kk_void.sql
-- kk_expire_lots(): its current body is sql/functions/kk_expire_lots.sql
-- kk_idem_claim(): its current body is sql/functions/kk_idem_claim.sql
-- kk_idem_store(): its current body is sql/functions/kk_idem_store.sql
-- kk_award_idem(): its current body is sql/functions/kk_award_idem.sql
