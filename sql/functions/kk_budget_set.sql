-- Create (or reset) a budget split into p_slices slices.
CREATE OR REPLACE FUNCTION public.kk_budget_set(p_key text, p_total bigint, p_slices integer)
 RETURNS void
 LANGUAGE plpgsql
AS $function$
begin
    delete from budget_slices where budget_key = p_key;
    if p_total is null then
        return;
    end if;
    insert into budget_slices (budget_key, slice, remaining)
    select p_key, s, p_total / p_slices + case when s = 0 then p_total % p_slices else 0 end
      from generate_series(0, p_slices - 1) s;
end $function$;
