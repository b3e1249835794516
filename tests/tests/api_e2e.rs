//! End-to-end tests of the HTTP API and the command line (issue 4, "Tests").
//!
//! Each scenario starts the real `rollcall serve` binary on a free port against a fresh
//! database, creates tokens with the real `rollcall token create`, and drives the service
//! over HTTP as a client would. Every scenario runs on both backends: SQLite always, and
//! PostgreSQL when the harness has one (elsewhere than CI it skips with one line saying why).
//! Read models catch up in the background, so scenarios wait for them by polling
//! ([`support::Api::eventually`]), never by sleeping a fixed time.

/// Turns a scenario, an `async fn(&str)` taking a database URL, into a module of the same
/// name with one test per backend.
macro_rules! both_backends {
    ($scenario:ident) => {
        mod $scenario {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn on_sqlite() {
                let (url, _file) = rollcall_tests::sqlite::fresh_sqlite_url();
                super::$scenario(&url).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn on_postgres() {
                let Some(db) = rollcall_tests::pg::fresh_database().await else {
                    return;
                };
                super::$scenario(&db.url).await;
                db.drop_database().await;
            }
        }
    };
}

mod access;
mod refusals;
mod service;
mod support;
mod transition_year;
