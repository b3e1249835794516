//! Facts from outside the aggregate: today's date, the school calendar and
//! each LA's policy. They reach the decision as cqrs-es `Services`, so the
//! rules never read a clock or a database, and a test can set every fact.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use chrono::{Datelike, Days, NaiveDate, Weekday};
use serde::{Deserialize, Serialize};

use crate::values::LaCode;

/// School days are weekdays that are not holidays (term breaks, bank
/// holidays, INSET days). Holidays are configurable per deployment.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SchoolCalendar {
    holidays: BTreeSet<NaiveDate>,
}

impl SchoolCalendar {
    /// A calendar with the given non-school weekdays.
    pub fn with_holidays(holidays: impl IntoIterator<Item = NaiveDate>) -> Self {
        Self {
            holidays: holidays.into_iter().collect(),
        }
    }

    /// Adds every day from `first` to `last` inclusive as a holiday.
    pub fn add_holiday_range(&mut self, first: NaiveDate, last: NaiveDate) {
        let mut day = first;
        while day <= last {
            self.holidays.insert(day);
            day = day
                .succ_opt()
                .expect("dates in a school calendar are far from chrono's limit");
        }
    }

    pub fn is_school_day(&self, date: NaiveDate) -> bool {
        !matches!(date.weekday(), Weekday::Sat | Weekday::Sun) && !self.holidays.contains(&date)
    }

    /// The date `days` school days after `from` (exclusive of `from`): the
    /// deadline of a step "due within `days` school days" of `from`.
    pub fn add_school_days(&self, from: NaiveDate, days: u32) -> NaiveDate {
        let mut date = from;
        let mut counted = 0;
        while counted < days {
            date = date
                .checked_add_days(Days::new(1))
                .expect("school-day deadlines are far from chrono's limit");
            if self.is_school_day(date) {
                counted += 1;
            }
        }
        date
    }

    /// The last day of a run of `days` school days starting on `start`
    /// (`start` counts if it is a school day).
    pub fn last_of_school_days(&self, start: NaiveDate, days: u32) -> NaiveDate {
        if days == 0 {
            return start;
        }
        let first_counts = self.is_school_day(start);
        let remaining = if first_counts { days - 1 } else { days };
        self.add_school_days(start, remaining)
    }
}

/// What one LA requires before it accepts a CME referral or a removal from
/// roll on grounds (h) or (i), and the deadlines of its CME track.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LaPolicy {
    /// Contact attempts logged on or after the day the child went missing.
    pub required_contact_attempts: u32,
    /// Home visits logged on or after the day the child went missing.
    pub required_home_visits: u32,
    /// Whether a referral may be raised without the evidence, with a
    /// recorded override reason.
    pub allow_override: bool,
    /// School days from going missing by which the school should refer.
    pub referral_due_school_days: u32,
    /// School days from a referral by which the LA should accept or return it.
    pub la_decision_due_school_days: u32,
}

impl Default for LaPolicy {
    fn default() -> Self {
        Self {
            required_contact_attempts: 1,
            required_home_visits: 1,
            allow_override: false,
            referral_due_school_days: 10,
            la_decision_due_school_days: 5,
        }
    }
}

/// Every LA's policy; an LA without an entry gets the default.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyBook {
    #[serde(default)]
    pub default: LaPolicy,
    #[serde(default)]
    pub by_la: BTreeMap<LaCode, LaPolicy>,
}

impl PolicyBook {
    pub fn for_la(&self, la: &LaCode) -> &LaPolicy {
        self.by_la.get(la).unwrap_or(&self.default)
    }
}

/// The statutory deadlines of the suspension and exclusion tracks, in school days.
pub mod statutory {
    /// The governing board considers reinstatement within 15 school days.
    pub const BOARD_REVIEW_DAYS: u32 = 15;
    /// An independent review panel meets within 15 school days of the application.
    pub const REVIEW_PANEL_DAYS: u32 = 15;
    /// The board reconsiders within 10 school days of the panel's decision.
    pub const RECONSIDERATION_DAYS: u32 = 10;
    /// Suspensions are capped at 45 school days in a school year.
    pub const SUSPENSION_CAP_DAYS: u32 = 45;
    /// Suspensions over 15 school days (here counted per school year) need a board review.
    pub const SUSPENSION_REVIEW_THRESHOLD_DAYS: u32 = 15;
}

/// The services a child case's decisions may consult.
#[derive(Debug, Clone)]
pub struct CaseServices {
    /// The day the command is decided on: the service passes the real date,
    /// the demo generator a simulated one.
    pub today: NaiveDate,
    pub calendar: Arc<SchoolCalendar>,
    pub policies: Arc<PolicyBook>,
}

impl CaseServices {
    pub fn new(today: NaiveDate, calendar: Arc<SchoolCalendar>, policies: Arc<PolicyBook>) -> Self {
        Self {
            today,
            calendar,
            policies,
        }
    }

    /// Services with default policy and a weekdays-only calendar, on `today`.
    pub fn on(today: NaiveDate) -> Self {
        Self::new(today, Arc::default(), Arc::default())
    }
}

/// The school year (starting 1 September) a date falls in, named by its first calendar year.
pub fn academic_year(date: NaiveDate) -> i32 {
    if date.month() >= 9 {
        date.year()
    } else {
        date.year() - 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().expect("test dates are valid")
    }

    #[test]
    fn school_days_skip_weekends_and_holidays() {
        let calendar = SchoolCalendar::with_holidays([d("2026-09-07")]);
        // Friday 4th + 1 school day skips the weekend and the Monday holiday.
        assert_eq!(
            calendar.add_school_days(d("2026-09-04"), 1),
            d("2026-09-08")
        );
        // Fifteen school days after Tuesday 1st: the Monday holiday on the
        // 7th pushes the deadline from Tuesday 22nd to Wednesday 23rd.
        assert_eq!(
            calendar.add_school_days(d("2026-09-01"), 15),
            d("2026-09-23")
        );
        assert_eq!(
            SchoolCalendar::default().add_school_days(d("2026-09-01"), 15),
            d("2026-09-22")
        );
    }

    #[test]
    fn academic_year_turns_on_first_september() {
        assert_eq!(academic_year(d("2026-08-31")), 2025);
        assert_eq!(academic_year(d("2026-09-01")), 2026);
    }
}
