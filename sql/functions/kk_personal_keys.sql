-- The payload keys that may carry personal data (coordinates, device, phone, OTP, identity).
create or replace function kk_personal_keys() returns text[] language sql immutable as $$
    select array['lat', 'lon', 'accuracy_m', 'device_id', 'phone', 'code', 'line_sub',
                 'display_name', 'name', 'user_id']
$$;
