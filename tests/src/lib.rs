//! Test helpers shared by Rollcall's end-to-end and storage contract tests.
//!
//! * [`pg`]: a fresh, empty PostgreSQL database per test, from `DATABASE_URL` or from a
//!   throwaway cluster this process starts itself (or a loud skip when neither exists).
//! * [`sqlite`]: a fresh SQLite database file per test, deleted when the guard drops.
//! * [`bin`]: the real `rollcall` binary, built once per test process, plus a running
//!   [`bin::Server`] and a one-shot [`bin::run_cli`].
//!
//! Every helper is safe to call from many test threads and from different tokio runtimes
//! at once: process-wide state lives in `std::sync::OnceLock`s initialised with blocking
//! `std::process` calls, never in anything tied to one runtime.

pub mod bin;
pub mod pg;
pub mod sqlite;
