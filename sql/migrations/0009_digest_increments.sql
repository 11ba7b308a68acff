-- Points that arrive after a member's digest went out are reported by the next digest run:
-- each digest reports what was added since the previous one.
alter table notify_digest
    add column sent_points bigint not null default 0,
    add column sent_checkins int not null default 0;
update notify_digest set sent_points = points, sent_checkins = checkins where sent_at is not null;
create index notify_digest_unreported on notify_digest (day) where points > sent_points;
