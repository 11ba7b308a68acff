CREATE OR REPLACE FUNCTION public.kk_purchase_scan_idem(p_scope text, p_key text, p_hash text, p_member bigint, p_merchant bigint, p_jti text, p_points bigint, p_day date, p_member_cap bigint, p_ref jsonb, p_slices integer, p_category text, p_amount_thb numeric)
 RETURNS jsonb
 LANGUAGE plpgsql
AS $function$
declare
    v_prev jsonb := kk_idem_claim(p_scope, p_key, p_hash);
    v_body jsonb;
    v_done jsonb;
begin
    if v_prev is not null then
        return v_prev || jsonb_build_object('replay', true);
    end if;
    v_body := kk_purchase_scan(p_member, p_merchant, p_jti, p_points, p_day, p_member_cap,
                               p_ref, p_slices);
    v_done := coalesce(kk_purchase_progress(p_member, p_merchant, p_category, p_amount_thb,
                                            p_day, p_member_cap, p_slices), '[]'::jsonb);
    insert into merchant_mission_completions
        (merchant_id, day, mission_id, mission_code, member_id, points)
    select p_merchant, p_day, (d ->> 'mission_id')::bigint, coalesce(d ->> 'code', ''),
           p_member, coalesce((d ->> 'points')::bigint, 0)
      from jsonb_array_elements(v_done) d;
    v_body := v_body || jsonb_build_object('missions', v_done);
    perform kk_idem_store(p_scope, p_key, 201, v_body);
    return jsonb_build_object('status', 201, 'body', v_body, 'hash', p_hash, 'replay', false);
end $function$;
