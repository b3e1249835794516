-- The event log: sqlite-es 0.5's `events` and `snapshots` tables, plus what
-- they lack, all filled by defaults. SQLite commits one writer at a time and
-- deletes are refused below, so the rowid grows in commit order: it is the
-- global position (see docs/adr/0002).
create table events (
    aggregate_type text    not null,
    aggregate_id   text    not null,
    sequence       integer not null check (sequence >= 1),
    event_type     text    not null,
    event_version  text    not null,
    payload        text    not null,
    metadata       text    not null,
    event_id       text    not null default (lower(
        hex(randomblob(4)) || '-' || hex(randomblob(2)) || '-4' || substr(hex(randomblob(2)), 2) || '-' ||
        substr('89ab', 1 + (abs(random()) % 4), 1) || substr(hex(randomblob(2)), 2) || '-' || hex(randomblob(6)))),
    recorded_at    text    not null default (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    primary key (aggregate_type, aggregate_id, sequence)
);

create index events_recorded_at on events (aggregate_id, recorded_at);
create index events_idempotency_key on events (json_extract(metadata, '$.idempotency_key'))
    where json_extract(metadata, '$.idempotency_key') is not null;
create unique index events_upn_unique on events (
    (case event_type when 'ChildRegistered' then json_extract(payload, '$.upn') else json_extract(payload, '$.new_upn') end)
) where event_type in ('ChildRegistered', 'UpnReplaced');

create table snapshots (
    aggregate_type   text    not null,
    aggregate_id     text    not null,
    last_sequence    integer not null check (last_sequence >= 0),
    current_snapshot integer not null check (current_snapshot >= 0),
    payload          text    not null,
    primary key (aggregate_type, aggregate_id)
);

create trigger events_no_update before update on events
begin
    select raise(abort, 'the events table is append-only: UPDATE refused');
end;
create trigger events_no_delete before delete on events
begin
    select raise(abort, 'the events table is append-only: DELETE refused');
end;
