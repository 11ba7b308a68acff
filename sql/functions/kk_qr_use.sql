CREATE OR REPLACE FUNCTION public.kk_qr_use(p_jti text, p_member bigint, p_merchant bigint)
 RETURNS void
 LANGUAGE plpgsql
AS $function$
begin
    insert into qr_uses (jti, member_id, merchant_id) values (p_jti, p_member, p_merchant)
    on conflict (jti) do nothing;
    if not found and exists (select 1 from qr_uses where jti = p_jti and merchant_id <> p_merchant) then
        perform kk_refuse('member_token_replayed');
    end if;
end $function$;
