-- PDPA erasure that is complete and not an escape hatch (issue #14 point 7).
--
-- kk_erase_member pseudonymises one member everywhere a personal value can sit — LINE id,
-- name, phone, coordinates, device ids — in one transaction, and refuses while the member is
-- on hold or banned: erasing would otherwise let a banned member sign in again through
-- /auth/line as a new, clean member (the LINE id stays, so /auth/line finds the banned member
-- and refuses it). The ledger is untouched: transfers, lots and balances stay balanced and
-- auditable under the pseudonym. The audit log keeps only actor scopes and hashes of bodies.
--
-- kk_purge_outbox_personal strips the same personal keys from outbox payloads once their rows
-- are processed and a retention has passed (the analytics consumer and the fraud projections
-- have read them by then); a cron runs it in bounded batches.
--
-- The function bodies live in sql/functions: kk_personal_keys, kk_erase_member and
-- kk_purge_outbox_personal; this file holds the columns and indexes they use.

alter table checkins alter column lat drop not null;
alter table checkins alter column lon drop not null;
create index if not exists line_webhook_events_user on line_webhook_events (user_id)
    where user_id is not null;
create index if not exists notify_messages_member on notify_messages (member_id)
    where member_id is not null;
