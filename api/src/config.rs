//! Configuration: the command line and environment (parsed once, in
//! `main`, by clap), and an optional JSON file for LA policies and school
//! holidays. Every variable is listed in README.md and docs/operations.md.

use std::fmt;
use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use domain::{PolicyBook, SchoolCalendar};
use serde::Deserialize;

/// A database URL; its `Debug` hides the password.
#[derive(Clone)]
pub struct DatabaseUrl(pub String);

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&projections::db::redact(&self.0))
    }
}

impl std::str::FromStr for DatabaseUrl {
    type Err = String;
    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        if raw.starts_with("postgres://")
            || raw.starts_with("postgresql://")
            || raw.starts_with("sqlite:")
        {
            Ok(Self(raw.to_owned()))
        } else {
            Err("use postgres://USER@HOST/DB or sqlite://PATH".to_owned())
        }
    }
}

/// A holiday range in the config file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HolidayRange {
    pub from: NaiveDate,
    pub to: NaiveDate,
}

/// The optional `--config` file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Per-LA CME policy (`default` and `by_la`).
    #[serde(default)]
    pub policies: PolicyBook,
    /// Weekdays that are not school days.
    #[serde(default)]
    pub holidays: Vec<HolidayRange>,
}

/// Why the config file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path} is not valid: {source}")]
    Parse {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("config file {path}: holiday range {from} to {to} ends before it starts")]
    BackwardsRange {
        path: PathBuf,
        from: NaiveDate,
        to: NaiveDate,
    },
}

impl FileConfig {
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        let Some(path) = path else {
            return Ok(Self::default());
        };
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let config: Self = serde_json::from_str(&text).map_err(|source| ConfigError::Parse {
            path: path.to_owned(),
            source,
        })?;
        if let Some(range) = config.holidays.iter().find(|range| range.to < range.from) {
            return Err(ConfigError::BackwardsRange {
                path: path.to_owned(),
                from: range.from,
                to: range.to,
            });
        }
        Ok(config)
    }

    pub fn calendar(&self) -> SchoolCalendar {
        let mut calendar = SchoolCalendar::default();
        for range in &self.holidays {
            calendar.add_holiday_range(range.from, range.to);
        }
        calendar
    }
}
