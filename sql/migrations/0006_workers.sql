-- Workers: outbox processing and dead letters, fraud (projections, alerts, reviews, strikes,
-- blacklist), the hash-chained audit log and its database role, LINE/SMS notifications, PDPA.

-- Outbox ------------------------------------------------------------------------------------
-- A re-drive bumps this so the new job gets a fresh queue id (outbox:<id>:r<n>).
alter table outbox add column redrives int not null default 0;

-- One row per outbox event whose handler committed: the handler inserts it in its own
-- transaction, so a second delivery of the same event finds it and does nothing.
create table outbox_processed (
    outbox_id bigint primary key,
    processed_at timestamptz not null default now()
);

create table outbox_dead (
    outbox_id bigint primary key,
    topic text not null,
    error text not null,
    attempts int not null,
    status text not null default 'dead' check (status in ('dead', 'redriven')),
    created_at timestamptz not null default now(),
    redriven_at timestamptz,
    redriven_by text
);

-- Effects of the 'ops.probe' topic: an end-to-end check of relay + worker that ops can fire at
-- any time. No unique key on purpose: a duplicate delivery would show up as a second row.
create table ops_probe_effects (
    id bigint generated always as identity primary key,
    outbox_id bigint not null,
    at timestamptz not null default now()
);
create index ops_probe_effects_outbox on ops_probe_effects (outbox_id);

-- Fraud ---------------------------------------------------------------------------------------
-- Projections of outbox events, so the rules never depend on other domains' tables.
create table fraud_checkins (
    outbox_id bigint primary key,
    member_id bigint not null,
    at timestamptz not null,
    lat double precision,
    lon double precision,
    accuracy_m double precision,
    device_id text,
    geofence_id bigint,
    mission_id bigint,
    is_event boolean not null default false
);
create index fraud_checkins_member on fraud_checkins (member_id, at desc);
create index fraud_checkins_device on fraud_checkins (device_id, at) where device_id is not null;
create index fraud_checkins_geofence on fraud_checkins (geofence_id, at);
create index fraud_checkins_coords on fraud_checkins (round(lat::numeric, 6), round(lon::numeric, 6));

create table fraud_awards (
    outbox_id bigint primary key,
    kind text not null check (kind in ('award', 'redeem')),
    member_id bigint,
    merchant_id bigint,
    staff_id bigint,
    points bigint not null default 0,
    transfer_id bigint,
    at timestamptz not null
);
create unique index fraud_awards_transfer on fraud_awards (kind, transfer_id) where transfer_id is not null;
create index fraud_awards_merchant on fraud_awards (merchant_id, at);
create index fraud_awards_member_merchant on fraud_awards (member_id, merchant_id, at);

create table fraud_alerts (
    id bigint generated always as identity primary key,
    rule text not null,
    reason_code text not null,
    severity text not null check (severity in ('low', 'medium', 'high')),
    member_id bigint,
    merchant_id bigint,
    device_id text,
    outbox_id bigint,
    evidence jsonb not null default '{}'::jsonb,
    created_at timestamptz not null default now(),
    unique (rule, outbox_id)
);
create index fraud_alerts_member on fraud_alerts (member_id, id desc);
create index fraud_alerts_rule on fraud_alerts (rule, id desc);

-- held: [{transfer_id, points, pending_id}] — points reserved (pending) until the decision.
create table fraud_reviews (
    id bigint generated always as identity primary key,
    alert_id bigint not null references fraud_alerts (id),
    member_id bigint,
    merchant_id bigint,
    holds_member boolean not null default false,
    held jsonb not null default '[]'::jsonb,
    status text not null default 'open' check (status in ('open', 'approved', 'rejected')),
    decided_by text,
    decided_at timestamptz,
    note text,
    created_at timestamptz not null default now()
);
create index fraud_reviews_open on fraud_reviews (id) where status = 'open';
create index fraud_reviews_member on fraud_reviews (member_id);

create table fraud_strikes (
    id bigint generated always as identity primary key,
    member_id bigint not null,
    review_id bigint unique references fraud_reviews (id),
    created_at timestamptz not null default now()
);
create index fraud_strikes_member on fraud_strikes (member_id);

create table fraud_blacklist (
    id bigint generated always as identity primary key,
    kind text not null check (kind in ('member', 'device', 'merchant')),
    value text not null,
    reason text not null,
    created_by text not null,
    created_at timestamptz not null default now(),
    lifted_at timestamptz,
    lifted_by text
);
create unique index fraud_blacklist_active on fraud_blacklist (kind, value) where lifted_at is null;

-- Audit log -----------------------------------------------------------------------------------
create sequence audit_log_id_seq;
create table audit_log (
    id bigint primary key,
    at timestamptz not null,
    actor text not null,
    action text not null,
    subject text not null,
    details jsonb not null,
    prev_hash text not null,
    hash text not null
);
-- kk_audit_material(): its current body is sql/functions/kk_audit_material.sql
-- kk_audit_append(): its current body is sql/functions/kk_audit_append.sql

create trigger audit_log_append_only before update or delete on audit_log
    for each row execute function kk_forbid_change();
create trigger audit_log_no_truncate before truncate on audit_log
    for each statement execute function kk_forbid_change();

-- The application's role: everything it needs, but never UPDATE/DELETE/TRUNCATE on the audit
-- log (login roles of the API and workers are made members of it; see docs/WORKERS.md).
do $$
begin
    if not exists (select 1 from pg_roles where rolname = 'kuekan_app') then
        create role kuekan_app nologin;
    end if;
end $$;
grant usage on schema public to kuekan_app;
grant select, insert, update, delete on all tables in schema public to kuekan_app;
grant usage, select on all sequences in schema public to kuekan_app;
grant execute on all functions in schema public to kuekan_app;
alter default privileges in schema public grant select, insert, update, delete on tables to kuekan_app;
alter default privileges in schema public grant usage, select on sequences to kuekan_app;
revoke update, delete, truncate on audit_log from kuekan_app;

-- Notifications -------------------------------------------------------------------------------
create table notify_prefs (
    member_id bigint primary key references members (id),
    line_opt_in boolean not null default true,
    lang text not null default 'th' check (lang in ('th', 'en')),
    phone text,
    phone_verified_at timestamptz,
    updated_at timestamptz not null default now()
);

-- Points digest: one message per member per Asia/Bangkok day, however many check-ins.
create table notify_digest (
    member_id bigint not null,
    day date not null,
    points bigint not null default 0,
    checkins int not null default 0,
    sent_at timestamptz,
    primary key (member_id, day)
);
create index notify_digest_unsent on notify_digest (day) where sent_at is null;

-- One logical send. retry_key is fixed (and committed) before the first attempt.
create table notify_messages (
    id bigint generated always as identity primary key,
    dedup_key text not null unique,
    kind text not null,
    channel text not null check (channel in ('line', 'sms')),
    endpoint text not null check (endpoint in ('push', 'multicast', 'narrowcast', 'broadcast', 'sms')),
    member_id bigint,
    recipients jsonb not null default '[]'::jsonb,
    messages jsonb not null,
    options jsonb not null default '{}'::jsonb,
    retry_key uuid not null,
    status text not null default 'pending'
        check (status in ('pending', 'sent', 'failed', 'skipped')),
    attempts int not null default 0,
    outbox_id bigint,
    request_ids jsonb,
    error text,
    created_at timestamptz not null default now(),
    sent_at timestamptz
);
create index notify_messages_pending on notify_messages (created_at) where status = 'pending';
create index notify_messages_outbox on notify_messages (outbox_id) where outbox_id is not null;

create table line_webhook_events (
    webhook_event_id text primary key,
    type text not null,
    user_id text,
    received_at timestamptz not null default now()
);

create table broadcasts (
    id bigint generated always as identity primary key,
    kind text not null check (kind in ('announcement', 'disaster')),
    title text not null,
    body text not null,
    district_codes text[],
    created_by text not null,
    created_at timestamptz not null default now()
);

create table otp_challenges (
    id uuid primary key,
    member_id bigint not null,
    phone text not null,
    code_hash text not null,
    expires_at timestamptz not null,
    attempts int not null default 0,
    verified_at timestamptz,
    created_at timestamptz not null default now()
);
create index otp_challenges_member on otp_challenges (member_id, created_at desc);

-- PDPA ----------------------------------------------------------------------------------------
create table consents (
    id bigint generated always as identity primary key,
    member_id bigint not null references members (id),
    purpose text not null,
    version text not null,
    granted boolean not null,
    at timestamptz not null default now()
);
create index consents_member on consents (member_id, purpose, id desc);

create table erasures (
    member_id bigint primary key references members (id),
    pseudonym text not null,
    erased_at timestamptz not null default now()
);

-- Tables created above also need the app role's grants (default privileges cover later ones).
grant select, insert, update, delete on all tables in schema public to kuekan_app;
revoke update, delete, truncate on audit_log from kuekan_app;
grant usage, select on all sequences in schema public to kuekan_app;
grant execute on all functions in schema public to kuekan_app;
