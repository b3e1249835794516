//! The database: PostgreSQL in production, SQLite as the embedded default,
//! chosen from the URL scheme.
//!
//! Each backend has a typed pool, which the event store (postgres-es or
//! sqlite-es) and the log reader use, and an `AnyPool` on the same database,
//! through which the read models are written and queried with SQL that both
//! backends accept (`$N` placeholders, ISO dates as text).

use std::str::FromStr;
use std::sync::Arc;
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
    typed: Typed,
    any: AnyPool,
    /// Bumped after every append, so projectors in this process run
    /// promptly; a watch channel, so a wake-up between a projector's read
    /// and its wait is not lost.
    appended: watch::Sender<u64>,
}

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
        sqlx::any::install_default_drivers();
        let typed = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let pool = PgPoolOptions::new()
                .max_connections(size.max_connections)
                .acquire_timeout(Duration::from_secs(10))
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
                Box::pin(async move {
                    if is_sqlite {
                        conn.execute("PRAGMA busy_timeout = 30000; PRAGMA synchronous = NORMAL;")
                            .await?;
                    }
                    Ok(())
                })
            })
            .connect(url)
            .await
            .map_err(DbError::Connect)?;
        Ok(Self {
            inner: Arc::new(Inner {
                typed,
                any,
                appended: watch::Sender::new(0),
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
