//! The read models: how each projection turns a batch of events into rows.
//!
//! Each batch is folded in memory first, reading what it needs (stored
//! child states, open no-shows, LA codes) once per batch, into a list of
//! writes ([`Batch`]) that the projector runs in one transaction with the
//! checkpoint: a few statements per batch rather than per event (on
//! PostgreSQL one `unnest` insert per table, the rows sent as arrays).
//! Every write is keyed so that applying it again changes nothing, and the
//! child-case fold skips events at or below the version it already holds:
//! a replay is harmless. Dates written are the events' own, never the clock,
//! so a rebuild reproduces the live tables row for row.
//!
//! A child's rows other than its summary (open track steps, incoming cohort,
//! the watchlist page's copy of the child) are derived from its folded state
//! and written only when the batch changed them, so the common event (a
//! contact attempt) costs one summary row. See docs/performance.md.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use domain::{ChildCase, ChildEvent, WatchReason};
use serde::{Deserialize, Serialize};
use sqlx::{Any, Postgres, Row, Transaction};

use crate::db::{BackendKind, Database, LaCodes};
use crate::projector::{ProjectionError, StoredEvent};

/// A value bound into portable SQL.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Val {
    Text(Option<String>),
    Int(Option<i64>),
    Bool(bool),
}

impl From<String> for Val {
    fn from(value: String) -> Self {
        Self::Text(Some(value))
    }
}
impl From<&str> for Val {
    fn from(value: &str) -> Self {
        Self::Text(Some(value.to_owned()))
    }
}
impl From<Option<String>> for Val {
    fn from(value: Option<String>) -> Self {
        Self::Text(value)
    }
}
impl From<i64> for Val {
    fn from(value: i64) -> Self {
        Self::Int(Some(value))
    }
}
impl From<Option<i64>> for Val {
    fn from(value: Option<i64>) -> Self {
        Self::Int(value)
    }
}
impl From<bool> for Val {
    fn from(value: bool) -> Self {
        Self::Bool(value)
    }
}

/// Binds `values` to a query, on the `Any` driver or a typed one.
pub(crate) fn bind_all<'q, DB>(
    mut query: sqlx::query::Query<'q, DB, <DB as sqlx::Database>::Arguments<'q>>,
    values: &'q [Val],
) -> sqlx::query::Query<'q, DB, <DB as sqlx::Database>::Arguments<'q>>
where
    DB: sqlx::Database,
    Option<&'q str>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    Option<i64>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    for value in values {
        query = match value {
            Val::Text(text) => query.bind(text.as_deref()),
            Val::Int(int) => query.bind(*int),
            // Booleans are stored as 0/1 integers on both backends: sqlx's Any
            // driver cannot decode SQLite's BOOLEAN.
            Val::Bool(flag) => query.bind(i64::from(*flag)),
        };
    }
    query
}

/// `$first, $first+1, ...` for `count` values.
pub(crate) fn placeholders(first: usize, count: usize) -> String {
    (first..first + count)
        .map(|n| format!("${n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A projection's write transaction: typed on PostgreSQL, so rows go in as
/// arrays (see [`insert_rows`]); through the `Any` driver on SQLite.
pub(crate) enum Tx {
    Postgres(Transaction<'static, Postgres>),
    Sqlite(Transaction<'static, Any>),
}

impl Tx {
    pub(crate) async fn begin(db: &Database) -> Result<Self, sqlx::Error> {
        Ok(match db.postgres() {
            Some(pool) => Self::Postgres(pool.begin().await?),
            None => Self::Sqlite(db.any().begin().await?),
        })
    }

    /// Runs a statement; returns the rows it affected.
    pub(crate) async fn execute(&mut self, sql: &str, values: &[Val]) -> Result<u64, sqlx::Error> {
        Ok(match self {
            Self::Postgres(tx) => bind_all(sqlx::query(sql), values)
                .execute(&mut **tx)
                .await?
                .rows_affected(),
            Self::Sqlite(tx) => bind_all(sqlx::query(sql), values)
                .execute(&mut **tx)
                .await?
                .rows_affected(),
        })
    }

    pub(crate) async fn commit(self) -> Result<(), sqlx::Error> {
        match self {
            Self::Postgres(tx) => tx.commit().await,
            Self::Sqlite(tx) => tx.commit().await,
        }
    }
}

/// Inserts rows with an `on conflict` clause (or none).
///
/// On PostgreSQL every column travels as one array parameter, expanded by
/// `unnest`: one statement for the lot, in the binary protocol, whose plan
/// does not grow with the rows (a multi-row `values` list is planned and
/// compiled row by row, every time). SQLite takes multi-row `values`.
async fn write_rows(
    tx: &mut Tx,
    table: &str,
    columns: &[&str],
    on_conflict: &str,
    rows: Vec<Vec<Val>>,
) -> Result<(), sqlx::Error> {
    if rows.is_empty() {
        return Ok(());
    }
    match tx {
        Tx::Postgres(tx) => {
            // Every row has the same shape: the first one's values give the types.
            let texts: Vec<bool> = rows[0]
                .iter()
                .map(|value| matches!(value, Val::Text(_)))
                .collect();
            let arrays: Vec<String> = texts
                .iter()
                .enumerate()
                .map(|(i, text)| format!("${}::{}[]", i + 1, if *text { "text" } else { "int8" }))
                .collect();
            let sql = format!(
                "insert into {table} ({}) select * from unnest({}) {on_conflict}",
                columns.join(", "),
                arrays.join(", "),
            );
            let mut rows = rows.into_iter().peekable();
            while rows.peek().is_some() {
                let chunk: Vec<Vec<Val>> = rows.by_ref().take(100_000).collect();
                let mut text_columns: Vec<Vec<Option<String>>> = Vec::new();
                let mut int_columns: Vec<Vec<Option<i64>>> = Vec::new();
                for text in &texts {
                    if *text {
                        text_columns.push(Vec::with_capacity(chunk.len()));
                    } else {
                        int_columns.push(Vec::with_capacity(chunk.len()));
                    }
                }
                for row in chunk {
                    let (mut t, mut i) = (0, 0);
                    for value in row {
                        match value {
                            Val::Text(text) => {
                                text_columns[t].push(text);
                                t += 1;
                            }
                            Val::Int(int) => {
                                int_columns[i].push(int);
                                i += 1;
                            }
                            Val::Bool(flag) => {
                                int_columns[i].push(Some(i64::from(flag)));
                                i += 1;
                            }
                        }
                    }
                }
                let mut query = sqlx::query(&sql);
                let (mut text_columns, mut int_columns) =
                    (text_columns.into_iter(), int_columns.into_iter());
                for text in &texts {
                    query = if *text {
                        query.bind(text_columns.next().expect("one array per text column"))
                    } else {
                        query.bind(int_columns.next().expect("one array per integer column"))
                    };
                }
                query.execute(&mut **tx).await?;
            }
        }
        Tx::Sqlite(tx) => {
            // SQLite accepts 32,766 parameters per statement; stay well below.
            let per_statement = (8000 / columns.len()).max(1);
            for chunk in rows.chunks(per_statement) {
                let mut sql = format!("insert into {table} ({}) values ", columns.join(", "));
                let mut values = Vec::with_capacity(chunk.len() * columns.len());
                for (i, row) in chunk.iter().enumerate() {
                    if i > 0 {
                        sql.push_str(", ");
                    }
                    sql.push('(');
                    sql.push_str(&placeholders(values.len() + 1, row.len()));
                    sql.push(')');
                    values.extend(row.iter().cloned());
                }
                sql.push(' ');
                sql.push_str(on_conflict);
                bind_all(sqlx::query(&sql), &values)
                    .execute(&mut **tx)
                    .await?;
            }
        }
    }
    Ok(())
}

/// One write of a prepared batch.
pub(crate) enum Write {
    Insert {
        table: &'static str,
        columns: &'static [&'static str],
        on_conflict: String,
        rows: Vec<Vec<Val>>,
    },
    Delete {
        table: &'static str,
        children: Vec<String>,
    },
}

impl Write {
    pub(crate) async fn run(self, tx: &mut Tx) -> Result<(), sqlx::Error> {
        match self {
            Self::Insert {
                table,
                columns,
                on_conflict,
                rows,
            } => write_rows(tx, table, columns, &on_conflict, rows).await,
            Self::Delete { table, children } => delete_rows(tx, table, &children).await,
        }
    }
}

/// A batch being prepared: the projection reads what it needs through it
/// (outside the write transaction) and leaves its writes in it, which the
/// projector then runs in one transaction with the checkpoint. While the
/// previous batch's writes may still be running, a read of the projection's
/// own tables first waits for them (`settle`), so it sees them.
pub(crate) struct Batch<'a> {
    pub(crate) db: &'a Database,
    pub(crate) settle: &'a mut (dyn Settle + Send),
    pub(crate) writes: Vec<Write>,
}

/// Waits for the writes in flight, if any.
pub(crate) trait Settle {
    fn settle(&mut self) -> futures::future::BoxFuture<'_, Result<(), ProjectionError>>;
}

/// Nothing in flight.
pub(crate) struct Settled;

impl Settle for Settled {
    fn settle(&mut self) -> futures::future::BoxFuture<'_, Result<(), ProjectionError>> {
        Box::pin(async { Ok(()) })
    }
}

impl Batch<'_> {
    /// Reads rows whose columns are all text; `own` says the query reads the
    /// projection's own tables (and so must wait for writes in flight).
    async fn fetch_texts(
        &mut self,
        sql: &str,
        values: &[Val],
        own: bool,
    ) -> Result<Vec<Vec<Option<String>>>, ProjectionError> {
        if own {
            self.settle.settle().await?;
        }
        fn texts<R: Row>(row: &R) -> Result<Vec<Option<String>>, sqlx::Error>
        where
            usize: sqlx::ColumnIndex<R>,
            for<'r> Option<String>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
        {
            (0..row.len()).map(|i| row.try_get(i)).collect()
        }
        Ok(match self.db.postgres() {
            Some(pool) => bind_all(sqlx::query(sql), values)
                .fetch_all(pool)
                .await?
                .iter()
                .map(texts)
                .collect::<Result<_, _>>()?,
            None => bind_all(sqlx::query(sql), values)
                .fetch_all(self.db.any())
                .await?
                .iter()
                .map(texts)
                .collect::<Result<_, _>>()?,
        })
    }

    /// Reads rows of two text columns, neither null.
    async fn fetch_pairs(
        &mut self,
        sql: &str,
        values: &[Val],
        own: bool,
    ) -> Result<Vec<(String, String)>, ProjectionError> {
        Ok(self
            .fetch_texts(sql, values, own)
            .await?
            .into_iter()
            .filter_map(|row| {
                let mut row = row.into_iter();
                Some((row.next()??, row.next()??))
            })
            .collect())
    }
}

/// Queues an insert of `rows` (nothing if there are none).
fn insert_rows(
    batch: &mut Batch<'_>,
    table: &'static str,
    columns: &'static [&'static str],
    on_conflict: &str,
    rows: Vec<Vec<Val>>,
) {
    if !rows.is_empty() {
        batch.writes.push(Write::Insert {
            table,
            columns,
            on_conflict: on_conflict.to_owned(),
            rows,
        });
    }
}

/// Queues a delete of `children`'s rows in `table`.
fn delete_for_children(batch: &mut Batch<'_>, table: &'static str, children: &[String]) {
    if !children.is_empty() {
        batch.writes.push(Write::Delete {
            table,
            children: children.to_vec(),
        });
    }
}

/// `on conflict (key) do update set c = excluded.c, ...` for every non-key column.
fn upsert_clause(key: &[&str], columns: &[&str]) -> String {
    let sets: Vec<String> = columns
        .iter()
        .filter(|column| !key.contains(column))
        .map(|column| format!("{column} = excluded.{column}"))
        .collect();
    format!(
        "on conflict ({}) do update set {}",
        key.join(", "),
        sets.join(", ")
    )
}

async fn delete_rows(tx: &mut Tx, table: &str, children: &[String]) -> Result<(), sqlx::Error> {
    for chunk in children.chunks(1000) {
        let sql = format!(
            "delete from {table} where child_id in ({})",
            placeholders(1, chunk.len())
        );
        let values: Vec<Val> = chunk.iter().map(|id| Val::from(id.as_str())).collect();
        tx.execute(&sql, &values).await?;
    }
    Ok(())
}

/// What the child-cases projection keeps per child: the folded case and,
/// for each open watchlist reason, when it opened (its row's key).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Projected {
    case: ChildCase,
    open: BTreeMap<String, (String, i64)>,
    #[serde(default)]
    last_position: i64,
    #[serde(default)]
    updated_at: String,
}

const SUMMARY_COLUMNS: [&str; 16] = [
    "child_id",
    "upn",
    "given_name",
    "family_name",
    "date_of_birth",
    "la_code",
    "school_urn",
    "destination_urn",
    "destination_confirmed",
    "year_group",
    "sen",
    "flags",
    "state",
    "version",
    "last_position",
    "updated_at",
];
const WATCH_COLUMNS: [&str; 8] = [
    "child_id",
    "reason",
    "la_code",
    "since",
    "opened_position",
    "cleared_on",
    "cleared_position",
    // The page's copy of the child (`Derived::page`): set on open rows, null
    // once a row is cleared. (The seven columns migration 0004 added for it
    // are no longer written: migration 0006.)
    "page",
];

/// Separates the fields of a watchlist row's `page`: the unit separator,
/// which no UPN, URN, date, reason or name (no control characters) contains.
pub(crate) const PAGE_SEPARATOR: char = '\u{1f}';
const STEP_COLUMNS: [&str; 5] = ["child_id", "la_code", "track", "step", "due_on"];
const COHORT_COLUMNS: [&str; 5] = [
    "child_id",
    "school_urn",
    "la_code",
    "confirmed",
    "last_position",
];
const TRANSITION_COLUMNS: [&str; 10] = [
    "child_id",
    "school_urn",
    "from_urn",
    "sen",
    "semh",
    "safeguarding",
    "summary",
    "strategies",
    "shared_on",
    "last_position",
];

/// The child-cases projection's folded state of children it applied in
/// earlier batches of one catch-up, so a later batch need not read and parse
/// it back from `child_summary`. Only valid while nothing else writes the
/// projection: [`crate::projector::catch_up`] keeps one for a single run,
/// empties it whenever the checkpoint is not where its last batch left it, and
/// drops it on any error. Bounded: emptied when full.
#[derive(Debug, Default)]
pub(crate) struct CaseCache {
    children: HashMap<String, Projected>,
    /// Holds every child the projection has a state for (it started empty
    /// and nothing was ever dropped), so a child it lacks has none.
    complete: bool,
}

impl CaseCache {
    /// At most this many children are kept (a few kilobytes each).
    const CAPACITY: usize = 150_000;

    pub(crate) fn clear(&mut self) {
        self.children.clear();
        self.complete = false;
    }

    pub(crate) fn set_complete(&mut self, complete: bool) {
        self.complete = complete && self.children.is_empty();
    }

    fn keep(&mut self, children: HashMap<String, Projected>) {
        if self.children.len() + children.len() > Self::CAPACITY {
            self.clear();
        }
        self.children.extend(children);
    }
}

/// The stored state of each of `ids` that has one: from `cache` when it holds
/// the child, else from `child_summary`.
async fn load_projected(
    batch: &mut Batch<'_>,
    ids: &[String],
    cache: Option<&mut CaseCache>,
) -> Result<HashMap<String, Projected>, ProjectionError> {
    let mut found = HashMap::new();
    let mut wanted = Vec::with_capacity(ids.len());
    match cache {
        Some(cache) => {
            for id in ids {
                match cache.children.remove(id) {
                    Some(projected) => {
                        found.insert(id.clone(), projected);
                    }
                    None if cache.complete => {}
                    None => wanted.push(id.clone()),
                }
            }
        }
        None => wanted.extend(ids.iter().cloned()),
    }
    for chunk in wanted.chunks(1000) {
        let sql = format!(
            "select child_id, state from child_summary where child_id in ({})",
            placeholders(1, chunk.len())
        );
        let values: Vec<Val> = chunk.iter().map(|id| Val::from(id.as_str())).collect();
        for (id, state) in batch.fetch_pairs(&sql, &values, true).await? {
            let projected =
                serde_json::from_str(&state).map_err(|error| ProjectionError::BadEvent {
                    position: 0,
                    detail: format!("stored state of child {id} is unreadable: {error}"),
                })?;
            found.insert(id, projected);
        }
    }
    Ok(found)
}

fn sen_code(sen: Option<domain::values::Sen>) -> Option<String> {
    sen.map(|sen| format!("{sen:?}"))
}

/// One open watchlist reason in a row's `open_reasons`.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct OpenReason {
    pub(crate) reason: String,
    pub(crate) since: String,
}

/// A child's rows in the tables other than its summary, as its folded state
/// says they should be: compared before and after a batch, so only a change
/// is written.
#[derive(Debug, Default, PartialEq)]
struct Derived {
    steps: Vec<Vec<Val>>,
    cohort: Option<Vec<Val>>,
    /// What the watchlist page shows of the child, copied into the `page`
    /// column of each of its open rows: identity, schools, every open reason
    /// with its start, and the earliest due date of its open track steps,
    /// joined by `PAGE_SEPARATOR` (migration 0006 has the order).
    page: Option<Val>,
}

fn derive(id: &str, child: &Projected) -> Derived {
    let case = &child.case;
    let Some(identity) = case.identity.as_ref() else {
        return Derived::default();
    };
    let la = identity.la_code.as_str();
    let open_steps = case.open_steps();
    let steps = open_steps
        .iter()
        .map(|(track, due)| {
            vec![
                id.into(),
                la.into(),
                track.as_str().into(),
                due.step.as_str().into(),
                due.due_on.to_string().into(),
            ]
        })
        .collect();
    let cohort = case.destination_urn.as_ref().and_then(|destination| {
        (case.arrived_at.as_ref() != Some(destination)).then(|| {
            vec![
                id.into(),
                destination.as_str().into(),
                la.into(),
                case.destination_confirmed.into(),
                child.last_position.into(),
            ]
        })
    });
    let mut open: Vec<OpenReason> = child
        .open
        .iter()
        .map(|(reason, (since, _))| OpenReason {
            reason: reason.clone(),
            since: since.clone(),
        })
        .collect();
    open.sort_by(|a, b| (&a.since, &a.reason).cmp(&(&b.since, &b.reason)));
    let next_due_on = open_steps
        .iter()
        .map(|(_, due)| due.due_on)
        .min()
        .map(|date| date.to_string());
    let open = serde_json::to_string(&open).expect("strings serialize");
    let page = [
        identity.upn.as_str(),
        identity.given_name.as_str(),
        identity.family_name.as_str(),
        case.school_urn.as_ref().map_or("", |urn| urn.as_str()),
        case.destination_urn.as_ref().map_or("", |urn| urn.as_str()),
        &open,
        next_due_on.as_deref().unwrap_or(""),
    ]
    .join(PAGE_SEPARATOR.encode_utf8(&mut [0; 4]))
    .into();
    Derived {
        steps,
        cohort,
        page: Some(page),
    }
}

/// child_cases: child_summary, child_upns, watchlist, open_track_steps,
/// incoming_cohort and transition_info.
pub(crate) async fn apply_child_cases(
    batch: &mut Batch<'_>,
    events: &[StoredEvent],
    mut cache: Option<&mut CaseCache>,
) -> Result<(), ProjectionError> {
    let ids: Vec<String> = {
        let mut seen = std::collections::HashSet::new();
        events
            .iter()
            .filter(|event| seen.insert(event.child_id.as_str()))
            .map(|event| event.child_id.clone())
            .collect()
    };
    let mut children = load_projected(batch, &ids, cache.as_deref_mut()).await?;
    let mut touched = std::collections::HashSet::new();
    // Each child's derived rows as they stand before this batch.
    let mut before: HashMap<String, Derived> = HashMap::new();
    let mut watch: BTreeMap<(String, String, i64), Vec<Val>> = BTreeMap::new();
    let mut upns: BTreeMap<String, Vec<Val>> = BTreeMap::new();
    let mut transitions: BTreeMap<(String, String), Vec<Val>> = BTreeMap::new();

    for stored in events {
        if !children.contains_key(&stored.child_id) {
            children.insert(stored.child_id.clone(), Projected::default());
        }
        let child = children
            .get_mut(&stored.child_id)
            .expect("inserted just above");
        if !before.contains_key(&stored.child_id) {
            before.insert(stored.child_id.clone(), derive(&stored.child_id, child));
        }
        if u64::try_from(stored.sequence).unwrap_or(0) <= child.case.version {
            continue; // already applied: a replayed batch changes nothing
        }
        let was_open = child.case.watch_reasons();
        cqrs_es::Aggregate::apply(&mut child.case, stored.event.clone());
        child.last_position = stored.position;
        child.updated_at.clone_from(&stored.recorded_at);
        let after = child.case.watch_reasons();
        let Some(identity) = child.case.identity.as_ref() else {
            return Err(ProjectionError::BadEvent {
                position: stored.position,
                detail: format!("child {} has events but no registration", stored.child_id),
            });
        };
        let la = identity.la_code.as_str();
        let date = if after == was_open {
            String::new()
        } else {
            stored.date()
        };
        for reason in after.iter().filter(|reason| !was_open.contains(reason)) {
            child
                .open
                .insert(reason.as_str().to_owned(), (date.clone(), stored.position));
            // Written with the page columns once the batch is folded (below).
            watch.insert(
                (
                    stored.child_id.clone(),
                    reason.as_str().to_owned(),
                    stored.position,
                ),
                Vec::new(),
            );
        }
        for reason in was_open.iter().filter(|reason| !after.contains(reason)) {
            if let Some((since, opened)) = child.open.remove(reason.as_str()) {
                let row: Vec<Val> = vec![
                    stored.child_id.clone().into(),
                    reason.as_str().into(),
                    la.into(),
                    since.into(),
                    opened.into(),
                    date.clone().into(),
                    stored.position.into(),
                    Val::Text(None),
                ];
                watch.insert(
                    (stored.child_id.clone(), reason.as_str().to_owned(), opened),
                    row,
                );
            }
        }
        match &stored.event {
            ChildEvent::ChildRegistered { upn, .. } => {
                upns.insert(
                    upn.as_str().to_owned(),
                    vec![upn.as_str().into(), stored.child_id.clone().into()],
                );
            }
            ChildEvent::UpnReplaced { new_upn, .. } => {
                upns.insert(
                    new_upn.as_str().to_owned(),
                    vec![new_upn.as_str().into(), stored.child_id.clone().into()],
                );
            }
            ChildEvent::TransitionInfoShared {
                school_urn,
                from_urn,
                sen,
                semh,
                safeguarding,
                summary,
                strategies,
                on,
            } => {
                transitions.insert(
                    (stored.child_id.clone(), school_urn.as_str().to_owned()),
                    vec![
                        stored.child_id.clone().into(),
                        school_urn.as_str().into(),
                        from_urn.as_ref().map(|urn| urn.as_str().to_owned()).into(),
                        sen_code(*sen).into(),
                        (*semh).into(),
                        (*safeguarding).into(),
                        summary.clone().into(),
                        strategies.clone().into(),
                        on.to_string().into(),
                        stored.position.into(),
                    ],
                );
            }
            _ => {}
        }
        if !touched.contains(stored.child_id.as_str()) {
            touched.insert(stored.child_id.clone());
        }
    }

    let mut touched: Vec<String> = touched.into_iter().collect();
    touched.sort_unstable();
    let mut summaries = Vec::new();
    let mut steps = Vec::new();
    let mut steps_changed = Vec::new();
    let mut cohort = Vec::new();
    let mut cohort_changed = Vec::new();
    for id in &touched {
        let child = &children[id];
        let case = &child.case;
        let identity = case
            .identity
            .as_ref()
            .expect("every touched child was checked to be registered");
        let la = identity.la_code.as_str().to_owned();
        let flags: Vec<&str> = case.watch_reasons().iter().map(|r| r.as_str()).collect();
        summaries.push(vec![
            id.clone().into(),
            identity.upn.as_str().into(),
            identity.given_name.as_str().into(),
            identity.family_name.as_str().into(),
            identity.date_of_birth.to_string().into(),
            la.clone().into(),
            case.school_urn
                .as_ref()
                .map(|urn| urn.as_str().to_owned())
                .into(),
            case.destination_urn
                .as_ref()
                .map(|urn| urn.as_str().to_owned())
                .into(),
            case.destination_confirmed.into(),
            identity.year_group.map(i64::from).into(),
            sen_code(identity.sen).into(),
            serde_json::to_string(&flags)
                .expect("strings serialize")
                .into(),
            serde_json::to_string(child)
                .expect("the projected state serializes")
                .into(),
            i64::try_from(case.version).unwrap_or(i64::MAX).into(),
            child.last_position.into(),
            child.updated_at.clone().into(),
        ]);
        let was = before
            .remove(id)
            .expect("every touched child was derived before its first event");
        let now = derive(id, child);
        if now.steps != was.steps {
            steps_changed.push(id.clone());
            steps.extend(now.steps);
        }
        if now.cohort != was.cohort {
            cohort_changed.push(id.clone());
            cohort.extend(now.cohort);
        }
        // Open rows carry the page columns: rewrite them all when those
        // changed, else only the rows this batch opened.
        let page = now
            .page
            .expect("every touched child was checked to be registered");
        let page_changed = was.page.as_ref() != Some(&page);
        for (reason, (since, opened)) in &child.open {
            let key = (id.clone(), reason.clone(), *opened);
            if page_changed || watch.contains_key(&key) {
                let row: Vec<Val> = vec![
                    id.clone().into(),
                    reason.clone().into(),
                    la.clone().into(),
                    since.clone().into(),
                    (*opened).into(),
                    Val::Text(None),
                    Val::Int(None),
                    page.clone(),
                ];
                watch.insert(key, row);
            }
        }
    }

    insert_rows(
        batch,
        "child_summary",
        &SUMMARY_COLUMNS,
        &upsert_clause(&["child_id"], &SUMMARY_COLUMNS),
        summaries,
    );
    insert_rows(
        batch,
        "child_upns",
        &["upn", "child_id"],
        "on conflict (upn) do nothing",
        upns.into_values().collect(),
    );
    // A row opened in this batch was either completed with the page columns
    // above (still open) or overwritten as cleared.
    if let Some(((child, reason, _), _)) = watch.iter().find(|(_, row)| row.is_empty()) {
        return Err(ProjectionError::BadEvent {
            position: children
                .get(child)
                .map_or(0, |projected| projected.last_position),
            detail: format!("watchlist row {reason} of child {child} was opened but not written"),
        });
    }
    insert_rows(
        batch,
        "watchlist",
        &WATCH_COLUMNS,
        &upsert_clause(&["child_id", "reason", "opened_position"], &WATCH_COLUMNS),
        watch.into_values().collect(),
    );
    delete_for_children(batch, "open_track_steps", &steps_changed);
    insert_rows(batch, "open_track_steps", &STEP_COLUMNS, "", steps);
    delete_for_children(batch, "incoming_cohort", &cohort_changed);
    insert_rows(batch, "incoming_cohort", &COHORT_COLUMNS, "", cohort);
    insert_rows(
        batch,
        "transition_info",
        &TRANSITION_COLUMNS,
        &upsert_clause(&["child_id", "school_urn"], &TRANSITION_COLUMNS),
        transitions.into_values().collect(),
    );
    if let Some(cache) = cache {
        // What this transaction wrote; the caller drops the cache if it fails to commit.
        cache.keep(children);
    }
    Ok(())
}

/// Remembers the LA of every child registered in `batch`, so that reading
/// the log from the start never has to look a registration up.
fn remember_registrations(known: &LaCodes, batch: &[StoredEvent]) {
    for stored in batch {
        if let ChildEvent::ChildRegistered { la_code, .. } = &stored.event {
            known.insert(&stored.child_id, la_code.as_str());
        }
    }
}

/// The LA of each child in `events`: remembered from its registration, else
/// read from its registration in the log itself (the source of truth, always
/// committed before the child's later events), so that the report
/// projections do not depend on the child-cases projection.
async fn la_codes(
    kind: BackendKind,
    known: &LaCodes,
    batch: &mut Batch<'_>,
    events: &[&StoredEvent],
) -> Result<HashMap<String, String>, ProjectionError> {
    let mut found = HashMap::new();
    let mut wanted = BTreeSet::new();
    for stored in events {
        if found.contains_key(&stored.child_id) {
            continue;
        }
        match known.get(&stored.child_id) {
            Some(la_code) => {
                found.insert(stored.child_id.clone(), la_code);
            }
            None => {
                wanted.insert(stored.child_id.clone());
            }
        }
    }
    let wanted: Vec<String> = wanted.into_iter().collect();
    let la_expr = match kind {
        BackendKind::Postgres => "payload ->> 'la_code'",
        BackendKind::Sqlite => "json_extract(payload, '$.la_code')",
    };
    for chunk in wanted.chunks(1000) {
        let sql = format!(
            "select aggregate_id, {la_expr} as la_code from events \
             where aggregate_type = 'child_case' and sequence = 1 and aggregate_id in ({})",
            placeholders(1, chunk.len())
        );
        let values: Vec<Val> = chunk.iter().map(|id| Val::from(id.as_str())).collect();
        for (child_id, la_code) in batch.fetch_pairs(&sql, &values, false).await? {
            known.insert(&child_id, &la_code);
            found.insert(child_id, la_code);
        }
    }
    Ok(found)
}

fn la_of(known: &HashMap<String, String>, stored: &StoredEvent) -> Result<String, ProjectionError> {
    known
        .get(&stored.child_id)
        .cloned()
        .ok_or_else(|| ProjectionError::BadEvent {
            position: stored.position,
            detail: format!("child {} has no registration in the log", stored.child_id),
        })
}

const CHANGE_COLUMNS: [&str; 11] = [
    "position",
    "child_id",
    "la_code",
    "from_urn",
    "to_urn",
    "reason",
    "changed_on",
    "changed_at",
    "actor_name",
    "actor_role",
    "actor_org",
];

/// destination_changes: one row per `DestinationChanged`, with who made it.
pub(crate) async fn apply_destination_changes(
    kind: BackendKind,
    known: &LaCodes,
    batch: &mut Batch<'_>,
    events: &[StoredEvent],
) -> Result<(), ProjectionError> {
    remember_registrations(known, events);
    let relevant: Vec<&StoredEvent> = events
        .iter()
        .filter(|stored| matches!(stored.event, ChildEvent::DestinationChanged { .. }))
        .collect();
    if relevant.is_empty() {
        return Ok(());
    }
    let las = la_codes(kind, known, batch, &relevant).await?;
    let mut rows = Vec::new();
    for stored in relevant {
        if let ChildEvent::DestinationChanged {
            from_urn,
            to_urn,
            reason,
            on,
        } = &stored.event
        {
            rows.push(vec![
                stored.position.into(),
                stored.child_id.clone().into(),
                la_of(&las, stored)?.into(),
                from_urn.as_str().into(),
                to_urn.as_str().into(),
                reason.clone().into(),
                on.to_string().into(),
                stored.recorded_at.clone().into(),
                stored.meta("actor_name").into(),
                stored.meta("actor_role").into(),
                stored.meta("actor_org").into(),
            ]);
        }
    }
    insert_rows(
        batch,
        "destination_changes",
        &CHANGE_COLUMNS,
        "on conflict (position) do nothing",
        rows,
    );
    Ok(())
}

const NO_SHOW_COLUMNS: [&str; 7] = [
    "child_id",
    "school_urn",
    "date",
    "la_code",
    "resolved",
    "resolved_on",
    "recorded_position",
];

/// One `day_one_no_shows` row while a batch is folded.
struct NoShow {
    la_code: String,
    resolved_on: Option<String>,
    recorded_position: i64,
    changed: bool,
}

/// day_one_no_shows: one row per no-show, resolved by a later arrival at
/// that school or by the child being located.
///
/// The rows of the batch's children are read once, the batch is folded into
/// them in memory, and the rows it changed are written in one upsert: a
/// no-show already recorded is left as it is, and a resolution applies only
/// to no-shows recorded before it, so applying a batch again changes nothing.
pub(crate) async fn apply_day_one_no_shows(
    kind: BackendKind,
    known: &LaCodes,
    batch: &mut Batch<'_>,
    events: &[StoredEvent],
) -> Result<(), ProjectionError> {
    remember_registrations(known, events);
    let relevant: Vec<&StoredEvent> = events
        .iter()
        .filter(|stored| {
            matches!(
                stored.event,
                ChildEvent::NoShowOnDayOne { .. }
                    | ChildEvent::PupilArrived {
                        resolved_no_show: true,
                        ..
                    }
                    | ChildEvent::ChildLocated { .. }
            )
        })
        .collect();
    if relevant.is_empty() {
        return Ok(());
    }
    let las = la_codes(kind, known, batch, &relevant).await?;
    let children: Vec<String> = relevant
        .iter()
        .map(|stored| stored.child_id.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    // (child, school, date) -> row, for every row these children have.
    let mut rows: BTreeMap<(String, String, String), NoShow> = BTreeMap::new();
    for chunk in children.chunks(1000) {
        let sql = format!(
            "select child_id, school_urn, date, la_code, resolved_on, cast(recorded_position as text) \
             from day_one_no_shows where child_id in ({})",
            placeholders(1, chunk.len())
        );
        let values: Vec<Val> = chunk.iter().map(|id| Val::from(id.as_str())).collect();
        for mut row in batch.fetch_texts(&sql, &values, true).await? {
            let mut take = |i: usize| row.get_mut(i).and_then(Option::take);
            let (Some(child), Some(school), Some(date), Some(la_code), resolved_on, Some(position)) =
                (take(0), take(1), take(2), take(3), take(4), take(5))
            else {
                continue;
            };
            rows.insert(
                (child, school, date),
                NoShow {
                    la_code,
                    resolved_on,
                    recorded_position: position.parse().unwrap_or(i64::MAX),
                    changed: false,
                },
            );
        }
    }
    // In log order: a resolution in this batch must follow its no-show.
    for stored in relevant {
        let resolve = |rows: &mut BTreeMap<(String, String, String), NoShow>,
                       school: Option<&str>,
                       on: String| {
            let from = (stored.child_id.clone(), String::new(), String::new());
            let of_child = rows
                .range_mut(from..)
                .take_while(|((child, _, _), _)| *child == stored.child_id);
            for ((_, row_school, _), row) in of_child {
                if school.is_none_or(|school| school == row_school)
                    && row.resolved_on.is_none()
                    && row.recorded_position < stored.position
                {
                    row.resolved_on = Some(on.clone());
                    row.changed = true;
                }
            }
        };
        match &stored.event {
            ChildEvent::NoShowOnDayOne {
                school_urn, date, ..
            } => {
                let key = (
                    stored.child_id.clone(),
                    school_urn.as_str().to_owned(),
                    date.to_string(),
                );
                if let std::collections::btree_map::Entry::Vacant(entry) = rows.entry(key) {
                    entry.insert(NoShow {
                        la_code: la_of(&las, stored)?,
                        resolved_on: None,
                        recorded_position: stored.position,
                        changed: true,
                    });
                }
            }
            ChildEvent::PupilArrived {
                school_urn, date, ..
            } => resolve(&mut rows, Some(school_urn.as_str()), date.to_string()),
            ChildEvent::ChildLocated { on, .. } => resolve(&mut rows, None, on.to_string()),
            _ => {}
        }
    }
    let changed: Vec<Vec<Val>> = rows
        .into_iter()
        .filter(|(_, row)| row.changed)
        .map(|((child, school, date), row)| {
            vec![
                child.into(),
                school.into(),
                date.into(),
                row.la_code.into(),
                row.resolved_on.is_some().into(),
                row.resolved_on.into(),
                row.recorded_position.into(),
            ]
        })
        .collect();
    insert_rows(
        batch,
        "day_one_no_shows",
        &NO_SHOW_COLUMNS,
        &upsert_clause(&["child_id", "school_urn", "date"], &NO_SHOW_COLUMNS),
        changed,
    );
    Ok(())
}

const TIMELINE_COLUMNS: [&str; 11] = [
    "position",
    "child_id",
    "sequence",
    "event_type",
    "summary",
    "school_urn",
    "la_code",
    "recorded_at",
    "actor_name",
    "actor_role",
    "actor_org",
];

/// A one-line description of an event for the timeline; names and UPNs
/// stay out of it (the history endpoint has the full record).
pub fn describe(event: &ChildEvent) -> String {
    use ChildEvent as E;
    match event {
        E::ChildRegistered {
            la_code,
            school_urn,
            ..
        } => match school_urn {
            Some(urn) => format!("registered in LA {la_code} at school {urn}"),
            None => format!("registered in LA {la_code}"),
        },
        E::PupilAllocated {
            school_urn,
            via_appeal,
            ..
        } => {
            if *via_appeal {
                format!("allocated a place at {school_urn} on appeal")
            } else {
                format!("allocated a place at {school_urn}")
            }
        }
        E::NoPlaceAllocated { .. } => "no secondary place allocated".to_owned(),
        E::AppealLodged { school_urn, .. } => format!("appeal lodged for {school_urn}"),
        E::AppealDecided {
            school_urn,
            outcome,
            ..
        } => format!("appeal for {school_urn} {outcome:?}").to_lowercase(),
        E::DestinationConfirmed { school_urn, .. } => format!("destination {school_urn} confirmed"),
        E::DestinationChanged {
            from_urn, to_urn, ..
        } => {
            format!("destination changed from {from_urn} to {to_urn}")
        }
        E::TransitionInfoShared { school_urn, .. } => {
            format!("transition information shared with {school_urn}")
        }
        E::TransitionConcernRecorded { category, .. } => {
            format!("transition concern recorded: {category:?}").to_lowercase()
        }
        E::PupilArrived {
            school_urn, date, ..
        } => format!("arrived at {school_urn} on {date}"),
        E::NoShowOnDayOne {
            school_urn, date, ..
        } => {
            format!("did not arrive at {school_urn} on {date}")
        }
        E::ContactAttemptLogged {
            method, outcome, ..
        } => format!("contact attempt by {method:?}: {outcome:?}").to_lowercase(),
        E::HomeVisitLogged { outcome, .. } => format!("home visit: {outcome:?}").to_lowercase(),
        E::ChildReportedMissing { since, .. } => format!("reported missing since {since}"),
        E::RemovedFromRoll {
            school_urn, ground, ..
        } => format!("removed from the roll of {school_urn} on ground ({ground:?})").to_lowercase(),
        E::CmeReferralRaised { .. } => "CME referral raised".to_owned(),
        E::CmeReferralAccepted { .. } => "CME referral accepted by the LA".to_owned(),
        E::CmeReferralReturned { .. } => "CME referral returned to the school".to_owned(),
        E::ChildLocated { outcome, .. } => format!("child located: {outcome:?}").to_lowercase(),
        E::SuspensionRecorded {
            school_days, start, ..
        } => {
            format!("suspended for {school_days} school days from {start}")
        }
        E::PermanentExclusionRecorded { date, .. } => format!("permanently excluded on {date}"),
        E::TrackStepRecorded { track, step, .. } => {
            format!("{} track: {}", track.as_str(), step.as_str())
        }
        E::UpnReplaced { .. } => "UPN replaced".to_owned(),
        E::EntryCorrected {
            sequence,
            corrected_type,
            ..
        } => {
            format!("entry {sequence} ({corrected_type}) corrected")
        }
    }
}

/// timeline: every event, with who recorded it at which school or LA.
pub(crate) async fn apply_timeline(
    kind: BackendKind,
    known: &LaCodes,
    batch: &mut Batch<'_>,
    events: &[StoredEvent],
) -> Result<(), ProjectionError> {
    remember_registrations(known, events);
    let all: Vec<&StoredEvent> = events.iter().collect();
    let las = la_codes(kind, known, batch, &all).await?;
    let mut rows = Vec::new();
    for stored in events {
        let school = match &stored.event {
            ChildEvent::PupilArrived { school_urn, .. }
            | ChildEvent::NoShowOnDayOne { school_urn, .. }
            | ChildEvent::RemovedFromRoll { school_urn, .. }
            | ChildEvent::TransitionInfoShared { school_urn, .. } => {
                Some(school_urn.as_str().to_owned())
            }
            _ if stored.meta("actor_role") == "school" => Some(stored.meta("actor_org").to_owned()),
            _ => None,
        };
        rows.push(vec![
            stored.position.into(),
            stored.child_id.clone().into(),
            stored.sequence.into(),
            stored.event.name().into(),
            describe(&stored.event).into(),
            school.into(),
            la_of(&las, stored)?.into(),
            stored.recorded_at.clone().into(),
            stored.meta("actor_name").into(),
            stored.meta("actor_role").into(),
            stored.meta("actor_org").into(),
        ]);
    }
    insert_rows(
        batch,
        "timeline",
        &TIMELINE_COLUMNS,
        "on conflict (position) do nothing",
        rows,
    );
    Ok(())
}

/// Reasons a watchlist can be filtered by.
pub fn watch_reason_names() -> Vec<&'static str> {
    WatchReason::ALL
        .iter()
        .map(|reason| reason.as_str())
        .collect()
}
