//! The database: PostgreSQL in production, SQLite as the embedded default,
//! chosen from the URL scheme.
//!
//! Each backend has a typed pool, which the event store (postgres-es or
//! sqlite-es) and the log reader use, and an `AnyPool` on the same database,
//! through which the read models are written and queried with SQL that both
//! backends accept (`$N` placeholders, ISO dates as text).

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sqlx::any::AnyPoolOptions;
use sqlx::postgres::PgPoolOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{AnyPool, Executor, PgPool, SqlitePool};
use tokio::sync::watch;

/// Migrations, embedded in the binary: one directory per backend.
pub static POSTGRES_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/postgres");
pub static SQLITE_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/sqlite");

/// Why the database could not be opened or used.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("unsupported database URL scheme in {0:?}: use postgres://... or sqlite://...")]
    UnsupportedUrl(String),
    #[error("cannot connect to the database: {0}")]
    Connect(#[source] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error(transparent)]
    Sqlx(#[from] sqlx::Error),
}

impl DbError {
    /// The database error underneath, for callers that report only those.
    pub(crate) fn into_sqlx(self) -> sqlx::Error {
        match self {
            DbError::Connect(error) | DbError::Sqlx(error) => error,
            DbError::Migrate(error) => sqlx::Error::Migrate(Box::new(error)),
            DbError::UnsupportedUrl(_) => sqlx::Error::Configuration(self.to_string().into()),
        }
    }
}

/// Which kind of database this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendKind {
    Postgres,
    Sqlite,
}

#[derive(Debug, Clone)]
pub(crate) enum Typed {
    Postgres(PgPool),
    Sqlite(SqlitePool),
}

#[derive(Debug)]
struct Inner {
    /// Where this connects, for [`Database::in_schema`].
    url: Url,
    typed: Typed,
    any: AnyPool,
    /// Bumped after every append, so projectors in this process run
    /// promptly; a watch channel, so a wake-up between a projector's read
    /// and its wait is not lost.
    appended: watch::Sender<u64>,
    /// A `NOTIFY rollcall_events` is scheduled and has not yet been sent.
    notify_scheduled: AtomicBool,
    /// Each child's LA, as its registration in the log says (see [`LaCodes`]).
    la_codes: LaCodes,
}

/// Children's LA codes, learnt from their `ChildRegistered` events as the
/// report projections read the log, so they need not look each child's
/// registration up again: a child's LA is fixed at registration (no event
/// changes it), so an entry never goes stale. Bounded: emptied when full.
#[derive(Debug, Default)]
pub(crate) struct LaCodes(Mutex<HashMap<String, String>>);

impl LaCodes {
    /// At most this many children are remembered (about 100 bytes each).
    const CAPACITY: usize = 500_000;

    pub(crate) fn get(&self, child_id: &str) -> Option<String> {
        self.lock().get(child_id).cloned()
    }

    pub(crate) fn insert(&self, child_id: &str, la_code: &str) {
        let mut known = self.lock();
        if known.len() >= Self::CAPACITY {
            known.clear();
        }
        known.insert(child_id.to_owned(), la_code.to_owned());
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, String>> {
        // A panic elsewhere cannot leave the map half-written in a way that
        // matters: every entry is a fact from the log.
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// How long appends are gathered into one `NOTIFY` for other processes. A
/// notifying transaction takes PostgreSQL's global notify lock and waits for
/// its own WAL flush while holding it, so one per append would serialise every
/// writer behind it (see docs/performance.md); one per interval keeps the hint
/// prompt and off the write path.
const NOTIFY_INTERVAL: Duration = Duration::from_millis(20);

/// A handle to the database; cheap to clone.
#[derive(Debug, Clone)]
pub struct Database {
    inner: Arc<Inner>,
}

/// How big the pools are.
#[derive(Debug, Clone, Copy)]
pub struct PoolSize {
    pub max_connections: u32,
}

impl Default for PoolSize {
    fn default() -> Self {
        Self {
            max_connections: 10,
        }
    }
}

impl Database {
    /// Connects to `url` (`postgres://...` or `sqlite://...`). An SQLite file
    /// is created if missing and put in WAL mode with a busy timeout, so
    /// readers never block the writer.
    pub async fn connect(url: &str, size: PoolSize) -> Result<Self, DbError> {
        Self::connect_with_search_path(url, size, None).await
    }

    /// Another handle on this PostgreSQL database whose connections look for
    /// tables in `schema` before `public`: a shadow rebuild writes its fresh
    /// tables there with the projector's own, unqualified SQL.
    pub(crate) async fn in_schema(&self, schema: &str) -> Result<Self, sqlx::Error> {
        Self::connect_with_search_path(
            &self.inner.url,
            PoolSize { max_connections: 4 },
            Some(schema),
        )
        .await
        .map_err(DbError::into_sqlx)
    }

    async fn connect_with_search_path(
        url: &str,
        size: PoolSize,
        schema: Option<&str>,
    ) -> Result<Self, DbError> {
        sqlx::any::install_default_drivers();
        // `schema` is one of ours (an identifier of lower-case letters and
        // underscores), so it needs no quoting.
        let search_path = schema.map(|schema| format!("set search_path to {schema}, public"));
        let typed = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let search_path = search_path.clone();
            let pool = PgPoolOptions::new()
                .max_connections(size.max_connections)
                .acquire_timeout(Duration::from_secs(10))
                .after_connect(move |conn, _meta| {
                    let search_path = search_path.clone();
                    Box::pin(async move {
                        if let Some(search_path) = search_path {
                            conn.execute(search_path.as_str()).await?;
                        }
                        Ok(())
                    })
                })
                .connect(url)
                .await
                .map_err(DbError::Connect)?;
            Typed::Postgres(pool)
        } else if url.starts_with("sqlite:") {
            let options = SqliteConnectOptions::from_str(url)
                .map_err(DbError::Connect)?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(30));
            let pool = SqlitePoolOptions::new()
                .max_connections(size.max_connections)
                .connect_with(options)
                .await
                .map_err(DbError::Connect)?;
            Typed::Sqlite(pool)
        } else {
            return Err(DbError::UnsupportedUrl(redact(url)));
        };
        let is_sqlite = matches!(typed, Typed::Sqlite(_));
        let any = AnyPoolOptions::new()
            .max_connections(size.max_connections)
            .acquire_timeout(Duration::from_secs(10))
            .after_connect(move |conn, _meta| {
                let search_path = search_path.clone();
                Box::pin(async move {
                    if is_sqlite {
                        conn.execute("PRAGMA busy_timeout = 30000; PRAGMA synchronous = NORMAL;")
                            .await?;
                    }
                    if let Some(search_path) = search_path {
                        conn.execute(search_path.as_str()).await?;
                    }
                    Ok(())
                })
            })
            .connect(url)
            .await
            .map_err(DbError::Connect)?;
        Ok(Self {
            inner: Arc::new(Inner {
                url: Url(url.to_owned()),
                typed,
                any,
                appended: watch::Sender::new(0),
                notify_scheduled: AtomicBool::new(false),
                la_codes: LaCodes::default(),
            }),
        })
    }

    /// Applies every pending migration with the one embedded migrator.
    pub async fn migrate(&self) -> Result<(), DbError> {
        match &self.inner.typed {
            Typed::Postgres(pool) => POSTGRES_MIGRATOR.run(pool).await?,
            Typed::Sqlite(pool) => SQLITE_MIGRATOR.run(pool).await?,
        }
        Ok(())
    }

    pub fn kind(&self) -> BackendKind {
        match &self.inner.typed {
            Typed::Postgres(_) => BackendKind::Postgres,
            Typed::Sqlite(_) => BackendKind::Sqlite,
        }
    }

    /// The pool read models and access tables are queried through.
    pub fn any(&self) -> &AnyPool {
        &self.inner.any
    }

    pub(crate) fn typed(&self) -> &Typed {
        &self.inner.typed
    }

    /// The PostgreSQL pool, for what only PostgreSQL has (advisory locks, LISTEN).
    pub fn postgres(&self) -> Option<&PgPool> {
        match &self.inner.typed {
            Typed::Postgres(pool) => Some(pool),
            Typed::Sqlite(_) => None,
        }
    }

    /// Checks the database answers.
    pub async fn ping(&self) -> Result<(), sqlx::Error> {
        sqlx::query("select 1")
            .execute(self.any())
            .await
            .map(|_| ())
    }

    /// Tells in-process projectors that the log grew.
    pub(crate) fn notify_appended(&self) {
        self.inner
            .appended
            .send_modify(|count| *count = count.wrapping_add(1));
    }

    /// Tells projectors in other processes that the log grew: on PostgreSQL, a
    /// `NOTIFY rollcall_events` sent after this (committed) append, at most one
    /// per [`NOTIFY_INTERVAL`], from a background task. Every append is
    /// followed by a notification: the flag is cleared before the NOTIFY is
    /// sent, so an append that finds it set is covered by that NOTIFY. Only a
    /// hint: a lost one delays other processes until their next poll.
    pub(crate) fn notify_other_processes(&self) {
        let Some(pool) = self.postgres() else {
            return;
        };
        if self.inner.notify_scheduled.swap(true, Ordering::AcqRel) {
            return;
        }
        let pool = pool.clone();
        let inner = Arc::clone(&self.inner);
        tokio::spawn(async move {
            tokio::time::sleep(NOTIFY_INTERVAL).await;
            inner.notify_scheduled.store(false, Ordering::Release);
            let _ = sqlx::query("select pg_notify('rollcall_events', '')")
                .execute(&pool)
                .await;
        });
    }

    /// The LA codes the report projections have learnt from the log.
    pub(crate) fn la_codes(&self) -> &LaCodes {
        &self.inner.la_codes
    }

    /// A receiver that changes whenever the log grows.
    pub(crate) fn appended(&self) -> watch::Receiver<u64> {
        self.inner.appended.subscribe()
    }

    pub async fn close(&self) {
        self.inner.any.close().await;
        match &self.inner.typed {
            Typed::Postgres(pool) => pool.close().await,
            Typed::Sqlite(pool) => pool.close().await,
        }
    }
}

/// A database URL, shown by `Debug` without its password.
struct Url(String);

impl std::ops::Deref for Url {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Url {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&redact(&self.0))
    }
}

/// A database URL with any password removed, for messages and logs.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let credentials = &url[scheme_end + 3..at];
            let user = credentials.split(':').next().unwrap_or("");
            format!("{}://{user}:***@{}", &url[..scheme_end], &url[at + 1..])
        }
        _ => url.to_owned(),
    }
}
