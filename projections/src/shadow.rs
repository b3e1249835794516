//! Shadow rebuilds on PostgreSQL (ADR 0008).
//!
//! A rebuild in place empties a projection's tables and refills them while
//! people read them: the watchlist is empty, then partial, for as long as the
//! rebuild runs, and every row goes through every index as it is written. A
//! shadow rebuild instead writes fresh tables in a schema of their own,
//! `rollcall_rebuild_<projection>`, with the projector's own code and its own
//! checkpoint there (its connections put that schema first on the search path,
//! so the unqualified SQL finds the shadow tables and `public.events`). The
//! tables get their primary keys at once (upserts need them) and their other
//! indexes once, at the end, each built in one sort. Then one transaction
//! swaps them in: it drops the live tables, moves the shadow ones into
//! `public` and sets the live checkpoint to the shadow's. Readers wait for
//! that transaction only, and see the old tables or the new, never a mix.
//!
//! The live projector, if a `serve` holds the projection's lock, goes on
//! feeding the old tables meanwhile; after the swap its checkpoint guard
//! fails, and it carries on from the shadow's checkpoint. Whatever the shadow
//! had not read yet, it applies then: nothing is lost and nothing applied
//! twice, as with any moved checkpoint.
//!
//! It needs more rights than the projector: creating a schema in the
//! database, creating tables in `public` and owning the live tables (the
//! migrations' owner has them). A role without them, such as the service role
//! of docs/operations.md, rebuilds in place, as before.

use std::time::{Duration, Instant};

use sqlx::{Executor, PgPool};

use crate::Database;
use crate::projector::{ProjectionError, catch_up, tables_of};

/// The schema a shadow rebuild of `name` writes in.
fn schema_of(name: &str) -> String {
    format!("rollcall_rebuild_{name}")
}

/// Why this connection cannot rebuild `name` in a shadow, or `None` if it can.
pub(crate) async fn refusal(pool: &PgPool, name: &str) -> Result<Option<String>, sqlx::Error> {
    let tables: Vec<String> = tables_of(name).iter().map(|&t| t.to_owned()).collect();
    let (create_schema, create_in_public, owns, found): (bool, bool, bool, i64) = sqlx::query_as(
        "select has_database_privilege(current_database(), 'CREATE'), \
                has_schema_privilege('public', 'CREATE'), \
                coalesce(bool_and(pg_has_role(tableowner, 'USAGE')), false), \
                count(*) \
           from pg_tables where schemaname = 'public' and tablename = any($1)",
    )
    .bind(&tables)
    .fetch_one(pool)
    .await?;
    let why = if usize::try_from(found).ok() != Some(tables.len()) {
        Some(format!("not every table of {name} is in the public schema"))
    } else if !create_schema {
        Some("the role may not create schemas in this database".to_owned())
    } else if !create_in_public {
        Some("the role may not create tables in the public schema".to_owned())
    } else if !owns {
        Some(format!("the role does not own {}", tables.join(", ")))
    } else {
        None
    };
    Ok(why)
}

/// Rebuilds `name` in a shadow schema and swaps it in; returns the events the
/// shadow applied. The caller catches the live tables up from there (or
/// leaves that to the `serve` holding the projection's lock). On any failure
/// the live tables are as they were and the shadow is dropped.
pub(crate) async fn rebuild(
    db: &Database,
    pool: &PgPool,
    name: &str,
    batch: i64,
) -> Result<u64, ProjectionError> {
    // One shadow per projection: a second rebuild would drop the first's.
    // Held on a connection of its own until this returns (or the process dies).
    let mut holder = pool.acquire().await?.detach();
    let free: bool = sqlx::query_scalar("select pg_try_advisory_lock(hashtext($1))")
        .bind(format!("rollcall:rebuild:{name}"))
        .fetch_one(&mut holder)
        .await?;
    if !free {
        return Err(ProjectionError::RebuildRunning(name.to_owned()));
    }
    let schema = schema_of(name);
    let built = build(db, pool, name, &schema, batch).await;
    let swapped = match built {
        Ok(applied) => swap(pool, name, &schema).await.map(|()| applied),
        Err(error) => Err(error),
    };
    if swapped.is_err() {
        // Best effort: the next rebuild drops it anyway.
        let _ = pool
            .execute(format!("drop schema if exists {schema} cascade").as_str())
            .await;
    }
    // Closing the connection releases the lock.
    let _ = sqlx::Connection::close(holder).await;
    swapped
}

/// Creates the shadow tables, catches them up from the start of the log and
/// indexes them.
async fn build(
    db: &Database,
    pool: &PgPool,
    name: &str,
    schema: &str,
    batch: i64,
) -> Result<u64, ProjectionError> {
    let tables = tables_of(name);
    // Out of the pool: its session settings (below) go with it.
    let mut conn = pool.acquire().await?.detach();
    // A shadow left by a rebuild that died is of no use: it starts again.
    conn.execute(
        format!("drop schema if exists {schema} cascade; create schema {schema}").as_str(),
    )
    .await?;
    for table in tables {
        conn.execute(
            format!("create table {schema}.{table} (like public.{table} including all excluding indexes)")
                .as_str(),
        )
        .await?;
        let key: Option<String> = sqlx::query_scalar(
            "select pg_get_constraintdef(oid) from pg_constraint \
              where conrelid = $1::regclass and contype = 'p'",
        )
        .bind(format!("public.{table}"))
        .fetch_optional(&mut conn)
        .await?;
        if let Some(key) = key {
            conn.execute(format!("alter table {schema}.{table} add {key}").as_str())
                .await?;
        }
    }
    conn.execute(
        format!(
            "create table {schema}.projection_checkpoints \
               (like public.projection_checkpoints including all)"
        )
        .as_str(),
    )
    .await?;
    sqlx::query(&format!(
        "insert into {schema}.projection_checkpoints (name) values ($1)"
    ))
    .bind(name)
    .execute(&mut conn)
    .await?;

    let started = Instant::now();
    let shadow = db.in_schema(schema).await?;
    let applied = catch_up(&shadow, name, batch).await;
    shadow.close().await;
    let applied = applied?;
    tracing::info!(
        projection = name,
        events = applied,
        seconds = started.elapsed().as_secs_f64(),
        "shadow tables filled"
    );
    let started = Instant::now();

    // Each secondary index in one sort, with room to sort in memory.
    conn.execute("set maintenance_work_mem = '256MB'").await?;
    for table in tables {
        let definitions: Vec<String> = sqlx::query_scalar(
            "select pg_get_indexdef(indexrelid) from pg_index \
              where indrelid = $1::regclass and not indisprimary order by indexrelid",
        )
        .bind(format!("public.{table}"))
        .fetch_all(&mut conn)
        .await?;
        for definition in definitions {
            let live = format!(" ON public.{table} ");
            if !definition.contains(&live) {
                return Err(ProjectionError::Database(sqlx::Error::Protocol(format!(
                    "cannot rebuild an index of {table} in the shadow: {definition}"
                ))));
            }
            conn.execute(
                definition
                    .replacen(&live, &format!(" ON {schema}.{table} "), 1)
                    .as_str(),
            )
            .await?;
        }
        // Statistics before anyone queries them, and the visibility map the
        // watchlist page's index-only scan needs; autovacuum sees to the rest.
        let analyze = if VACUUMED.contains(table) {
            "vacuum (analyze)"
        } else {
            "analyze"
        };
        conn.execute(format!("{analyze} {schema}.{table}").as_str())
            .await?;
        copy_grants(&mut conn, schema, table).await?;
    }
    tracing::info!(
        projection = name,
        seconds = started.elapsed().as_secs_f64(),
        "shadow tables indexed"
    );
    Ok(applied)
}

/// Tables vacuumed before the swap rather than left to autovacuum: those read
/// by index-only scans, which fetch every row from the table until the
/// visibility map is set.
const VACUUMED: [&str; 1] = ["watchlist"];

/// Grants on the shadow table what the live one grants (the service role's
/// rights, docs/operations.md).
async fn copy_grants(
    conn: &mut sqlx::PgConnection,
    schema: &str,
    table: &str,
) -> Result<(), sqlx::Error> {
    let grants: Vec<(String, String)> = sqlx::query_as(
        "select a.privilege_type, \
                case when a.grantee = 0 then 'public' else quote_ident(pg_get_userbyid(a.grantee)) end \
           from pg_class c, aclexplode(c.relacl) a \
          where c.oid = $1::regclass and a.grantee <> c.relowner",
    )
    .bind(format!("public.{table}"))
    .fetch_all(&mut *conn)
    .await?;
    for (privilege, grantee) in grants {
        conn.execute(format!("grant {privilege} on {schema}.{table} to {grantee}").as_str())
            .await?;
    }
    Ok(())
}

/// How often the swap is tried when PostgreSQL breaks a deadlock with a live
/// projector by cancelling it.
const SWAP_ATTEMPTS: u32 = 5;

/// Puts the shadow tables in place of the live ones and the shadow's
/// checkpoint in place of the live one, in one transaction.
async fn swap(pool: &PgPool, name: &str, schema: &str) -> Result<(), ProjectionError> {
    let mut attempt = 1;
    loop {
        match try_swap(pool, name, schema).await {
            Err(sqlx::Error::Database(error))
                if attempt < SWAP_ATTEMPTS && error.code().as_deref() == Some("40P01") =>
            {
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            other => return other.map_err(ProjectionError::from),
        }
    }
}

async fn try_swap(pool: &PgPool, name: &str, schema: &str) -> Result<(), sqlx::Error> {
    let tables = tables_of(name);
    let live: Vec<String> = tables
        .iter()
        .map(|table| format!("public.{table}"))
        .collect();
    let mut tx = pool.begin().await?;
    // The checkpoint row first, as a live projector takes it first: one
    // that is writing a batch finishes, and the next one waits for the swap
    // and then finds its checkpoint moved.
    sqlx::query("select 1 from public.projection_checkpoints where name = $1 for update")
        .bind(name)
        .execute(&mut *tx)
        .await?;
    let owners: Vec<(String, String)> = sqlx::query_as(
        "select tablename::text, quote_ident(tableowner) from pg_tables \
          where schemaname = 'public' and tablename = any($1) and tableowner <> current_user",
    )
    .bind(tables.iter().map(|&t| t.to_owned()).collect::<Vec<_>>())
    .fetch_all(&mut *tx)
    .await?;
    tx.execute(format!("lock table {} in access exclusive mode", live.join(", ")).as_str())
        .await?;
    tx.execute(format!("drop table {}", live.join(", ")).as_str())
        .await?;
    for table in tables {
        tx.execute(format!("alter table {schema}.{table} set schema public").as_str())
            .await?;
    }
    for (table, owner) in owners {
        tx.execute(format!("alter table public.{table} owner to {owner}").as_str())
            .await?;
    }
    sqlx::query(&format!(
        "update public.projection_checkpoints p \
            set last_tx = s.last_tx, last_pos = s.last_pos, events_applied = s.events_applied, \
                updated_at = s.updated_at, error = s.error \
           from {schema}.projection_checkpoints s \
          where p.name = $1 and s.name = $1"
    ))
    .bind(name)
    .execute(&mut *tx)
    .await?;
    tx.execute(format!("drop schema {schema} cascade").as_str())
        .await?;
    tx.commit().await
}
