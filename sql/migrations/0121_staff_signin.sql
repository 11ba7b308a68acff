-- Staff and admin sign-in with LINE Login, revocation, rotating refresh tokens (issue #14 point 3).
--
-- * staff.status / staff.token_version: disabling a staff member or admin sets status
--   'disabled' and bumps the version; every request of a staff or admin token is checked against
--   this row (cached a couple of seconds per process), so a disabled principal is refused within
--   seconds whatever its access token's expiry.
-- * staff_invitations: an admin invites a LINE account to a merchant (role merchant) or an
--   organisation (role admin). Only the SHA-256 of the code is stored; a code is redeemed once,
--   before it expires, in the same transaction that creates or links the staff row.
-- * refresh_tokens: every refresh token issued (its jti) in a family that starts at a sign-in.
--   A refresh token is used once; a second use means it was stolen or replayed, and the whole
--   family is revoked.

alter table staff add column status text not null default 'active'
    check (status in ('active', 'disabled'));
alter table staff add column token_version int not null default 0;
alter table staff add column display_name text not null default '';
alter table staff add column disabled_at timestamptz;
alter table staff add column disabled_by text;

create table staff_invitations (
    id bigint generated always as identity primary key,
    code_hash text not null unique,
    role text not null check (role in ('merchant', 'admin')),
    merchant_id bigint references merchants (id),
    org text references organisations (code),
    created_by text not null,
    created_at timestamptz not null default now(),
    expires_at timestamptz not null,
    redeemed_at timestamptz,
    staff_id bigint references staff (id),
    check ((role = 'merchant' and merchant_id is not null and org is null)
           or (role = 'admin' and org is not null and merchant_id is null))
);

create table refresh_tokens (
    jti text primary key,
    family text not null,
    kind text not null check (kind in ('member', 'staff')),
    subject_id bigint not null,
    expires_at timestamptz not null,
    created_at timestamptz not null default now(),
    used_at timestamptz,
    revoked_at timestamptz
);
create index refresh_tokens_family on refresh_tokens (family);
create index refresh_tokens_subject on refresh_tokens (kind, subject_id) where revoked_at is null;
create index refresh_tokens_expires on refresh_tokens (expires_at);
