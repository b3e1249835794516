-- API tokens (stored only as a SHA-256 hash) and the append-only access log.
create table api_tokens (
    name        text primary key,
    token_hash  text not null unique,
    role        text not null,
    la_code     text,
    school_urn  text,
    created_at  text not null,
    revoked_at  text
);

create table access_log (
    id          integer primary key autoincrement,
    at          text not null default (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    actor_name  text not null,
    actor_role  text not null,
    actor_org   text not null,
    child_id    text,
    endpoint    text not null,
    action      text not null,
    request_id  text not null
);
create index access_log_child on access_log (child_id, id);

create trigger access_log_no_update before update on access_log
begin
    select raise(abort, 'the access_log table is append-only: UPDATE refused');
end;
create trigger access_log_no_delete before delete on access_log
begin
    select raise(abort, 'the access_log table is append-only: DELETE refused');
end;
