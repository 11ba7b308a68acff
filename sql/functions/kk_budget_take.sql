-- Take p_amount from a sliced budget. No budget rows means no cap. Tries the preferred slice,
-- then the fullest others; only when no single slice can cover it, locks them all in order.
CREATE OR REPLACE FUNCTION public.kk_budget_take(p_key text, p_amount bigint, p_slice integer)
 RETURNS boolean
 LANGUAGE plpgsql
AS $function$
declare
    v_slice smallint;
    v_left bigint := p_amount;
    v_take bigint;
    r record;
begin
    if p_amount <= 0 then
        return true;
    end if;
    update budget_slices set remaining = remaining - p_amount
     where budget_key = p_key and slice = p_slice and remaining >= p_amount;
    if found then
        return true;
    end if;
    for v_slice in
        select slice from budget_slices
         where budget_key = p_key and remaining >= p_amount order by remaining desc
    loop
        update budget_slices set remaining = remaining - p_amount
         where budget_key = p_key and slice = v_slice and remaining >= p_amount;
        if found then
            return true;
        end if;
    end loop;
    if not exists (select 1 from budget_slices where budget_key = p_key) then
        return true;
    end if;
    -- Slow path: lock every slice in slice order, then decide on what the locks protect,
    -- so a concurrent take can never make the spread fall short.
    perform 1 from budget_slices where budget_key = p_key order by slice for update;
    if (select sum(remaining) from budget_slices where budget_key = p_key) < p_amount then
        return false;
    end if;
    for r in select slice, remaining from budget_slices where budget_key = p_key
              order by slice
    loop
        v_take := least(r.remaining, v_left);
        if v_take > 0 then
            update budget_slices set remaining = remaining - v_take
             where budget_key = p_key and slice = r.slice;
            v_left := v_left - v_take;
        end if;
        exit when v_left = 0;
    end loop;
    return true;
end $function$;
