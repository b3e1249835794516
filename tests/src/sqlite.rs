//! A fresh SQLite database file for each test.
//!
//! A real file rather than `sqlite::memory:` so that the binary, the CLI and the test itself
//! can all open the same database, and so that WAL mode behaves as in production.

use std::path::{Path, PathBuf};

use uuid::Uuid;

/// Deletes the database file and SQLite's companion files (`-wal`, `-shm`, `-journal`) when
/// dropped. Close every connection to the database before dropping it.
#[derive(Debug)]
pub struct TempPath {
    path: PathBuf,
}

impl TempPath {
    /// The database file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempPath {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let mut file = self.path.clone().into_os_string();
            file.push(suffix);
            // Missing companions are normal (e.g. no WAL was ever written), and a failed
            // delete in the temp directory is not worth failing a finished test over.
            let _ = std::fs::remove_file(file);
        }
    }
}

/// A URL for a new SQLite database in the system temp directory, created on first connect
/// (`mode=rwc`), plus the guard that deletes it.
///
/// ```no_run
/// let (url, _db_file) = rollcall_tests::sqlite::fresh_sqlite_url();
/// // ... connect to `url`; the file is deleted when `_db_file` goes out of scope ...
/// ```
pub fn fresh_sqlite_url() -> (String, TempPath) {
    let path = std::env::temp_dir().join(format!("rollcall-{}.db", Uuid::new_v4().simple()));
    let url = format!("sqlite://{}?mode=rwc", path.display());
    (url, TempPath { path })
}
