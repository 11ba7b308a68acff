-- The audit chain is sealed with a key the database never sees.
--
-- Before: each row's hash was SHA-256 over its fields and the previous hash, computed by
-- kk_audit_append. Anyone able to write to the database could alter a row and recompute every
-- hash after it, and verify-audit would pass. Now each hash is an HMAC-SHA256 keyed with the
-- setting audit_hmac_key, computed by the application (kuekan.audit.append), so rewriting the
-- chain needs that secret as well. The key is not passed to PostgreSQL at all: a bind
-- parameter would end up in slow-query logs.
--
-- Contract: kuekan.audit.append calls kk_audit_prepare in the caller's transaction. It takes
-- the chain lock (held to the end of that transaction, as before), returns the previous hash,
-- an id, a timestamp and the canonical jsonb text of each row's details; the application
-- hashes the rows in order (each row's prev_hash is the hash of the row before it) and inserts
-- them in one statement. key_id names the key that sealed a row (rotation: old keys stay in
-- audit_hmac_retired_keys to verify old rows); NULL marks a row hashed before this migration,
-- accepted by verify-audit only up to the setting audit_legacy_max_id.

alter table audit_log add column key_id text;

-- The unkeyed appenders go (their files left sql/functions), so nothing writes an unsealed row.
drop function if exists kk_audit_append_many(jsonb);
drop function if exists kk_audit_append(text, text, text, jsonb);

-- kk_audit_prepare(): its current body is sql/functions/kk_audit_prepare.sql
