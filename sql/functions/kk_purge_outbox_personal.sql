-- Strip personal keys from processed outbox payloads older than p_before, at most p_limit rows
-- (the privacy cron runs it in batches; migration 0122).
create or replace function kk_purge_outbox_personal(p_before timestamptz, p_limit int)
returns int language sql as $$
    with batch as (
        select o.id from outbox o join outbox_processed p on p.outbox_id = o.id
         where p.processed_at < p_before and o.payload ?| kk_personal_keys()
         limit p_limit
    ), purged as (
        update outbox o set payload = o.payload - kk_personal_keys()
          from batch where o.id = batch.id
        returning 1
    )
    select count(*)::int from purged
$$;
