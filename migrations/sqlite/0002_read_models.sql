-- Read models: every table here is a projection of the event log, thrown
-- away and rebuilt by `rollcall projections rebuild`. Dates are ISO-8601
-- text (YYYY-MM-DD, timestamps in UTC with a Z) so the same SQL serves
-- PostgreSQL and SQLite; they sort correctly as text.

-- Where each projection has read the log to: (last_tx, last_pos) is the
-- commit-order position of the last event applied (last_tx is always 0 on SQLite).
create table projection_checkpoints (
    name           text    primary key,
    last_tx        bigint  not null default 0,
    last_pos       bigint  not null default 0,
    events_applied bigint  not null default 0,
    updated_at     text,
    error          text
);
insert into projection_checkpoints (name) values
    ('child_cases'), ('destination_changes'), ('day_one_no_shows'), ('timeline');

-- child_cases: one row per child, with the folded case state the projector keeps.
create table child_summary (
    child_id              text    primary key,
    upn                   text    not null,
    given_name            text    not null,
    family_name           text    not null,
    date_of_birth         text    not null,
    la_code               text    not null,
    school_urn            text,
    destination_urn       text,
    destination_confirmed bigint  not null,
    year_group            bigint,
    sen                   text,
    flags                 text    not null,
    state                 text    not null,
    version               bigint  not null,
    last_position         bigint  not null,
    updated_at            text    not null
);
create index child_summary_la on child_summary (la_code, child_id);
create index child_summary_school on child_summary (school_urn);
create index child_summary_destination on child_summary (destination_urn);

-- Every UPN a child has had, current and former, for look-up.
create table child_upns (
    upn      text primary key,
    child_id text not null
);

-- One row per child and reason; cleared rows stay, for trends.
create table watchlist (
    child_id         text   not null,
    reason           text   not null,
    la_code          text   not null,
    since            text   not null,
    opened_position  bigint not null,
    cleared_on       text,
    cleared_position bigint,
    primary key (child_id, reason, opened_position)
);
create index watchlist_open on watchlist (la_code, reason, child_id) where cleared_on is null;
create index watchlist_open_child on watchlist (la_code, child_id) where cleared_on is null;

-- Open track steps with their deadlines; overdue is decided at query time.
create table open_track_steps (
    child_id text not null,
    la_code  text not null,
    track    text not null,
    step     text not null,
    due_on   text not null,
    primary key (child_id, track, step)
);
create index open_track_steps_due on open_track_steps (la_code, due_on);

-- A school's incoming cohort: children whose destination it is and who have not arrived.
create table incoming_cohort (
    child_id      text    primary key,
    school_urn    text    not null,
    la_code       text    not null,
    confirmed     bigint  not null,
    last_position bigint  not null
);
create index incoming_cohort_school on incoming_cohort (school_urn, child_id);

-- The latest transition information shared for a child with a school.
create table transition_info (
    child_id      text    not null,
    school_urn    text    not null,
    from_urn      text,
    sen           text,
    semh          bigint  not null,
    safeguarding  bigint  not null,
    summary       text    not null,
    strategies    text    not null,
    shared_on     text    not null,
    last_position bigint  not null,
    primary key (child_id, school_urn)
);

-- destination_changes
create table destination_changes (
    position   bigint primary key,
    child_id   text   not null,
    la_code    text   not null,
    from_urn   text   not null,
    to_urn     text   not null,
    reason     text   not null,
    changed_on text   not null,
    changed_at text   not null,
    actor_name text   not null,
    actor_role text   not null,
    actor_org  text   not null
);
create index destination_changes_la on destination_changes (la_code, changed_on, position);

-- day_one_no_shows
create table day_one_no_shows (
    child_id         text    not null,
    school_urn       text    not null,
    date             text    not null,
    la_code          text    not null,
    resolved         bigint  not null,
    resolved_on      text,
    recorded_position bigint not null,
    primary key (child_id, school_urn, date)
);
create index day_one_no_shows_la on day_one_no_shows (la_code, school_urn);

-- timeline: every event of a child with who recorded it, across schools.
create table timeline (
    position    bigint primary key,
    child_id    text   not null,
    sequence    bigint not null,
    event_type  text   not null,
    summary     text   not null,
    school_urn  text,
    la_code     text   not null,
    recorded_at text   not null,
    actor_name  text   not null,
    actor_role  text   not null,
    actor_org   text   not null
);
create index timeline_child on timeline (child_id, sequence);
