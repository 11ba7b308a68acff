-- A purchase scan in one round trip, as kk_award_idem is for admin awards and kk_checkin_idem
-- for check-ins: claim the durable idempotency key (or return the stored response), award the
-- purchase points (kk_purchase_scan: QR use, merchant, limits, outbox), progress the member's
-- purchase missions (kk_purchase_progress), record them for the shop's report, and store the
-- response. Before, the API ran these as seven statements in a transaction of its own (begin,
-- claim, scan, progress, completions, store, commit), seven round trips per scan.
--
-- A refusal raised by any step (KKnnn) aborts the statement, so nothing of the scan is kept,
-- exactly as when the API's transaction rolled back; the API then stores the refusal.
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
