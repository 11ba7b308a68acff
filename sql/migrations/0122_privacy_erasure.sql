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

alter table checkins alter column lat drop not null;
alter table checkins alter column lon drop not null;
create index if not exists line_webhook_events_user on line_webhook_events (user_id)
    where user_id is not null;
create index if not exists notify_messages_member on notify_messages (member_id)
    where member_id is not null;

-- The payload keys that may carry personal data (coordinates, device, phone, OTP, identity).
create or replace function kk_personal_keys() returns text[] language sql immutable as $$
    select array['lat', 'lon', 'accuracy_m', 'device_id', 'phone', 'code', 'line_sub',
                 'display_name', 'name', 'user_id']
$$;

create or replace function kk_erase_member(p_member bigint, p_alias text) returns void
language plpgsql as $$
declare
    v_sub text;
    v_status text;
    v_phones text[];
begin
    select line_sub, status into v_sub, v_status from members where id = p_member for update;
    if v_sub is null then
        perform kk_refuse('member_not_found', 'KK404');
    end if;
    if v_status in ('on_hold', 'banned') then
        perform kk_refuse('erasure_refused_on_hold', 'KK403');
    end if;
    select array_agg(distinct p) filter (where p is not null and p <> '') into v_phones
      from (select phone as p from notify_prefs where member_id = p_member
            union all select phone from otp_challenges where member_id = p_member) x;
    v_phones := coalesce(v_phones, '{}');

    update members set line_sub = p_alias, display_name = '', district_code = null,
                       hold_reason = null, status = 'erased'
     where id = p_member;
    update notify_prefs set phone = null, phone_verified_at = null, line_opt_in = false
     where member_id = p_member;
    update otp_challenges set phone = '' where member_id = p_member;
    update fraud_checkins set lat = null, lon = null, device_id = null where member_id = p_member;
    update checkins set lat = null, lon = null, device_id = null where member_id = p_member;
    update outbox set payload = payload - kk_personal_keys() where member_id = p_member;
    -- The member's own sends (pushes, SMS): recipients and texts go; a pending one is skipped.
    update notify_messages
       set recipients = '[]'::jsonb, messages = '[]'::jsonb,
           status = case when status = 'pending' then 'skipped' else status end
     where member_id = p_member;
    -- Sends to many (multicast) drop this member's LINE id and phones from their recipients.
    update notify_messages set recipients = recipients - v_sub - v_phones
     where member_id is null and (recipients ? v_sub or recipients ?| v_phones);
    update line_webhook_events set user_id = null where user_id = v_sub;
    update fraud_alerts set evidence = jsonb_build_object('erased', true), device_id = null
     where member_id = p_member;
    update fraud_reviews set note = null where member_id = p_member;
    insert into erasures (member_id, pseudonym) values (p_member, p_alias)
    on conflict do nothing;
end $$;

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
