-- The event log: postgres-es 0.5's `events` and `snapshots` tables, plus what
-- they lack. The extra columns are all filled by defaults, so postgres-es's
-- INSERT needs no change.
create table events (
    aggregate_type  text   not null,
    aggregate_id    text   not null,
    sequence        bigint not null check (sequence >= 1),
    event_type      text   not null,
    event_version   text   not null,
    payload         jsonb  not null,
    metadata        jsonb  not null,
    -- Commit-safe reading order is (tx_id, global_position): see docs/adr/0002.
    global_position bigint generated always as identity,
    tx_id           xid8   not null default pg_current_xact_id(),
    event_id        uuid   not null default gen_random_uuid(),
    recorded_at     timestamptz not null default clock_timestamp(),
    primary key (aggregate_type, aggregate_id, sequence)
);

create unique index events_global_position on events (global_position);
create unique index events_commit_order on events (tx_id, global_position);
create index events_recorded_at on events (aggregate_id, recorded_at);
create index events_idempotency_key on events ((metadata ->> 'idempotency_key'))
    where metadata ? 'idempotency_key';

-- A UPN belongs to one child, ever: a temporary UPN that was replaced stays
-- taken. Enforced here, in the append itself, so two racing registrations
-- cannot both win.
create unique index events_upn_unique on events (
    (case event_type when 'ChildRegistered' then payload ->> 'upn' else payload ->> 'new_upn' end)
) where event_type in ('ChildRegistered', 'UpnReplaced');

-- postgres-es's snapshot table. Snapshots are off (see docs/adr/0003); the
-- table exists so a snapshot mode can be tested against it.
create table snapshots (
    aggregate_type   text   not null,
    aggregate_id     text   not null,
    last_sequence    bigint not null check (last_sequence >= 0),
    current_snapshot bigint not null check (current_snapshot >= 0),
    payload          jsonb  not null,
    primary key (aggregate_type, aggregate_id)
);

-- The log is append-only in the database itself, whoever connects.
create function rollcall_refuse_change() returns trigger language plpgsql as $$
begin
    raise exception 'the % table is append-only: % refused', tg_table_name, tg_op
        using errcode = 'insufficient_privilege';
end;
$$;

create trigger events_append_only before update or delete on events
    for each row execute function rollcall_refuse_change();
create trigger events_no_truncate before truncate on events
    for each statement execute function rollcall_refuse_change();
