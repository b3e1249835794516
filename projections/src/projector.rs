//! The projector: a durable, checkpointed reader of the event log that feeds
//! the read models.
//!
//! It reads the log in commit-safe order (on PostgreSQL by `(tx_id,
//! global_position)` and only below the oldest running transaction, so an
//! event whose transaction commits late is never skipped; on SQLite by rowid,
//! which grows in commit order), and applies each batch and moves the
//! checkpoint in one transaction: a crash anywhere loses nothing and applies
//! nothing twice. See docs/adr/0002-projector-ordering.md.

use std::time::Duration;

use domain::ChildEvent;
use sqlx::Row;
use tokio::sync::watch;

use crate::db::{BackendKind, Database, Typed};
use crate::read_models::{self, CaseCache};
use crate::store::{normalise_timestamp, timestamp};

/// The projections, each with its own checkpoint and tables.
pub const PROJECTIONS: [&str; 4] = [
    "child_cases",
    "destination_changes",
    "day_one_no_shows",
    "timeline",
];

/// The tables each projection owns (and a rebuild empties).
pub fn tables_of(name: &str) -> &'static [&'static str] {
    match name {
        "child_cases" => &[
            "child_summary",
            "child_upns",
            "watchlist",
            "open_track_steps",
            "incoming_cohort",
            "transition_info",
        ],
        "destination_changes" => &["destination_changes"],
        "day_one_no_shows" => &["day_one_no_shows"],
        "timeline" => &["timeline"],
        _ => &[],
    }
}

/// Why a projection could not advance.
#[derive(Debug, thiserror::Error)]
pub enum ProjectionError {
    #[error("no projection is named {0:?}; projections are {PROJECTIONS:?}")]
    UnknownProjection(String),
    #[error("event at position {position} could not be read: {detail}")]
    BadEvent { position: i64, detail: String },
    #[error("the checkpoint of {0} moved under this projector (a rebuild or another projector)")]
    CheckpointMoved(String),
    #[error("the projector was stopped")]
    Stopped,
    #[error("another rebuild of {0} is running; wait for it to finish")]
    RebuildRunning(String),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// One event read from the log, with its commit-order position.
#[derive(Debug, Clone)]
pub struct StoredEvent {
    /// The writing transaction's id (0 on SQLite).
    pub tx: i64,
    pub position: i64,
    pub child_id: String,
    pub sequence: i64,
    pub event: ChildEvent,
    pub metadata: EventMeta,
    pub recorded_at: String,
}

/// What the projections use of an event's metadata: who recorded it. The
/// rest (request id, command, idempotency key) stays in the log for the
/// history endpoint.
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct EventMeta {
    #[serde(default)]
    pub actor_name: String,
    #[serde(default)]
    pub actor_role: String,
    #[serde(default)]
    pub actor_org: String,
}

impl StoredEvent {
    /// The day the event says it happened, or the day it was recorded.
    pub fn date(&self) -> String {
        self.event.date().map_or_else(
            || self.recorded_at.chars().take(10).collect(),
            |date| date.to_string(),
        )
    }

    /// A metadata field the projections use, or `""`.
    pub fn meta(&self, key: &str) -> &str {
        match key {
            "actor_name" => &self.metadata.actor_name,
            "actor_role" => &self.metadata.actor_role,
            "actor_org" => &self.metadata.actor_org,
            _ => "",
        }
    }
}

// On PostgreSQL the log is read through the typed pool, with `recorded_at` in
// its binary form (formatted here, not by `to_char` on the server): the read is
// most of what a projection that writes little costs.
const PG_READ: &str = "select tx_id::text::bigint as tx, global_position as position, aggregate_id, sequence, \
     payload::text as payload, metadata::text as metadata, recorded_at \
     from events \
     where aggregate_type = 'child_case' \
       and (tx_id, global_position) > ($1::text::xid8, $2) \
       and tx_id < pg_snapshot_xmin(pg_current_snapshot()) \
     order by tx_id, global_position limit $3";
const SQLITE_READ: &str = "select 0 as tx, rowid as position, aggregate_id, sequence, payload, metadata, recorded_at \
     from events where aggregate_type = 'child_case' and rowid > $2 \
     order by rowid limit $3";

/// Reads up to `limit` events after `(last_tx, last_pos)` in commit order.
///
/// Rows are parsed as they arrive, so the client parses while the server
/// is still sending.
pub async fn read_after(
    db: &Database,
    last_tx: i64,
    last_pos: i64,
    limit: i64,
) -> Result<Vec<StoredEvent>, ProjectionError> {
    use futures::TryStreamExt as _;
    let mut events = Vec::with_capacity(usize::try_from(limit).unwrap_or(0).min(100_000));
    match db.typed() {
        Typed::Postgres(pool) => {
            let mut rows = sqlx::query(PG_READ)
                .bind(last_tx.to_string())
                .bind(last_pos)
                .bind(limit)
                .fetch(pool);
            while let Some(row) = rows.try_next().await? {
                let recorded_at = timestamp(row.try_get(6)?);
                events.push(stored_event(&row, recorded_at)?);
            }
        }
        Typed::Sqlite(_) => {
            let mut rows = sqlx::query(SQLITE_READ)
                .bind(last_tx.to_string())
                .bind(last_pos)
                .bind(limit)
                .fetch(db.any());
            while let Some(row) = rows.try_next().await? {
                let recorded_at = normalise_timestamp(row.try_get(6)?);
                events.push(stored_event(&row, recorded_at)?);
            }
        }
    }
    Ok(events)
}

/// An event from a row of `PG_READ` or `SQLITE_READ`, whose timestamp the
/// caller has read (its type differs between the backends). Columns by
/// position, in the order of the select lists: a look-up by name hashes the
/// name, seven times an event.
fn stored_event<'r, R>(row: &'r R, recorded_at: String) -> Result<StoredEvent, ProjectionError>
where
    R: Row,
    usize: sqlx::ColumnIndex<R>,
    i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    &'r str: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let position = row.try_get(1)?;
    let bad = |detail: String| ProjectionError::BadEvent { position, detail };
    Ok(StoredEvent {
        tx: row.try_get(0)?,
        position,
        child_id: row.try_get(2)?,
        sequence: row.try_get(3)?,
        event: serde_json::from_str(row.try_get(4)?).map_err(|e| bad(e.to_string()))?,
        metadata: serde_json::from_str(row.try_get(5)?).map_err(|e| bad(e.to_string()))?,
        recorded_at,
    })
}

/// A projection's checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Checkpoint {
    pub last_tx: i64,
    pub last_pos: i64,
    pub events_applied: i64,
    pub updated_at: Option<String>,
    pub error: Option<String>,
}

pub async fn checkpoint(db: &Database, name: &str) -> Result<Checkpoint, ProjectionError> {
    let row = sqlx::query(
        "select last_tx, last_pos, events_applied, updated_at, error from projection_checkpoints where name = $1",
    )
    .bind(name)
    .fetch_optional(db.any())
    .await?
    .ok_or_else(|| ProjectionError::UnknownProjection(name.to_owned()))?;
    Ok(Checkpoint {
        last_tx: row.try_get("last_tx")?,
        last_pos: row.try_get("last_pos")?,
        events_applied: row.try_get("events_applied")?,
        updated_at: row.try_get("updated_at")?,
        error: row.try_get("error")?,
    })
}

/// Reads and applies one batch; returns how many events it applied.
pub async fn run_once(db: &Database, name: &str, batch: i64) -> Result<usize, ProjectionError> {
    let name = projection(name)?;
    let at = checkpoint(db, name).await?;
    let events = read_after(db, at.last_tx, at.last_pos, batch).await?;
    let Some(last) = events.last() else {
        return Ok(0);
    };
    let to = (last.tx, last.position);
    let writes = prepare(db, name, &events, None, &mut read_models::Settled).await?;
    write_batch(
        db,
        name,
        (at.last_tx, at.last_pos),
        to,
        events.len(),
        writes,
    )
    .await
}

/// The static name of projection `name`.
fn projection(name: &str) -> Result<&'static str, ProjectionError> {
    PROJECTIONS
        .iter()
        .find(|known| **known == name)
        .copied()
        .ok_or_else(|| ProjectionError::UnknownProjection(name.to_owned()))
}

/// Folds `events` into the writes that apply them to projection `name`.
async fn prepare(
    db: &Database,
    name: &str,
    events: &[StoredEvent],
    cache: Option<&mut CaseCache>,
    settle: &mut (dyn read_models::Settle + Send),
) -> Result<Vec<read_models::Write>, ProjectionError> {
    let (kind, las) = (db.kind(), db.la_codes());
    let mut batch = read_models::Batch {
        db,
        settle,
        writes: Vec::new(),
    };
    match name {
        "child_cases" => read_models::apply_child_cases(&mut batch, events, cache).await?,
        "destination_changes" => {
            read_models::apply_destination_changes(kind, las, &mut batch, events).await?;
        }
        "day_one_no_shows" => {
            read_models::apply_day_one_no_shows(kind, las, &mut batch, events).await?;
        }
        "timeline" => read_models::apply_timeline(kind, las, &mut batch, events).await?,
        other => return Err(ProjectionError::UnknownProjection(other.to_owned())),
    }
    Ok(batch.writes)
}

/// Runs a batch's writes and moves the checkpoint from `from` to `to`, in
/// one transaction; refused if the checkpoint is no longer at `from`.
async fn write_batch(
    db: &Database,
    name: &str,
    from: (i64, i64),
    to: (i64, i64),
    count: usize,
    writes: Vec<read_models::Write>,
) -> Result<usize, ProjectionError> {
    write_batch_after(db, name, from, to, count, writes, None).await
}

/// [`write_batch`], overlapping the batch before it on PostgreSQL: with
/// `after`, the writes run first, then this waits for the earlier batch to
/// commit (`after` says whether it did) before moving the checkpoint, so the
/// checkpoint still moves one batch at a time and a batch whose predecessor
/// failed rolls back. Without it, the checkpoint moves first: that takes
/// SQLite's write lock before anything else in the transaction.
async fn write_batch_after(
    db: &Database,
    name: &str,
    from: (i64, i64),
    to: (i64, i64),
    count: usize,
    writes: Vec<read_models::Write>,
    after: Option<tokio::sync::oneshot::Receiver<bool>>,
) -> Result<usize, ProjectionError> {
    let mut tx = read_models::Tx::begin(db).await?;
    match after {
        None => {
            move_checkpoint(&mut tx, name, from, to, count).await?;
            for write in writes {
                write.run(&mut tx).await?;
            }
        }
        Some(earlier) => {
            for write in writes {
                write.run(&mut tx).await?;
            }
            if earlier.await != Ok(true) {
                return Err(ProjectionError::CheckpointMoved(name.to_owned()));
            }
            move_checkpoint(&mut tx, name, from, to, count).await?;
        }
    }
    tx.commit().await?;
    Ok(count)
}

/// Moves `name`'s checkpoint from `from` to `to` within `tx`; the guard on
/// the old position refuses the batch if anyone else moved the checkpoint
/// since it was read.
async fn move_checkpoint(
    tx: &mut read_models::Tx,
    name: &str,
    from: (i64, i64),
    to: (i64, i64),
    count: usize,
) -> Result<(), ProjectionError> {
    let moved = tx
        .execute(
            "update projection_checkpoints \
                set last_tx = $1, last_pos = $2, events_applied = events_applied + $3, updated_at = $4, error = null \
              where name = $5 and last_tx = $6 and last_pos = $7",
            &[
                to.0.into(),
                to.1.into(),
                i64::try_from(count).unwrap_or(i64::MAX).into(),
                timestamp(chrono::Utc::now()).into(),
                name.into(),
                from.0.into(),
                from.1.into(),
            ],
        )
        .await?;
    if moved == 1 {
        Ok(())
    } else {
        Err(ProjectionError::CheckpointMoved(name.to_owned()))
    }
}

/// Events per read while catching up; a transaction applies `batch` events,
/// read in chunks of at most this many.
const READ_CHUNK: i64 = 5000;

/// The writes of the batches folded so far, each running on a task of its
/// own: for an append-only projection on PostgreSQL up to two at once (the
/// later one moving the checkpoint only after the earlier commits),
/// otherwise one at a time.
struct InFlight {
    writing: std::collections::VecDeque<tokio::task::JoinHandle<Result<usize, ProjectionError>>>,
    /// Resolves when the latest batch has committed (`true`) or failed.
    latest: Option<tokio::sync::oneshot::Receiver<bool>>,
    at_once: usize,
    /// Events applied by the writes that finished.
    applied: usize,
}

impl InFlight {
    fn new(db: &Database, name: &str) -> Self {
        Self {
            writing: std::collections::VecDeque::new(),
            latest: None,
            at_once: if db.postgres().is_some() && appends_only(name) {
                2
            } else {
                1
            },
            applied: 0,
        }
    }

    /// Starts a batch's writes, first waiting for the oldest in flight if
    /// as many as may run at once already are.
    async fn start(
        &mut self,
        db: &Database,
        name: &'static str,
        from: (i64, i64),
        to: (i64, i64),
        count: usize,
        writes: Vec<read_models::Write>,
    ) -> Result<(), ProjectionError> {
        while self.writing.len() >= self.at_once {
            self.settle_oldest().await?;
        }
        let after = if self.writing.is_empty() {
            self.latest = None;
            None
        } else {
            self.latest.take()
        };
        let (done, latest) = tokio::sync::oneshot::channel();
        self.latest = Some(latest);
        let db = db.clone();
        self.writing.push_back(tokio::spawn(async move {
            let result = write_batch_after(&db, name, from, to, count, writes, after).await;
            let _ = done.send(result.is_ok());
            result
        }));
        Ok(())
    }

    async fn settle_oldest(&mut self) -> Result<(), ProjectionError> {
        let Some(writing) = self.writing.pop_front() else {
            return Ok(());
        };
        match writing.await {
            Ok(result) => {
                self.applied += result?;
                Ok(())
            }
            Err(join) => match join.try_into_panic() {
                Ok(panic) => std::panic::resume_unwind(panic),
                Err(_) => Err(ProjectionError::Stopped),
            },
        }
    }
}

impl read_models::Settle for InFlight {
    fn settle(&mut self) -> futures::future::BoxFuture<'_, Result<(), ProjectionError>> {
        Box::pin(async move {
            while !self.writing.is_empty() {
                self.settle_oldest().await?;
            }
            Ok(())
        })
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        // Writes abandoned by an error or a cancellation roll back.
        for writing in self.writing.drain(..) {
            writing.abort();
        }
    }
}

/// Whether every row projection `name` writes is keyed by the position of
/// the event that wrote it, so two batches never write the same row. Only
/// such projections overlap two batches' transactions: where two could
/// write the same row, the later could take a row the earlier still has to
/// write and then wait for the earlier to commit, which waits for that row,
/// a deadlock PostgreSQL cannot see (one side of it waits in this process).
fn appends_only(name: &str) -> bool {
    matches!(name, "destination_changes" | "timeline")
}

/// Whether an error from a batch's writes means "start a fresh round from
/// the checkpoint": it moved under us, or PostgreSQL broke a deadlock
/// (with another process's writes) by rolling this one back.
fn start_again(error: &ProjectionError) -> bool {
    match error {
        ProjectionError::CheckpointMoved(_) => true,
        ProjectionError::Database(sqlx::Error::Database(db_error)) => {
            db_error.code().as_deref() == Some("40P01")
        }
        _ => false,
    }
}

/// Applies the log in transactions of `batch` events until the projection
/// has read everything visible now.
///
/// Three stages overlap, on tasks of their own: a reader streams the log
/// from the checkpoint in chunks, parsing as it goes; this task folds each
/// batch into its writes; and those writes run in a transaction that also
/// moves the checkpoint. For an append-only projection on PostgreSQL two
/// batches' transactions may run at once, but the later one moves the
/// checkpoint only after the earlier has committed (and rolls back if it did
/// not), and every move is guarded by the
/// position it starts from (see `write_batch_after`): the checkpoint still
/// moves one whole batch at a time, in order, as calling [`run_once`] in a
/// loop with `batch` would move it. A fold that reads the projection's own
/// tables first waits for every write in flight. A reader whose read comes
/// back short stops: its reads ran while this projector's own transactions
/// held the reading horizon back, so the end of the log is always decided by
/// a fresh round, which returns once it finds nothing to apply. The
/// child-cases projection also keeps the states it folded in memory for the
/// next batches, while the checkpoint stays where this run left it.
pub async fn catch_up(db: &Database, name: &str, batch: i64) -> Result<u64, ProjectionError> {
    catch_up_in_chunks(db, name, batch, READ_CHUNK).await
}

/// [`catch_up`], reading the log in chunks of at most `chunk` events.
pub async fn catch_up_in_chunks(
    db: &Database,
    name: &str,
    batch: i64,
    chunk: i64,
) -> Result<u64, ProjectionError> {
    let name = projection(name)?;
    let batch = batch.max(1);
    let chunk = batch.min(chunk).max(1);
    let per_transaction = usize::try_from(batch).unwrap_or(usize::MAX);
    let mut total = 0u64;
    let mut cache = CaseCache::default();
    let mut left_at: Option<(i64, i64)> = None;
    loop {
        let at = checkpoint(db, name).await?;
        let mut from = (at.last_tx, at.last_pos);
        if left_at != Some(from) {
            // Someone else applied or reset this projection: what we hold may be stale.
            cache.clear();
            // From the very start (an empty projection), a child the cache
            // has not seen has no stored state yet.
            cache.set_complete(from == (0, 0));
        }
        // Room for a transaction's worth of chunks beyond the one being applied.
        let chunks_ahead = usize::try_from(batch / chunk).unwrap_or(1).max(1) + 1;
        let (sender, mut receiver) = tokio::sync::mpsc::channel(chunks_ahead);
        let reader = tokio::spawn(stream_log(db.clone(), from, chunk, sender));
        let _stop_reader = AbortOnDrop(reader);
        let mut in_flight = InFlight::new(db, name);
        let mut pending: Vec<StoredEvent> = Vec::new();
        let mut reader_done = false;
        let mut moved = false;
        // For an append-only projection the first transaction of a round takes
        // one chunk, so writing starts as soon as the first read is in rather
        // than after a whole batch. (Elsewhere a batch boundary moved off the
        // log's natural one can mean writing a child's rows twice.)
        let mut this_transaction = if appends_only(name) {
            per_transaction.min(usize::try_from(chunk).unwrap_or(1))
        } else {
            per_transaction
        };
        loop {
            while !reader_done && pending.len() < this_transaction {
                match receiver.recv().await {
                    Some(Ok(events)) => pending.extend(events),
                    Some(Err(error)) => return Err(error),
                    None => reader_done = true,
                }
            }
            if pending.is_empty() {
                break;
            }
            let rest = pending.split_off(pending.len().min(this_transaction));
            this_transaction = per_transaction;
            let unit = std::mem::replace(&mut pending, rest);
            let last = unit.last().expect("the unit is not empty");
            let to = (last.tx, last.position);
            let started = match prepare(db, name, &unit, Some(&mut cache), &mut in_flight).await {
                Ok(writes) => {
                    in_flight
                        .start(db, name, from, to, unit.len(), writes)
                        .await
                }
                Err(error) => Err(error),
            };
            match started {
                Ok(()) => {}
                // Another projector or a reset moved it: start a fresh round from where it is.
                Err(error) if start_again(&error) => {
                    moved = true;
                    break;
                }
                Err(error) => return Err(error),
            }
            from = to;
        }
        match read_models::Settle::settle(&mut in_flight).await {
            Ok(()) => left_at = Some(from),
            Err(error) if start_again(&error) => moved = true,
            Err(error) => return Err(error),
        }
        if moved {
            left_at = None;
        }
        total += in_flight.applied as u64;
        if in_flight.applied == 0 && !moved {
            return Ok(total);
        }
    }
}

/// Aborts a spawned task when dropped (on return, error or cancellation).
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Sends the log after `from` in chunks of `chunk` events until a read
/// comes back short (or fails), or the receiver goes.
async fn stream_log(
    db: Database,
    from: (i64, i64),
    chunk: i64,
    sender: tokio::sync::mpsc::Sender<Result<Vec<StoredEvent>, ProjectionError>>,
) {
    let (mut last_tx, mut last_pos) = from;
    loop {
        match read_after(&db, last_tx, last_pos, chunk).await {
            Ok(events) => {
                let Some(last) = events.last() else { return };
                (last_tx, last_pos) = (last.tx, last.position);
                let short = (events.len() as i64) < chunk;
                if sender.send(Ok(events)).await.is_err() || short {
                    return;
                }
            }
            Err(error) => {
                let _ = sender.send(Err(error)).await;
                return;
            }
        }
    }
}

/// Empties a projection's tables and resets its checkpoint, in one
/// transaction; the next run rebuilds it from the start of the log.
pub async fn reset(db: &Database, name: &str) -> Result<(), ProjectionError> {
    if !PROJECTIONS.contains(&name) {
        return Err(ProjectionError::UnknownProjection(name.to_owned()));
    }
    let mut tx = db.any().begin().await?;
    sqlx::query(
        "update projection_checkpoints set last_tx = 0, last_pos = 0, events_applied = 0, updated_at = null, error = null where name = $1",
    )
    .bind(name)
    .execute(&mut *tx)
    .await?;
    match db.kind() {
        // TRUNCATE is transactional on PostgreSQL, and unlike DELETE leaves
        // no dead rows for the rebuild to write around.
        BackendKind::Postgres => {
            sqlx::query(&format!("truncate {}", tables_of(name).join(", ")))
                .execute(&mut *tx)
                .await?;
        }
        BackendKind::Sqlite => {
            for table in tables_of(name) {
                sqlx::query(&format!("delete from {table}"))
                    .execute(&mut *tx)
                    .await?;
            }
        }
    }
    tx.commit().await?;
    Ok(())
}

/// Events per transaction of a rebuild (and of catching up a demo): large
/// enough that the child-cases projection writes each child once for many of
/// its events, small enough to hold in memory (about 100 MB).
pub const REBUILD_BATCH: i64 = 100_000;

/// What a rebuild did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rebuilt {
    /// Events applied: the whole log, as the projection's checkpoint counts it.
    pub events: u64,
    /// `None` if the rebuild wrote fresh tables and swapped them in (PostgreSQL,
    /// with the rights for it); otherwise why it emptied and refilled the live
    /// tables instead.
    pub in_place: Option<String>,
}

/// Rebuilds a projection from the log in batches of `batch` events.
///
/// On PostgreSQL, with the rights for it, in fresh tables swapped in at the
/// end (ADR 0008): the live tables stay readable meanwhile and
/// a failure leaves them as they were. Otherwise in place: reset, then catch
/// up. Either way, then up to the head of the log: here, or, if a running
/// `serve` holds the projection's lock, by that `serve` (this waits for it).
pub async fn rebuild(db: &Database, name: &str, batch: i64) -> Result<Rebuilt, ProjectionError> {
    let name = projection(name)?;
    let guard = lock(db, name).await?;
    let in_place = match db.postgres() {
        Some(pool) => match crate::shadow::refusal(pool, name).await? {
            None => {
                crate::shadow::rebuild(db, pool, name, batch).await?;
                None
            }
            refused => refused,
        },
        None => Some("SQLite rebuilds in place".to_owned()),
    };
    if let Some(why) = &in_place {
        tracing::info!(projection = name, "rebuilding in place: {why}");
        reset(db, name).await?;
    }
    let events = catch_up_to_head(db, name, batch, guard).await?;
    Ok(Rebuilt { events, in_place })
}

/// Brings a rebuilt projection up to the head of the log, here if `guard`
/// holds its lock, otherwise by waiting for the process that does; returns
/// the events its checkpoint has applied.
async fn catch_up_to_head(
    db: &Database,
    name: &str,
    batch: i64,
    guard: Option<LockGuard>,
) -> Result<u64, ProjectionError> {
    let applied = |status: ProjectionStatus| u64::try_from(status.events_applied).unwrap_or(0);
    if let Some(guard) = guard {
        catch_up(db, name, batch).await?;
        drop(guard);
        return Ok(applied(status_of(db, name).await?));
    }
    loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        // The holder may have gone (its connection closing): then finish the
        // catching up here rather than wait for nobody.
        if let Some(guard) = lock(db, name).await? {
            catch_up(db, name, batch).await?;
            drop(guard);
            return Ok(applied(status_of(db, name).await?));
        }
        let status = status_of(db, name).await?;
        if let Some(error) = status.error {
            return Err(ProjectionError::BadEvent {
                position: status.position,
                detail: error,
            });
        }
        if status.lag_events == 0 {
            return Ok(applied(status));
        }
    }
}

/// Holds a projection's advisory lock on a dedicated PostgreSQL connection;
/// the lock goes when the connection closes (on drop, or if the process dies).
#[derive(Debug)]
pub struct LockGuard {
    _connection: Option<sqlx::PgConnection>,
}

/// Takes the projection's advisory lock if free. SQLite is single-process:
/// the lock is always granted.
pub async fn lock(db: &Database, name: &str) -> Result<Option<LockGuard>, ProjectionError> {
    let Some(pool) = db.postgres() else {
        return Ok(Some(LockGuard { _connection: None }));
    };
    let mut connection = pool.acquire().await?.detach();
    let locked: bool = sqlx::query_scalar("select pg_try_advisory_lock(hashtext($1))")
        .bind(format!("rollcall:projector:{name}"))
        .fetch_one(&mut connection)
        .await?;
    Ok(locked.then_some(LockGuard {
        _connection: Some(connection),
    }))
}

/// A projection's position and lag, for `/ready` and the CLI.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ProjectionStatus {
    pub name: String,
    pub position: i64,
    pub head: i64,
    pub lag_events: i64,
    pub events_applied: i64,
    pub updated_at: Option<String>,
    pub error: Option<String>,
}

pub async fn status_of(db: &Database, name: &str) -> Result<ProjectionStatus, ProjectionError> {
    let at = checkpoint(db, name).await?;
    let (head_sql, lag_sql) = match db.kind() {
        BackendKind::Postgres => (
            "select coalesce(max(global_position), 0) from events",
            "select count(*) from events where (tx_id, global_position) > ($1::text::xid8, $2)",
        ),
        BackendKind::Sqlite => (
            "select coalesce(max(rowid), 0) from events",
            "select count(*) from events where rowid > $2",
        ),
    };
    let head: i64 = sqlx::query_scalar(head_sql).fetch_one(db.any()).await?;
    let lag: i64 = sqlx::query_scalar(lag_sql)
        .bind(at.last_tx.to_string())
        .bind(at.last_pos)
        .fetch_one(db.any())
        .await?;
    Ok(ProjectionStatus {
        name: name.to_owned(),
        position: at.last_pos,
        head,
        lag_events: lag,
        events_applied: at.events_applied,
        updated_at: at.updated_at,
        error: at.error,
    })
}

pub async fn status(db: &Database) -> Result<Vec<ProjectionStatus>, ProjectionError> {
    let mut all = Vec::new();
    for name in PROJECTIONS {
        all.push(status_of(db, name).await?);
    }
    Ok(all)
}

/// How the background projector runs.
#[derive(Debug, Clone, Copy)]
pub struct ProjectorConfig {
    pub batch_size: i64,
    /// How often to look at the log when nothing woke the projector.
    pub poll_interval: Duration,
}

impl Default for ProjectorConfig {
    fn default() -> Self {
        Self {
            batch_size: 1000,
            poll_interval: Duration::from_millis(500),
        }
    }
}

/// Runs one projection until `shutdown` turns true, stopping between
/// batches (a checkpoint). With several processes on one PostgreSQL
/// database, only the holder of the projection's advisory lock runs; the
/// others stand by and take over if it goes.
///
/// A batch that fails is logged once, recorded in the checkpoint's `error`
/// (shown by `/ready` and `rollcall projections status`), and the
/// projection stops rather than skip the event.
pub async fn run(
    db: Database,
    name: &'static str,
    config: ProjectorConfig,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut appended = db.appended();
    let mut guard = None;
    loop {
        if *shutdown.borrow() {
            return;
        }
        if guard.is_none() {
            match lock(&db, name).await {
                Ok(Some(taken)) => {
                    tracing::info!(projection = name, "projector started");
                    guard = Some(taken);
                }
                Ok(None) => {}
                Err(error) => {
                    tracing::warn!(projection = name, %error, "cannot take projector lock")
                }
            }
        }
        let mut caught_up = true;
        if guard.is_some() {
            match run_once(&db, name, config.batch_size).await {
                Ok(applied) => {
                    caught_up = applied < usize::try_from(config.batch_size).unwrap_or(usize::MAX)
                }
                Err(ProjectionError::CheckpointMoved(_)) => caught_up = false,
                Err(error @ ProjectionError::Database(_)) if is_transient(&error) => {
                    tracing::warn!(projection = name, %error, "projector will retry");
                }
                Err(error) => {
                    tracing::error!(projection = name, %error, "projection stopped");
                    let _ =
                        sqlx::query("update projection_checkpoints set error = $1 where name = $2")
                            .bind(error.to_string())
                            .bind(name)
                            .execute(db.any())
                            .await;
                    // Stay stopped (holding the lock, so no other process skips
                    // the event either) until shut down.
                    let _ = shutdown.wait_for(|stop| *stop).await;
                    return;
                }
            }
        }
        if caught_up {
            tokio::select! {
                _ = appended.changed() => {}
                _ = tokio::time::sleep(config.poll_interval) => {}
                _ = shutdown.changed() => {}
            }
        }
    }
}

fn is_transient(error: &ProjectionError) -> bool {
    match error {
        ProjectionError::Database(sqlx::Error::Database(db_error)) => {
            // SQLite busy/locked, PostgreSQL serialization failures and deadlocks.
            matches!(
                db_error.code().as_deref(),
                Some("5" | "6" | "517" | "40001" | "40P01")
            )
        }
        ProjectionError::Database(
            sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed,
        ) => true,
        _ => false,
    }
}

/// Forwards PostgreSQL `NOTIFY rollcall_events` (sent after each append by
/// any process) to this process's projectors. Only a hint: they poll too.
pub async fn listen(db: Database, mut shutdown: watch::Receiver<bool>) {
    let Some(pool) = db.postgres() else {
        return;
    };
    let mut listener = match sqlx::postgres::PgListener::connect_with(pool).await {
        Ok(listener) => listener,
        Err(error) => {
            tracing::warn!(%error, "LISTEN unavailable; projectors will poll");
            return;
        }
    };
    if let Err(error) = listener.listen("rollcall_events").await {
        tracing::warn!(%error, "LISTEN unavailable; projectors will poll");
        return;
    }
    loop {
        tokio::select! {
            received = listener.try_recv() => match received {
                Ok(Some(_)) => db.notify_appended(),
                Ok(None) => {}
                Err(error) => {
                    tracing::warn!(%error, "LISTEN connection lost; projectors will poll");
                    return;
                }
            },
            _ = shutdown.changed() => return,
        }
    }
}
