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

drop function kk_audit_append_many(jsonb);
drop function kk_audit_append(text, text, text, jsonb);

create function kk_audit_prepare(p_details text[])
returns table (id bigint, prev_hash text, at timestamptz, at_text text, details_text text)
language plpgsql as $$
declare
    v_prev text;
    v_details text;
begin
    perform pg_advisory_xact_lock(7364001);
    select a.hash into v_prev from audit_log a order by a.id desc limit 1;
    prev_hash := coalesce(v_prev, repeat('0', 64));
    foreach v_details in array p_details loop
        id := nextval('audit_log_id_seq');
        at := date_trunc('microseconds', clock_timestamp());
        at_text := to_char(at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"');
        details_text := coalesce(v_details::jsonb, '{}'::jsonb)::text;
        return next;
    end loop;
end $$;
