-- Idempotent award in one round trip: claim the key, award, store the response.
CREATE OR REPLACE FUNCTION public.kk_award_idem(p_scope text, p_key text, p_hash text, p_member bigint, p_funder bigint, p_amount bigint, p_kind text, p_day date, p_member_cap bigint, p_merchant bigint, p_budget_keys text[], p_ref jsonb, p_check_hold boolean, p_slices integer, p_extra jsonb DEFAULT '{}'::jsonb, p_outbox_topic text DEFAULT NULL::text)
 RETURNS jsonb
 LANGUAGE plpgsql
AS $function$
declare
    v_prev jsonb := kk_idem_claim(p_scope, p_key, p_hash);
    r record;
    v_body jsonb;
begin
    if v_prev is not null then
        return v_prev || jsonb_build_object('replay', true);
    end if;
    select * into r from kk_award(p_member, p_funder, p_amount, p_kind, p_day, p_member_cap,
        p_merchant, p_budget_keys,
        coalesce(p_ref, '{}') || jsonb_build_object('idem', p_scope || ':' || p_key),
        p_check_hold, p_slices);
    v_body := coalesce(p_extra, '{}') || jsonb_build_object(
        'transfer_id', r.transfer_id, 'balance', r.balance, 'available', r.available,
        'points', p_amount, 'member_id', p_member);
    if p_outbox_topic is not null then
        insert into outbox (topic, member_id, payload) values (p_outbox_topic, p_member,
            v_body || jsonb_build_object('funder_id', p_funder, 'merchant_id', p_merchant,
                                         'ref', p_ref, 'at', now()));
    end if;
    perform kk_idem_store(p_scope, p_key, 201, v_body);
    return jsonb_build_object('status', 201, 'body', v_body, 'hash', p_hash, 'replay', false);
end $function$;
