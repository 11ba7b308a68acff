-- The hashed bytes: every field length-prefixed so no two rows can share a material.
-- kuekan.audit.verify rebuilds the same text in Python from the stored fields.
CREATE OR REPLACE FUNCTION public.kk_audit_material(p_prev text, p_id bigint, p_at timestamp with time zone, p_actor text, p_action text, p_subject text, p_details jsonb)
 RETURNS text
 LANGUAGE sql
 IMMUTABLE
AS $function$
    select string_agg(length(f) || ':' || f, '|' order by n)
      from unnest(array[p_prev, p_id::text,
                        to_char(p_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
                        p_actor, p_action, p_subject, p_details::text]) with ordinality as x(f, n)
$function$;
