//! The write side: commands in, events appended through postgres-es or
//! sqlite-es, with optimistic concurrency, idempotency keys and the actor
//! recorded on every event.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use cqrs_es::persist::{PersistedEventRepository, PersistedEventStore};
use cqrs_es::{AggregateError, EventStore as _};
use domain::{CaseError, CaseServices, ChildCase, ChildCommand, ChildEvent};
use postgres_es::PostgresEventRepository;
use sqlite_es::SqliteEventRepository;
use sqlx::Row;
use uuid::Uuid;

use crate::db::{Database, Typed};

/// Who sent a command or read a record.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Actor {
    /// The token's name.
    pub name: String,
    /// `la`, `school`, `auditor`, `analyst`, or `system` for the CLI.
    pub role: String,
    /// An LA code, a URN, or `all`.
    pub org: String,
}

/// Everything about a command besides the command itself.
#[derive(Debug, Clone)]
pub struct CommandContext {
    pub actor: Actor,
    pub request_id: String,
    pub idempotency_key: Option<String>,
    /// `If-Match`: refuse unless the child's record is at this version.
    pub expected_version: Option<u64>,
}

/// One event as appended.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedEvent {
    pub sequence: u64,
    pub event: ChildEvent,
}

/// The result of a command: the child's new version and what was appended.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub child_id: Uuid,
    pub version: u64,
    pub events: Vec<RecordedEvent>,
    /// This is the first result of an earlier request with the same
    /// idempotency key; nothing was appended now.
    pub replayed: bool,
}

/// Why a command did not append.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Rejected(#[from] CaseError),
    #[error("the child's record is at version {actual}, not {expected}")]
    VersionConflict { expected: u64, actual: u64 },
    #[error("another change to this child was saved at the same moment; reload it and try again")]
    Conflict,
    #[error("this UPN is already registered to a child")]
    DuplicateUpn,
    #[error("no child has this id")]
    UnknownChild,
    #[error("this idempotency key was already used for a different command")]
    IdempotencyKeyReused,
    #[error("the event store failed: {0}")]
    Store(String),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error("a stored event could not be read: {0}")]
    Corrupt(String),
}

impl From<AggregateError<CaseError>> for StoreError {
    fn from(error: AggregateError<CaseError>) -> Self {
        match error {
            AggregateError::UserError(error) => Self::Rejected(error),
            AggregateError::AggregateConflict => Self::Conflict,
            other => Self::Store(other.to_string()),
        }
    }
}

/// One event of a child's history as the log holds it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct HistoryEntry {
    pub position: i64,
    pub sequence: i64,
    pub event_type: String,
    pub data: serde_json::Value,
    pub recorded_at: String,
    pub metadata: HashMap<String, String>,
}

enum Backend {
    Postgres(PersistedEventStore<PostgresEventRepository, ChildCase>),
    Sqlite(PersistedEventStore<SqliteEventRepository, ChildCase>),
}

/// The event store for child cases.
pub struct Store {
    db: Database,
    backend: Backend,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("db", &self.db.kind())
            .finish()
    }
}

/// The aggregate type every child case's events are stored under.
pub const AGGREGATE_TYPE: &str = <ChildCase as cqrs_es::Aggregate>::TYPE;

const PG_UPN_OWNER: &str = "select aggregate_id from events where event_type in ('ChildRegistered', 'UpnReplaced') \
     and (case event_type when 'ChildRegistered' then payload ->> 'upn' else payload ->> 'new_upn' end) = $1";
const SQLITE_UPN_OWNER: &str = "select aggregate_id from events where event_type in ('ChildRegistered', 'UpnReplaced') \
     and (case event_type when 'ChildRegistered' then json_extract(payload, '$.upn') else json_extract(payload, '$.new_upn') end) = $1";

const PG_BY_KEY: &str = "select aggregate_id, sequence, payload::text as payload, metadata ->> 'command' as command \
     from events where metadata ->> 'idempotency_key' = $1 and metadata ->> 'actor_name' = $2 \
     and ($3::text is null or aggregate_id = $3) order by aggregate_id, sequence";
const SQLITE_BY_KEY: &str = "select aggregate_id, sequence, payload, json_extract(metadata, '$.command') as command \
     from events where json_extract(metadata, '$.idempotency_key') = $1 and json_extract(metadata, '$.actor_name') = $2 \
     and ($3 is null or aggregate_id = $3) order by aggregate_id, sequence";

const PG_HISTORY: &str = "select global_position as position, sequence, event_type, payload::text as payload, \
     metadata::text as metadata, \
     to_char(recorded_at at time zone 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') as recorded_at \
     from events where aggregate_type = $1 and aggregate_id = $2 \
     and ($3::text is null or recorded_at <= $3::timestamptz) order by sequence";
const SQLITE_HISTORY: &str = "select rowid as position, sequence, event_type, payload, metadata, recorded_at \
     from events where aggregate_type = $1 and aggregate_id = $2 \
     and ($3 is null or recorded_at <= $3) order by sequence";

impl Store {
    pub fn new(db: Database) -> Self {
        let backend = match db.typed() {
            Typed::Postgres(pool) => Backend::Postgres(PersistedEventStore::new_event_store(
                PostgresEventRepository::new(pool.clone()),
            )),
            Typed::Sqlite(pool) => Backend::Sqlite(PersistedEventStore::new_event_store(
                SqliteEventRepository::new(pool.clone()),
            )),
        };
        Self { db, backend }
    }

    pub fn database(&self) -> &Database {
        &self.db
    }

    /// Runs a command against a child's case and appends what it decides.
    ///
    /// Nothing is appended when the command is refused, the version is
    /// stale, or another writer got there first. With an idempotency key
    /// already used by this actor (for this child, or for any registration),
    /// the first result is returned and nothing is appended.
    pub async fn execute(
        &self,
        child_id: Uuid,
        command: ChildCommand,
        context: &CommandContext,
        services: &CaseServices,
    ) -> Result<Outcome, StoreError> {
        self.execute_authorized(child_id, command, context, services, |_| true)
            .await
    }

    /// [`Store::execute`], refusing with [`StoreError::UnknownChild`] unless
    /// `visible` accepts the child's case as loaded for this command: scope is
    /// decided on the record itself, in the same load, not on a read model.
    pub async fn execute_authorized(
        &self,
        child_id: Uuid,
        command: ChildCommand,
        context: &CommandContext,
        services: &CaseServices,
        visible: impl FnOnce(&ChildCase) -> bool + Send,
    ) -> Result<Outcome, StoreError> {
        let is_registration = matches!(command, ChildCommand::RegisterChild { .. });
        if let Some(key) = &context.idempotency_key {
            let scope = (!is_registration).then_some(child_id);
            if let Some(outcome) = self
                .find_by_key(key, &context.actor.name, scope, command.name())
                .await?
            {
                return Ok(outcome);
            }
        }
        let new_upn = match &command {
            ChildCommand::RegisterChild { upn, .. } => Some(upn.as_str().to_owned()),
            ChildCommand::ReplaceUpn { new_upn } => Some(new_upn.as_str().to_owned()),
            _ => None,
        };
        // A registration is checked up front for a friendly answer. A UPN
        // replacement is left to the unique index, so that a caller outside
        // the child's scope gets 404 (decided in the load) before anything
        // about the UPN; a violation is told apart from a race below.
        if let (true, Some(upn)) = (is_registration, &new_upn) {
            if self.upn_owner(upn).await?.is_some() {
                return Err(StoreError::DuplicateUpn);
            }
        }
        let metadata = metadata_for(context, command.name());
        let id = child_id.to_string();
        let result = match &self.backend {
            Backend::Postgres(store) => {
                run(
                    store,
                    &id,
                    command,
                    context.expected_version,
                    services,
                    metadata,
                    visible,
                )
                .await
            }
            Backend::Sqlite(store) => {
                run(
                    store,
                    &id,
                    command,
                    context.expected_version,
                    services,
                    metadata,
                    visible,
                )
                .await
            }
        };
        match result {
            Ok(events) => {
                self.db.notify_appended();
                // A hint for projectors in other processes; they poll anyway,
                // so a lost notification only delays them.
                self.db.notify_other_processes();
                let version = events.last().map_or(0, |event| event.sequence);
                Ok(Outcome {
                    child_id,
                    version,
                    events,
                    replayed: false,
                })
            }
            Err(StoreError::Rejected(CaseError::NotRegistered)) => Err(StoreError::UnknownChild),
            Err(error @ (StoreError::Conflict | StoreError::Store(_))) => {
                // Lost a race: tell the caller which one.
                if let Some(key) = &context.idempotency_key {
                    let scope = (!is_registration).then_some(child_id);
                    if let Some(outcome) = self
                        .find_by_key(key, &context.actor.name, scope, "")
                        .await?
                    {
                        return Ok(outcome);
                    }
                }
                if let Some(upn) = &new_upn {
                    if self.upn_owner(upn).await?.is_some() {
                        return Err(StoreError::DuplicateUpn);
                    }
                }
                Err(error)
            }
            Err(error) => Err(error),
        }
    }

    /// The child id a UPN (current or former) was registered to, if any.
    pub async fn upn_owner(&self, upn: &str) -> Result<Option<String>, sqlx::Error> {
        let sql = match self.db.kind() {
            crate::db::BackendKind::Postgres => PG_UPN_OWNER,
            crate::db::BackendKind::Sqlite => SQLITE_UPN_OWNER,
        };
        let row = sqlx::query(sql)
            .bind(upn)
            .fetch_optional(self.db.any())
            .await?;
        row.map(|row| row.try_get::<String, _>("aggregate_id"))
            .transpose()
    }

    async fn find_by_key(
        &self,
        key: &str,
        actor: &str,
        child: Option<Uuid>,
        command: &str,
    ) -> Result<Option<Outcome>, StoreError> {
        let sql = match self.db.kind() {
            crate::db::BackendKind::Postgres => PG_BY_KEY,
            crate::db::BackendKind::Sqlite => SQLITE_BY_KEY,
        };
        let rows = sqlx::query(sql)
            .bind(key)
            .bind(actor)
            .bind(child.map(|id| id.to_string()))
            .fetch_all(self.db.any())
            .await?;
        let Some(first) = rows.first() else {
            return Ok(None);
        };
        let aggregate_id: String = first.try_get("aggregate_id")?;
        let first_command: Option<String> = first.try_get("command")?;
        if !command.is_empty() && first_command.as_deref() != Some(command) {
            return Err(StoreError::IdempotencyKeyReused);
        }
        let mut events = Vec::new();
        for row in rows.iter().filter(|row| {
            row.try_get::<String, _>("aggregate_id").ok().as_ref() == Some(&aggregate_id)
        }) {
            let payload: String = row.try_get("payload")?;
            let sequence: i64 = row.try_get("sequence")?;
            events.push(RecordedEvent {
                sequence: u64::try_from(sequence).unwrap_or(0),
                event: serde_json::from_str(&payload)
                    .map_err(|error| StoreError::Corrupt(error.to_string()))?,
            });
        }
        let child_id = Uuid::parse_str(&aggregate_id)
            .map_err(|error| StoreError::Corrupt(error.to_string()))?;
        Ok(Some(Outcome {
            child_id,
            version: events.last().map_or(0, |event| event.sequence),
            events,
            replayed: true,
        }))
    }

    /// A child's history from the log, oldest first; with `as_of`, only
    /// what had been recorded by then.
    pub async fn history(
        &self,
        child_id: Uuid,
        as_of: Option<DateTime<Utc>>,
    ) -> Result<Vec<HistoryEntry>, StoreError> {
        // SQLite compares `recorded_at` as text, so the bound instant must
        // have the stored shape (milliseconds): "...:05.123Z" sorts after
        // "...:05.123000Z", which would leave out an event as of its own
        // recorded_at. Truncating to the millisecond keeps every event
        // recorded by then.
        let (sql, as_of_format) = match self.db.kind() {
            crate::db::BackendKind::Postgres => (PG_HISTORY, "%Y-%m-%dT%H:%M:%S%.6fZ"),
            crate::db::BackendKind::Sqlite => (SQLITE_HISTORY, "%Y-%m-%dT%H:%M:%S%.3fZ"),
        };
        let rows = sqlx::query(sql)
            .bind(AGGREGATE_TYPE)
            .bind(child_id.to_string())
            .bind(as_of.map(|at| at.format(as_of_format).to_string()))
            .fetch_all(self.db.any())
            .await?;
        rows.iter()
            .map(|row| {
                let payload: String = row.try_get("payload")?;
                let metadata: String = row.try_get("metadata")?;
                Ok(HistoryEntry {
                    position: row.try_get("position")?,
                    sequence: row.try_get("sequence")?,
                    event_type: row.try_get("event_type")?,
                    data: serde_json::from_str(&payload)
                        .map_err(|error| StoreError::Corrupt(error.to_string()))?,
                    recorded_at: normalise_timestamp(&row.try_get::<String, _>("recorded_at")?),
                    metadata: serde_json::from_str(&metadata)
                        .map_err(|error| StoreError::Corrupt(error.to_string()))?,
                })
            })
            .collect()
    }

    /// The child's case state and history exactly as they stood at `as_of`
    /// (or now): the fold of the events recorded by then.
    pub async fn replay(
        &self,
        child_id: Uuid,
        as_of: Option<DateTime<Utc>>,
    ) -> Result<(ChildCase, Vec<HistoryEntry>), StoreError> {
        let history = self.history(child_id, as_of).await?;
        let mut case = ChildCase::default();
        for entry in &history {
            let event: ChildEvent = serde_json::from_value(entry.data.clone())
                .map_err(|error| StoreError::Corrupt(error.to_string()))?;
            cqrs_es::Aggregate::apply(&mut case, event);
        }
        Ok((case, history))
    }
}

/// Timestamps leave the API as RFC 3339 in UTC with microseconds, whichever
/// backend stored them (SQLite keeps milliseconds).
pub fn normalise_timestamp(raw: &str) -> String {
    DateTime::parse_from_rfc3339(raw)
        .map_or_else(|_| raw.to_owned(), |at| timestamp(at.with_timezone(&Utc)))
}

/// A moment as Rollcall writes it everywhere: RFC 3339 in UTC with
/// microseconds and a `Z` (`2026-09-01T08:30:00.000000Z`). Without a format
/// string to interpret each time: the projector writes one per event.
pub fn timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

fn metadata_for(context: &CommandContext, command: &str) -> HashMap<String, String> {
    let mut metadata = HashMap::from([
        ("actor_name".to_owned(), context.actor.name.clone()),
        ("actor_role".to_owned(), context.actor.role.clone()),
        ("actor_org".to_owned(), context.actor.org.clone()),
        ("request_id".to_owned(), context.request_id.clone()),
        ("command".to_owned(), command.to_owned()),
    ]);
    if let Some(key) = &context.idempotency_key {
        metadata.insert("idempotency_key".to_owned(), key.clone());
    }
    metadata
}

async fn run<R: PersistedEventRepository>(
    store: &PersistedEventStore<R, ChildCase>,
    id: &str,
    command: ChildCommand,
    expected_version: Option<u64>,
    services: &CaseServices,
    metadata: HashMap<String, String>,
    visible: impl FnOnce(&ChildCase) -> bool,
) -> Result<Vec<RecordedEvent>, StoreError> {
    let context = store.load_aggregate(id).await?;
    let is_registration = matches!(command, ChildCommand::RegisterChild { .. });
    if !is_registration && !visible(&context.aggregate) {
        return Err(StoreError::UnknownChild);
    }
    let actual = u64::try_from(context.current_sequence).unwrap_or(u64::MAX);
    if let Some(expected) = expected_version {
        if expected != actual {
            return Err(StoreError::VersionConflict { expected, actual });
        }
    }
    let events = context.aggregate.decide(command, services)?;
    let envelopes = store.commit(events, context, metadata).await?;
    Ok(envelopes
        .into_iter()
        .map(|envelope| RecordedEvent {
            sequence: u64::try_from(envelope.sequence).unwrap_or(u64::MAX),
            event: envelope.payload,
        })
        .collect())
}
