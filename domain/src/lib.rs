//! Rollcall's pure rules: one child's case as an event-sourced aggregate.
//!
//! This crate does no I/O: no database, no network, no clock. Facts from
//! outside (today's date, the school calendar, each LA's policy) arrive as
//! [`CaseServices`]. Start reading at [`aggregate::ChildCase::decide`].

pub mod aggregate;
pub mod commands;
pub mod error;
pub mod events;
pub mod services;
pub mod tracks;
pub mod values;

#[cfg(test)]
mod tests_aggregate;
#[cfg(test)]
mod tests_props;

pub use aggregate::{ChildCase, WatchReason};
pub use commands::ChildCommand;
pub use error::CaseError;
pub use events::{ChildEvent, EVENT_VERSION};
pub use services::{CaseServices, LaPolicy, PolicyBook, SchoolCalendar};
pub use values::{LaCode, Name, Upn, Urn};
