//! Rollcall's storage: the event store (postgres-es or sqlite-es), the
//! durable, checkpointed projector, and the read models it feeds.
//!
//! Start reading at [`store::Store::execute`] (a command becomes events) and
//! [`projector::run_once`] (events become rows).

pub mod db;
pub mod projector;
pub mod queries;
pub mod read_models;
mod shadow;
pub mod store;

pub use db::{BackendKind, Database, DbError, PoolSize};
pub use store::{Actor, CommandContext, Outcome, Store, StoreError};
