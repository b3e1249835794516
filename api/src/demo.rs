//! `rollcall demo`: a synthetic local authority through one school year.
//!
//! Every child's year is planned up front as a pure function of the seed and
//! the child's index ([`plan_child`]), then sent through the real command
//! path, [`projections::Store::execute`], with a simulated `today` for each
//! command, so every event passes the same rules as one sent over HTTP.
//! Children are independent aggregates: a chunk of children is replayed day by
//! day, the children of one day running concurrently and each child's
//! commands of that day in order, so the log reads roughly in date order.
//! Afterwards the projector catches up every projection, and one token per
//! role is printed.
//!
//! The year: Year 6 registered in January 2026, offer day 2 March 2026,
//! appeals heard in May and June, July confirmations, summer destination
//! changes, Year 7 starting on 3 September 2026, and an autumn term of
//! enquiries, referrals, removals, suspensions and exclusions up to
//! [`last_day`]. All of it is before the day the generator was written for
//! (4 December 2026), so steps left undone by then show as overdue.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use chrono::{Datelike, NaiveDate, Weekday};
use cqrs_es::Aggregate;
use domain::commands::{
    AppealOutcome, ConcernCategory, ContactMethod, ContactOutcome, HomeVisitOutcome, LocatedOutcome,
};
use domain::tracks::{TrackKind, TrackStep};
use domain::values::{ExclusionReason, RemovalGround, Sen, check_letter};
use domain::{
    CaseServices, ChildCase, ChildCommand, ChildEvent, LaCode, LaPolicy, Name, Upn, Urn,
    WatchReason,
};
use futures::StreamExt;
use projections::projector::{self, PROJECTIONS, ProjectionError};
use projections::{Actor, BackendKind, CommandContext, Database, StoreError};
use uuid::Uuid;

use crate::{AppState, auth};

#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// How many Year 6 children to create.
    #[arg(long, default_value_t = 200)]
    pub children: u32,
    /// The same seed gives the same data.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Children whose commands run at once (default 8 on PostgreSQL, 2 on SQLite,
    /// which commits one writer at a time).
    #[arg(long)]
    pub jobs: Option<usize>,
}

/// Why the demo could not fill the database.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("--children must be between 1 and {MAX_CHILDREN}, not {0}")]
    ChildrenOutOfRange(u32),
    #[error(
        "the database already has demo data (the first demo child's UPN is registered); run demo on a fresh database"
    )]
    AlreadyFilled,
    #[error(
        "the database already has demo data (a token named {0} exists); run demo on a fresh database"
    )]
    TokenExists(String),
    #[error(
        "a domain rule refused demo child {index}'s {command} on {on}: {code} ({message}); the generator and the rules disagree"
    )]
    Refused {
        index: u32,
        command: &'static str,
        on: NaiveDate,
        code: &'static str,
        message: String,
    },
    #[error(
        "demo child {index}'s {command} on {on} was accepted, but the rules should have refused it with {code}"
    )]
    NotRefused {
        index: u32,
        command: &'static str,
        on: NaiveDate,
        code: &'static str,
    },
    #[error("demo child {index}'s {command} on {on} failed: {source}")]
    Store {
        index: u32,
        command: &'static str,
        on: NaiveDate,
        source: StoreError,
    },
    #[error(transparent)]
    Token(#[from] auth::TokenError),
    #[error(transparent)]
    Projection(#[from] ProjectionError),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
}

/// The most children one run creates: UPN serials stay unique up to here.
pub const MAX_CHILDREN: u32 = 2_000_000;

/// Children planned and replayed together; bounds the memory a run needs.
const CHUNK: u32 = 10_000;

/// The demo LA. 999 is not a real LA code, so demo data is never mistaken
/// for a real authority's.
const LA_CODE: &str = "999";
const LA_NAME: &str = "Wexmoor (fictional)";
/// Other fictional LAs children move to.
const OTHER_LAS: [&str; 3] = ["996", "997", "998"];
/// Schools in those LAs (URNs in a range GIAS does not use).
const OUT_OF_AREA_URNS: [&str; 4] = ["980001", "980002", "980003", "980004"];

/// The names of the demo tokens, one per role.
const TOKENS: [(&str, &str); 5] = [
    ("la", "demo-la"),
    ("primary", "demo-primary"),
    ("secondary", "demo-secondary"),
    ("auditor", "demo-auditor"),
    ("analyst", "demo-analyst"),
];

fn date(year: i32, month: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(year, month, day).expect("the demo calendar's dates are valid")
}

/// The key dates of the simulated year.
mod year {
    use super::{NaiveDate, date};
    pub fn register() -> NaiveDate {
        date(2026, 1, 12)
    }
    /// 1 March 2026 is a Sunday: offer day moves to the next working day.
    pub fn offer_day() -> NaiveDate {
        date(2026, 3, 2)
    }
    pub fn hearings() -> NaiveDate {
        date(2026, 5, 4)
    }
    pub fn waiting_list() -> NaiveDate {
        date(2026, 4, 13)
    }
    pub fn transition_info() -> NaiveDate {
        date(2026, 6, 15)
    }
    pub fn transition_days() -> NaiveDate {
        date(2026, 7, 1)
    }
    pub fn confirmations() -> NaiveDate {
        date(2026, 7, 6)
    }
    pub fn late_appeals() -> NaiveDate {
        date(2026, 7, 13)
    }
    pub fn summer_changes() -> NaiveDate {
        date(2026, 8, 17)
    }
    pub fn first_day() -> NaiveDate {
        date(2026, 9, 3)
    }
    pub fn autumn() -> NaiveDate {
        date(2026, 9, 21)
    }
    pub fn late_hearings() -> NaiveDate {
        date(2026, 10, 5)
    }
}

/// No simulated command is dated after this day.
pub fn last_day() -> NaiveDate {
    date(2026, 11, 27)
}

// ---------------------------------------------------------------------------
// A deterministic random-number generator.

/// SplitMix64 (Steele, Lea and Flood, 2014): small, fast and plenty for
/// synthetic data. Written out here so a seed means the same data in every
/// build, whatever a random-number crate does in its next version.
#[derive(Debug, Clone)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix64(self.state)
    }

    /// Uniform in `0..n` (multiply-shift; the bias is below n / 2^64).
    pub fn below(&mut self, n: u64) -> u64 {
        assert!(n > 0, "below(0) has no values to choose from");
        let wide = u128::from(self.next_u64()) * u128::from(n);
        u64::try_from(wide >> 64).expect("the high half of a u64 x u64 product fits a u64")
    }

    /// Uniform in `low..=high`.
    pub fn between(&mut self, low: u32, high: u32) -> u32 {
        let span = u64::from(high.saturating_sub(low)) + 1;
        low + u32::try_from(self.below(span)).expect("below(span) < span <= u32::MAX + 1")
    }

    pub fn index(&mut self, len: usize) -> usize {
        let len = u64::try_from(len).expect("a slice length fits a u64");
        usize::try_from(self.below(len)).expect("below(len) < len, which fits a usize")
    }

    /// Uniform in [0, 1): 53 random bits, as many as a double holds.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.index(items.len())]
    }

    /// One of `items`, each as likely as its weight.
    pub fn weighted<T: Copy>(&mut self, items: &[(u32, T)]) -> T {
        let total: u64 = items.iter().map(|(weight, _)| u64::from(*weight)).sum();
        let mut roll = self.below(total);
        for (weight, item) in items {
            if roll < u64::from(*weight) {
                return *item;
            }
            roll -= u64::from(*weight);
        }
        unreachable!("the roll is below the total of the weights")
    }
}

/// SplitMix64's output function: a bijective mix of 64 bits.
fn mix64(value: u64) -> u64 {
    let mut z = value;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// An independent stream for one child and one purpose: it depends on the
/// seed and the child's index only, not on how many children there are or
/// the order they run in.
fn stream(seed: u64, index: u32, purpose: u64) -> SplitMix64 {
    SplitMix64::new(mix64(
        mix64(seed ^ purpose.wrapping_mul(0xD6E8_FEB8_6659_FD93)) ^ u64::from(index),
    ))
}

const STORY: u64 = 1;
const IDENTITY: u64 = 2;

/// A child's id: the same for the same seed and index, shaped as a v4 UUID.
pub fn child_id(seed: u64, index: u32) -> Uuid {
    let mut rng = stream(seed, index, IDENTITY);
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&rng.next_u64().to_be_bytes());
    bytes[8..].copy_from_slice(&rng.next_u64().to_be_bytes());
    uuid::Builder::from_random_bytes(bytes).into_uuid()
}

// ---------------------------------------------------------------------------
// The local authority: its schools and its pupils' UPNs.

#[derive(Debug, Clone)]
struct School {
    urn: Urn,
    name: String,
    /// The establishment number (the last four digits of the LAESTAB).
    establishment: u16,
}

/// The demo LA: primaries, then secondaries, then a pupil referral unit.
#[derive(Debug, Clone)]
pub struct World {
    la: LaCode,
    schools: Vec<School>,
    primaries: usize,
    secondaries: usize,
}

const PLACES: [&str; 24] = [
    "Ashcombe",
    "Brackenford",
    "Coldmere",
    "Dunstow",
    "Eastwick Vale",
    "Fernleigh",
    "Greyholm",
    "Harrowfield",
    "Ivybeck",
    "Juniper Hill",
    "Kingsmead",
    "Larkfield",
    "Millbrook",
    "Netherby",
    "Oakhurst",
    "Pennywell",
    "Quarry Bank",
    "Ravensworth",
    "Southmoor",
    "Thornbury Green",
    "Upton Lees",
    "Westerleigh",
    "Yarrowdale",
    "Wexford Cross",
];
const PRIMARY_KINDS: [&str; 5] = [
    "Primary School",
    "C of E Primary School",
    "Community Primary School",
    "Junior School",
    "Primary Academy",
];
const SECONDARY_KINDS: [&str; 5] = [
    "Academy",
    "High School",
    "School",
    "Community College",
    "C of E Academy",
];

fn school_name(index: usize, kinds: &[&str]) -> String {
    let place = PLACES[index % PLACES.len()];
    let kind = kinds[(index / PLACES.len()) % kinds.len()];
    let round = index / (PLACES.len() * kinds.len());
    if round == 0 {
        format!("{place} {kind}")
    } else {
        format!("{place} {kind} No. {}", round + 1)
    }
}

fn urn(value: usize) -> Urn {
    Urn::parse(&format!("{value:06}")).expect("demo URNs are six digits")
}

impl World {
    /// About 28 Year 6 pupils per primary and 180 Year 7 places per
    /// secondary, with at least three of each so preferences and appeals
    /// have somewhere to go.
    pub fn new(children: u32) -> Self {
        let children = usize::try_from(children).expect("a u32 fits a usize");
        let primaries = children.div_ceil(28).clamp(3, 1999);
        let secondaries = children.div_ceil(180).clamp(3, 999);
        let mut schools = Vec::with_capacity(primaries + secondaries + 1);
        for i in 0..primaries {
            schools.push(School {
                urn: urn(900_001 + i),
                name: school_name(i, &PRIMARY_KINDS),
                establishment: 2001 + u16::try_from(i).expect("under 1999 primaries"),
            });
        }
        for i in 0..secondaries {
            schools.push(School {
                urn: urn(940_001 + i),
                name: school_name(i, &SECONDARY_KINDS),
                establishment: 4001 + u16::try_from(i).expect("under 999 secondaries"),
            });
        }
        schools.push(School {
            urn: urn(960_001),
            name: "Wexmoor Pupil Referral Unit".to_owned(),
            establishment: 1100,
        });
        Self {
            la: LaCode::parse(LA_CODE).expect("the demo LA code is three digits"),
            schools,
            primaries,
            secondaries,
        }
    }

    fn primary(&self, index: usize) -> usize {
        index
    }

    fn secondary(&self, index: usize) -> usize {
        self.primaries + index
    }

    fn pupil_referral_unit(&self) -> usize {
        self.primaries + self.secondaries
    }

    fn urn(&self, school: usize) -> Urn {
        self.schools[school].urn.clone()
    }

    /// A first preference: lower-numbered secondaries are more popular.
    fn preferred_secondary(&self, rng: &mut SplitMix64) -> usize {
        let a = rng.index(self.secondaries);
        let b = rng.index(self.secondaries);
        self.secondary(a.min(b))
    }

    /// A secondary other than every school in `not`.
    fn other_secondary(&self, rng: &mut SplitMix64, not: &[usize]) -> usize {
        loop {
            let candidate = self.secondary(rng.index(self.secondaries));
            if !not.contains(&candidate) {
                return candidate;
            }
        }
    }

    /// The primary a child attends and its UPN. Children are dealt to the
    /// primaries in turn, so `(primary, serial)` never repeats; a primary's
    /// thousandth pupil moves the UPN's issue year on instead.
    pub fn pupil(&self, index: u32) -> (usize, Upn) {
        let index = usize::try_from(index).expect("a u32 fits a usize");
        let primary = index % self.primaries;
        let serial = index / self.primaries;
        let issued = 19 + serial / 1000;
        let upn = demo_upn(
            self.la.as_str(),
            self.schools[primary].establishment,
            u8::try_from(issued).expect("MAX_CHILDREN keeps the issue year two digits"),
            u16::try_from(serial % 1000).expect("under 1000"),
        );
        (self.primary(primary), upn)
    }

    fn actor(&self, by: By) -> Actor {
        match by {
            By::La => Actor {
                name: "demo-la".to_owned(),
                role: "la".to_owned(),
                org: self.la.to_string(),
            },
            By::School(school) => {
                let urn = &self.schools[school].urn;
                Actor {
                    name: format!("demo-school-{urn}"),
                    role: "school".to_owned(),
                    org: urn.to_string(),
                }
            }
        }
    }
}

/// A permanent UPN: check letter, LA code, establishment, issue year, serial.
pub fn demo_upn(la: &str, establishment: u16, issued: u8, serial: u16) -> Upn {
    let body = format!("{la}{establishment:04}{issued:02}{serial:03}");
    let letter = char::from(check_letter(body.as_bytes()));
    Upn::parse(&format!("{letter}{body}"))
        .expect("a twelve-digit body with its computed check letter is a valid UPN")
}

// ---------------------------------------------------------------------------
// Stories: what happens to one child through the year.

/// How the child's secondary place was decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Admission {
    FirstChoice,
    OtherSchool,
    AppealUpheld,
    AppealDismissed,
    NoPlaceAppealUpheld,
    /// The appeal failed; a place came later from the waiting list.
    NoPlaceAppealDismissed,
    NoPlaceThenAllocated,
    /// Still no place in September: on the watchlist as `no_destination`.
    NoPlaceNever {
        appealed: bool,
    },
}

/// An appeal lodged late, in July, and heard in the autumn (or not yet).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LateAppeal {
    None,
    Pending,
    Dismissed,
    /// Only for a child who arrived and has no autumn story: the upheld
    /// appeal moves them to the new school.
    Upheld,
}

/// The first day of Year 7 and what followed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Start {
    Arrived,
    /// A day-one no-show who turned up within the week.
    LateArrival,
    /// A no-show with one unanswered call and nothing since: the CME
    /// track's referral step goes overdue.
    NoShowNoAction,
    Referred {
        /// The school first tries to refer before its home visit, and the
        /// rules refuse it (`enquiries_incomplete`).
        premature: bool,
        returned_first: bool,
        decided: bool,
        located: bool,
    },
    ReportedMissing {
        located: bool,
    },
    /// Removed on ground (i) after 20 school days' absence.
    RemovedAfter20Days {
        located: bool,
    },
    /// The family had moved: the LA finds the child at another school.
    LocatedElsewhere,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Exclusion {
    /// Nobody recorded the governing board's review: overdue.
    BoardOverdue,
    Reinstated,
    BoardUpheld,
    PanelUpheld,
    PanelQuashed,
    /// The independent review panel has not sat: overdue.
    PanelPending,
}

/// The autumn term, for a child on roll at a secondary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Autumn {
    Nothing,
    Suspended {
        long: bool,
        reviewed: bool,
    },
    Excluded(Exclusion),
    /// Moved to another school in the LA (removal on ground (a)).
    Transfer,
    /// Removed on ground (g) with no destination known.
    MovedAway {
        referred: bool,
        located: bool,
    },
    HomeEducation,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Profile {
    admission: Admission,
    late_appeal: LateAppeal,
    summer_change: bool,
    start: Start,
    autumn: Autumn,
}

const ORDINARY: Profile = Profile {
    admission: Admission::FirstChoice,
    late_appeal: LateAppeal::None,
    summer_change: false,
    start: Start::Arrived,
    autumn: Autumn::Nothing,
};

/// The first children's stories are fixed, so even a small demo shows every
/// watchlist reason, and the first secondary (the demo-secondary token's
/// school) and the first primary (demo-primary's) have something to show.
const SHOWCASE: [Profile; 16] = [
    // Primary 0's pupil with no place: `no_destination`, visible to demo-primary.
    Profile {
        admission: Admission::NoPlaceNever { appealed: false },
        ..ORDINARY
    },
    Profile {
        late_appeal: LateAppeal::Pending,
        ..ORDINARY
    },
    Profile {
        start: Start::NoShowNoAction,
        ..ORDINARY
    },
    Profile {
        start: Start::ReportedMissing { located: false },
        ..ORDINARY
    },
    Profile {
        autumn: Autumn::MovedAway {
            referred: false,
            located: false,
        },
        ..ORDINARY
    },
    Profile {
        start: Start::Referred {
            premature: true,
            returned_first: false,
            decided: true,
            located: false,
        },
        ..ORDINARY
    },
    Profile {
        autumn: Autumn::Excluded(Exclusion::BoardOverdue),
        ..ORDINARY
    },
    Profile {
        start: Start::Referred {
            premature: false,
            returned_first: true,
            decided: true,
            located: true,
        },
        ..ORDINARY
    },
    Profile {
        start: Start::LateArrival,
        ..ORDINARY
    },
    Profile {
        autumn: Autumn::Suspended {
            long: true,
            reviewed: false,
        },
        ..ORDINARY
    },
    Profile {
        summer_change: true,
        ..ORDINARY
    },
    Profile {
        admission: Admission::AppealUpheld,
        ..ORDINARY
    },
    Profile {
        start: Start::RemovedAfter20Days { located: false },
        ..ORDINARY
    },
    Profile {
        start: Start::Referred {
            premature: false,
            returned_first: false,
            decided: false,
            located: false,
        },
        ..ORDINARY
    },
    Profile {
        autumn: Autumn::Excluded(Exclusion::PanelUpheld),
        ..ORDINARY
    },
    Profile {
        start: Start::LocatedElsewhere,
        ..ORDINARY
    },
];

/// Who the child is beyond names: the facts transition information carries.
#[derive(Debug, Clone, Copy)]
struct Needs {
    sen: Sen,
    semh: bool,
    safeguarding: bool,
}

impl Needs {
    fn vulnerable(self) -> bool {
        self.sen != Sen::N || self.semh || self.safeguarding
    }
}

/// A random year. The rates are loosely those of an English LA; no-shows
/// are likelier for children with SEN (1.4x) or a safeguarding context
/// (2x), and exclusions for children with SEMH needs (3x), as the
/// Children's Commissioner found for children who went missing.
fn random_profile(rng: &mut SplitMix64, needs: Needs) -> Profile {
    use Admission as A;
    let admission = rng.weighted(&[
        (8300, A::FirstChoice),
        (800, A::OtherSchool),
        (100, A::AppealUpheld),
        (350, A::AppealDismissed),
        (80, A::NoPlaceAppealUpheld),
        (100, A::NoPlaceAppealDismissed),
        (220, A::NoPlaceThenAllocated),
        (25, A::NoPlaceNever { appealed: true }),
        (25, A::NoPlaceNever { appealed: false }),
    ]);
    if matches!(admission, A::NoPlaceNever { .. }) {
        return Profile {
            admission,
            ..ORDINARY
        };
    }
    let late_appeal = if rng.chance(0.015) {
        rng.weighted(&[
            (40, LateAppeal::Pending),
            (40, LateAppeal::Dismissed),
            (20, LateAppeal::Upheld),
        ])
    } else {
        LateAppeal::None
    };
    let summer_change = rng.chance(0.025);
    let mut no_show = 0.045;
    if needs.sen != Sen::N {
        no_show *= 1.4;
    }
    if needs.safeguarding {
        no_show *= 2.0;
    }
    let start = if rng.chance(no_show) {
        let located = rng.chance(0.6);
        let premature = rng.chance(0.25);
        rng.weighted(&[
            (45, Start::LateArrival),
            (7, Start::NoShowNoAction),
            (
                20,
                Start::Referred {
                    premature,
                    returned_first: false,
                    decided: true,
                    located,
                },
            ),
            (
                5,
                Start::Referred {
                    premature: false,
                    returned_first: true,
                    decided: true,
                    located,
                },
            ),
            (
                4,
                Start::Referred {
                    premature,
                    returned_first: false,
                    decided: false,
                    located: false,
                },
            ),
            (7, Start::ReportedMissing { located }),
            (5, Start::RemovedAfter20Days { located }),
            (7, Start::LocatedElsewhere),
        ])
    } else {
        Start::Arrived
    };
    let exclusion = if needs.semh { 0.006 } else { 0.002 };
    let suspension = if needs.semh { 0.06 } else { 0.03 };
    let roll = rng.unit();
    let mut autumn = if !matches!(start, Start::Arrived | Start::LateArrival) {
        Autumn::Nothing
    } else if roll < exclusion {
        Autumn::Excluded(rng.weighted(&[
            (25, Exclusion::BoardOverdue),
            (15, Exclusion::Reinstated),
            (25, Exclusion::BoardUpheld),
            (15, Exclusion::PanelUpheld),
            (10, Exclusion::PanelQuashed),
            (10, Exclusion::PanelPending),
        ]))
    } else if roll < exclusion + suspension {
        let long = rng.chance(0.15);
        Autumn::Suspended {
            long,
            reviewed: long && rng.chance(0.6),
        }
    } else if roll < exclusion + suspension + 0.01 {
        Autumn::Transfer
    } else if roll < exclusion + suspension + 0.014 {
        Autumn::MovedAway {
            referred: rng.chance(0.5),
            located: rng.chance(0.6),
        }
    } else if roll < exclusion + suspension + 0.022 {
        Autumn::HomeEducation
    } else {
        Autumn::Nothing
    };
    let mut late_appeal = late_appeal;
    if late_appeal == LateAppeal::Upheld {
        if start == Start::Arrived {
            autumn = Autumn::Nothing;
        } else {
            late_appeal = LateAppeal::Dismissed;
        }
    }
    Profile {
        admission,
        late_appeal,
        summer_change,
        start,
        autumn,
    }
}

/// Who sends a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum By {
    La,
    School(usize),
}

/// One command of a child's year, on its simulated day.
#[derive(Debug, Clone, PartialEq)]
struct Step {
    on: NaiveDate,
    by: By,
    command: ChildCommand,
    /// The rule that should refuse this command (it shows the rule working;
    /// nothing is appended).
    expect_refusal: Option<&'static str>,
}

/// One child's whole year.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub index: u32,
    pub id: Uuid,
    pub upn: Upn,
    steps: Vec<Step>,
}

const GIVEN_NAMES: [&str; 40] = [
    "Amara", "Ben", "Chloe", "Dylan", "Ella", "Finley", "Grace", "Harvey", "Isla", "Jacob",
    "Keira", "Leo", "Maisie", "Noah", "Olivia", "Priya", "Quinn", "Reuben", "Sofia", "Tariq",
    "Una", "Vinnie", "Willow", "Xander", "Yasmin", "Zac", "Aisha", "Callum", "Darcey", "Ewan",
    "Freya", "Gethin", "Hannah", "Idris", "Jessica", "Kai", "Lily", "Mohammed", "Niamh", "Oscar",
];
const FAMILY_NAMES: [&str; 40] = [
    "Abbott",
    "Begum",
    "Carter",
    "Dobson",
    "Ellis",
    "Fairweather",
    "Gill",
    "Hussain",
    "Irwin",
    "Jones",
    "Kaur",
    "Lamb",
    "Mensah",
    "Nowak",
    "O'Brien",
    "Patel",
    "Quigley",
    "Rahman",
    "Singh",
    "Thornton",
    "Underwood",
    "Vaughan",
    "Walsh",
    "Yates",
    "Zielinski",
    "Ahmed",
    "Bennett",
    "Chowdhury",
    "Dawson",
    "Evans",
    "Fletcher",
    "Green",
    "Hughes",
    "Ibrahim",
    "Khan",
    "Lewis",
    "Murphy",
    "Nguyen",
    "Okafor",
    "Price",
];

const EHCP_SUMMARIES: [&str; 3] = [
    "EHC plan: autism spectrum condition; finds unstructured time hard",
    "EHC plan: speech, language and communication needs; uses Makaton",
    "EHC plan: moderate learning difficulties; reading age about 7",
];
const SEN_SUPPORT_SUMMARIES: [&str; 3] = [
    "SEN support: dyslexia; reading age two years below",
    "SEN support: ADHD; works best with movement breaks",
    "SEN support: speech and language; needs instructions broken down",
];
const SEMH_SUMMARIES: [&str; 3] = [
    "anxious about the move; weekly ELSA sessions in Year 6",
    "low mood after a bereavement; the school counsellor is involved",
    "struggles at transitions; has a calm-down plan",
];
const SAFEGUARDING_SUMMARIES: [&str; 3] = [
    "child in need plan: contact the allocated social worker before day one",
    "child protection plan: DSL-to-DSL handover arranged",
    "young carer for a parent; may arrive late",
];
const STRATEGIES: [&str; 5] = [
    "visual timetable and a named key adult",
    "early entry to lessons and a time-out card",
    "an extra transition visit and a photo book of the new school",
    "seat near the front; check in at registration",
    "",
];
const CONCERNS: [(ConcernCategory, &str); 6] = [
    (
        ConcernCategory::Anxiety,
        "very quiet on the transition days; asked twice where to go if lost",
    ),
    (
        ConcernCategory::Attendance,
        "missed the second transition day; parent not reachable",
    ),
    (
        ConcernCategory::Behaviour,
        "left the role-play lesson without permission",
    ),
    (
        ConcernCategory::Friendships,
        "no friends moving to this school; would like a buddy",
    ),
    (
        ConcernCategory::Learning,
        "struggled with the written task; may need reading support",
    ),
    (
        ConcernCategory::Safeguarding,
        "said something worrying about home in a role-play; passed to the DSL",
    ),
];
const CHANGE_REASONS: [&str; 5] = [
    "family moved house within the LA over the summer",
    "place offered from the waiting list at a higher preference",
    "parents accepted a late offer at a faith school",
    "managed move agreed before the start of term",
    "sibling link: place offered at the sibling's school",
];
const REFERRAL_REASONS: [&str; 2] = [
    "not attended since the first day of term; calls and a home visit unanswered",
    "family not heard from since the summer; the property appears empty",
];
const RETURN_REASONS: [&str; 2] = [
    "no contact with the emergency contacts on the CTF is recorded: try them and refer again",
    "the home visit was to the previous address: visit the address the GP holds",
];
const ACCEPT_NOTES: [&str; 2] = [
    "accepted: CME officer assigned",
    "accepted: checks with health, housing and neighbouring LAs started",
];
const MISSING_CIRCUMSTANCES: [&str; 2] = [
    "family not seen since the summer holiday; neighbours say they left in August",
    "parent's phone is disconnected; the house is empty and post is piling up",
];
const HOME_VISITS: [(HomeVisitOutcome, &str); 4] = [
    (HomeVisitOutcome::NoAnswer, "no answer; card left"),
    (
        HomeVisitOutcome::MovedAway,
        "a neighbour says the family moved out in August",
    ),
    (
        HomeVisitOutcome::PropertyEmpty,
        "property empty; no furniture visible",
    ),
    (HomeVisitOutcome::NoAnswer, "curtains drawn, no answer"),
];
const CONTACTS: [(ContactMethod, ContactOutcome, &str); 4] = [
    (ContactMethod::Phone, ContactOutcome::NoAnswer, "no answer"),
    (
        ContactMethod::Phone,
        ContactOutcome::MessageLeft,
        "voicemail asking a parent to call the school",
    ),
    (
        ContactMethod::Text,
        ContactOutcome::Other,
        "text message sent; no reply",
    ),
    (
        ContactMethod::Letter,
        ContactOutcome::Other,
        "letter sent to the home address",
    ),
];
const SUSPENSION_REASONS: [(u32, &str); 8] = [
    (30, "DB"),
    (14, "VA"),
    (12, "PP"),
    (10, "VP"),
    (6, "PA"),
    (6, "DM"),
    (4, "MT"),
    (3, "BU"),
];
const EXCLUSION_REASONS: [(u32, &str); 7] = [
    (25, "PA"),
    (20, "DB"),
    (15, "PP"),
    (12, "OW"),
    (10, "DA"),
    (10, "VA"),
    (8, "SM"),
];

fn is_weekday(day: NaiveDate) -> bool {
    !matches!(day.weekday(), Weekday::Sat | Weekday::Sun)
}

/// The day `n` weekdays after `from` (`from` itself when `n` is 0).
fn add_weekdays(from: NaiveDate, n: u32) -> NaiveDate {
    let mut day = from;
    let mut counted = 0;
    while counted < n {
        day = day
            .succ_opt()
            .expect("the demo year is far from chrono's limit");
        if is_weekday(day) {
            counted += 1;
        }
    }
    day
}

/// Plans one child's year as steps. `policy` is the demo LA's CME policy:
/// the enquiries planned always satisfy it.
struct Planner<'a> {
    world: &'a World,
    policy: &'a LaPolicy,
    rng: SplitMix64,
    steps: Vec<Step>,
    /// The latest day planned so far on the child's main thread.
    last: NaiveDate,
}

impl Planner<'_> {
    fn push(&mut self, on: NaiveDate, by: By, command: ChildCommand) {
        self.last = self.last.max(on);
        self.steps.push(Step {
            on,
            by,
            command,
            expect_refusal: None,
        });
    }

    /// A day `low..=high` weekdays after `from`.
    fn after(&mut self, from: NaiveDate, low: u32, high: u32) -> NaiveDate {
        let n = self.rng.between(low, high);
        add_weekdays(from, n)
    }

    /// A day `low..=high` weekdays after `from`, but not before the last step.
    fn later(&mut self, from: NaiveDate, low: u32, high: u32) -> NaiveDate {
        let day = self.after(from, low, high);
        day.max(self.last)
    }

    fn name(&mut self, names: &[&str]) -> Name {
        let name = *self.rng.pick(names);
        Name::parse(name).expect("the built-in names are valid")
    }

    fn text(&mut self, texts: &[&str]) -> String {
        (*self.rng.pick(texts)).to_owned()
    }

    fn reasons(&mut self, table: &[(u32, &str)]) -> Vec<ExclusionReason> {
        let count = self.rng.weighted(&[(70, 1), (25, 2), (5, 3)]);
        let mut codes: Vec<&str> = Vec::new();
        while codes.len() < count {
            let code = self.rng.weighted(table);
            if !codes.contains(&code) {
                codes.push(code);
            }
        }
        codes
            .into_iter()
            .map(|code| ExclusionReason::parse(code).expect("codes from the census list"))
            .collect()
    }

    fn allocate(&mut self, on: NaiveDate, school: usize) {
        let school_urn = self.world.urn(school);
        self.push(on, By::La, ChildCommand::AllocatePupil { school_urn });
    }

    fn appeal(&mut self, school: usize, outcome: AppealOutcome) -> NaiveDate {
        let lodged = self.after(year::offer_day(), 5, 19);
        let school_urn = self.world.urn(school);
        self.push(
            lodged,
            By::La,
            ChildCommand::LodgeAppeal {
                school_urn: school_urn.clone(),
            },
        );
        let decided = self.after(year::hearings(), 0, 39);
        self.push(
            decided,
            By::La,
            ChildCommand::DecideAppeal {
                school_urn,
                outcome,
            },
        );
        decided
    }

    fn contact(&mut self, on: NaiveDate, by: By) {
        let (method, outcome, notes) = *self.rng.pick(&CONTACTS);
        self.push(
            on,
            by,
            ChildCommand::LogContactAttempt {
                method,
                outcome,
                notes: notes.to_owned(),
                made_on: Some(on),
            },
        );
    }

    fn home_visit(&mut self, on: NaiveDate, by: By) {
        let (outcome, notes) = *self.rng.pick(&HOME_VISITS);
        self.push(
            on,
            by,
            ChildCommand::LogHomeVisit {
                visited_on: on,
                outcome,
                notes: notes.to_owned(),
            },
        );
    }

    /// The school's reasonable enquiries from `from`: at least the policy's
    /// contact attempts, then its home visits. With `premature`, the school
    /// first tries to refer before the home visit, and the rules refuse it.
    fn enquiries(&mut self, from: NaiveDate, school: By, premature: bool) -> NaiveDate {
        let contacts = self
            .policy
            .required_contact_attempts
            .max(self.rng.between(1, 2))
            .min(10);
        let mut day = from;
        for _ in 0..contacts {
            day = add_weekdays(day, 1);
            self.contact(day, school);
        }
        if premature && self.policy.required_home_visits > 0 {
            let reason = self.text(&REFERRAL_REASONS);
            self.steps.push(Step {
                on: day,
                by: school,
                command: ChildCommand::RaiseCmeReferral {
                    reason,
                    override_reason: None,
                },
                expect_refusal: Some("enquiries_incomplete"),
            });
        }
        for _ in 0..self.policy.required_home_visits.clamp(1, 10) {
            day = self.after(day, 1, 2);
            self.home_visit(day, school);
        }
        day
    }

    fn raise(&mut self, on: NaiveDate, school: By) {
        let reason = self.text(&REFERRAL_REASONS);
        self.push(
            on,
            school,
            ChildCommand::RaiseCmeReferral {
                reason,
                override_reason: None,
            },
        );
    }

    fn accept(&mut self, on: NaiveDate) {
        let notes = self.text(&ACCEPT_NOTES);
        self.push(on, By::La, ChildCommand::AcceptCmeReferral { notes });
    }

    /// The LA finds the child somewhere, unless that is after the last day.
    fn locate(&mut self, from: NaiveDate, low: u32, high: u32, not: &[usize]) {
        let on = self.after(from, low, high);
        if on > last_day() {
            return;
        }
        let (outcome, school_urn, la_code, notes) = match self.rng.below(5) {
            0 => {
                let school = self.world.other_secondary(&mut self.rng, not);
                (
                    LocatedOutcome::OnRoll,
                    Some(self.world.urn(school)),
                    None,
                    "found on roll at another school in the LA".to_owned(),
                )
            }
            1 => {
                let urn = *self.rng.pick(&OUT_OF_AREA_URNS);
                let la = *self.rng.pick(&OTHER_LAS);
                (
                    LocatedOutcome::OnRoll,
                    Some(Urn::parse(urn).expect("six digits")),
                    Some(LaCode::parse(la).expect("the other LAs' codes are three digits")),
                    format!("admitted to a school in LA {la}"),
                )
            }
            2 => {
                let la = *self.rng.pick(&OTHER_LAS);
                (
                    LocatedOutcome::MovedToAnotherLa,
                    None,
                    Some(LaCode::parse(la).expect("the other LAs' codes are three digits")),
                    format!("family rehoused in LA {la}; CME notification sent to them"),
                )
            }
            3 => (
                LocatedOutcome::MovedAbroad,
                None,
                None,
                "confirmed by the Home Office and a relative: the family has moved abroad"
                    .to_owned(),
            ),
            _ => (
                LocatedOutcome::ElectiveHomeEducation,
                None,
                None,
                "parents confirm elective home education; EHE team informed".to_owned(),
            ),
        };
        self.push(
            on,
            By::La,
            ChildCommand::RecordChildLocated {
                outcome,
                school_urn,
                la_code,
                notes,
            },
        );
    }

    fn arrive(&mut self, on: NaiveDate, school: usize) {
        let school_urn = self.world.urn(school);
        self.push(
            on,
            By::School(school),
            ChildCommand::RecordArrival {
                school_urn,
                date: on,
            },
        );
    }

    fn remove(&mut self, on: NaiveDate, school: usize, ground: RemovalGround, to: Option<usize>) {
        let school_urn = self.world.urn(school);
        let destination_urn = to.map(|to| self.world.urn(to));
        self.push(
            on,
            By::School(school),
            ChildCommand::RemoveFromRoll {
                school_urn,
                ground,
                date: on,
                destination_urn,
            },
        );
    }

    fn track_step(
        &mut self,
        on: NaiveDate,
        school: usize,
        track: TrackKind,
        step: TrackStep,
        notes: &str,
    ) {
        self.push(
            on,
            By::School(school),
            ChildCommand::RecordTrackStep {
                track,
                step,
                date: on,
                notes: notes.to_owned(),
            },
        );
    }

    /// September: the secondary records day one, and what follows a no-show.
    fn september(&mut self, sec: usize, start: Start) {
        let first = year::first_day();
        let by = By::School(sec);
        if start == Start::Arrived {
            self.arrive(first, sec);
            return;
        }
        self.push(
            first,
            by,
            ChildCommand::RecordNoShow {
                school_urn: self.world.urn(sec),
                date: first,
            },
        );
        match start {
            Start::Arrived => unreachable!("handled above"),
            Start::LateArrival => {
                let called = add_weekdays(first, 1);
                self.push(
                    called,
                    by,
                    ChildCommand::LogContactAttempt {
                        method: ContactMethod::Phone,
                        outcome: ContactOutcome::SpokeToParent,
                        notes: "the family was delayed abroad; the child starts next week"
                            .to_owned(),
                        made_on: Some(called),
                    },
                );
                let arrived = self.after(called, 1, 4);
                self.arrive(arrived, sec);
            }
            Start::NoShowNoAction => {
                let called = add_weekdays(first, 1);
                self.push(
                    called,
                    by,
                    ChildCommand::LogContactAttempt {
                        method: ContactMethod::Phone,
                        outcome: ContactOutcome::NoAnswer,
                        notes: "no answer".to_owned(),
                        made_on: Some(called),
                    },
                );
            }
            Start::Referred {
                premature,
                returned_first,
                decided,
                located,
            } => {
                let done = self.enquiries(first, by, premature);
                let mut raised = self.after(done, 1, 2);
                self.raise(raised, by);
                if returned_first {
                    let returned = self.after(raised, 1, 2);
                    let reason = self.text(&RETURN_REASONS);
                    self.push(returned, By::La, ChildCommand::ReturnCmeReferral { reason });
                    let called = add_weekdays(returned, 1);
                    self.push(
                        called,
                        by,
                        ChildCommand::LogContactAttempt {
                            method: ContactMethod::Phone,
                            outcome: ContactOutcome::Other,
                            notes: "emergency contact (grandparent) has not heard from the family"
                                .to_owned(),
                            made_on: Some(called),
                        },
                    );
                    self.home_visit(called, by);
                    raised = add_weekdays(called, 1);
                    self.raise(raised, by);
                }
                if decided {
                    let accepted = self.after(raised, 1, 4);
                    self.accept(accepted);
                    if located {
                        self.locate(accepted, 5, 30, &[sec]);
                    }
                }
            }
            Start::ReportedMissing { located } => {
                let called = add_weekdays(first, 1);
                self.contact(called, by);
                let reported = self.after(called, 1, 2);
                let circumstances = self.text(&MISSING_CIRCUMSTANCES);
                self.push(
                    reported,
                    by,
                    ChildCommand::ReportChildMissing {
                        since: first,
                        circumstances,
                    },
                );
                let done = self.enquiries(reported, by, false);
                let raised = self.after(done, 1, 2);
                self.raise(raised, by);
                let accepted = self.after(raised, 1, 3);
                self.accept(accepted);
                if located {
                    self.locate(accepted, 5, 30, &[sec]);
                }
            }
            Start::RemovedAfter20Days { located } => {
                let done = self.enquiries(first, by, false);
                let raised = self.after(done, 1, 2);
                self.raise(raised, by);
                let accepted = self.after(raised, 1, 3);
                self.accept(accepted);
                // Twenty school days' continuous absence: regulation 9(1)(i).
                let removed = add_weekdays(first, 20).max(self.last);
                self.remove(removed, sec, RemovalGround::I, None);
                if located {
                    self.locate(removed, 5, 25, &[sec]);
                }
            }
            Start::LocatedElsewhere => {
                let called = add_weekdays(first, 1);
                self.push(
                    called,
                    by,
                    ChildCommand::LogContactAttempt {
                        method: ContactMethod::Phone,
                        outcome: ContactOutcome::SpokeToParent,
                        notes: "a parent says the family moved in August and the child has started elsewhere"
                            .to_owned(),
                        made_on: Some(called),
                    },
                );
                let found = self.after(called, 1, 4);
                let elsewhere = self.world.other_secondary(&mut self.rng, &[sec]);
                self.push(
                    found,
                    By::La,
                    ChildCommand::RecordChildLocated {
                        outcome: LocatedOutcome::OnRoll,
                        school_urn: Some(self.world.urn(elsewhere)),
                        la_code: None,
                        notes: "confirmed on roll at another school in the LA".to_owned(),
                    },
                );
            }
        }
    }

    /// The autumn term at `sec`, where the child is on roll.
    fn autumn(&mut self, sec: usize, autumn: Autumn) {
        let by = By::School(sec);
        match autumn {
            Autumn::Nothing => {}
            Autumn::Suspended { long, reviewed } => {
                if long {
                    let first = self.later(year::autumn(), 0, 9);
                    let days = self.rng.between(3, 5);
                    let reasons = self.reasons(&SUSPENSION_REASONS);
                    self.push(
                        first,
                        by,
                        ChildCommand::RecordSuspension {
                            start: first,
                            school_days: days,
                            reasons,
                        },
                    );
                    // The second takes the year past 15 school days: the
                    // governing board must consider reinstatement.
                    let second = self.after(first, days + 3, days + 10);
                    let days = self.rng.between(13, 15);
                    let reasons = self.reasons(&SUSPENSION_REASONS);
                    self.push(
                        second,
                        by,
                        ChildCommand::RecordSuspension {
                            start: second,
                            school_days: days,
                            reasons,
                        },
                    );
                    if reviewed {
                        let review = self.after(second, 5, 14);
                        self.track_step(
                            review,
                            sec,
                            TrackKind::Suspension,
                            TrackStep::GoverningBoardReview,
                            "governors considered the suspensions and upheld them",
                        );
                    }
                } else {
                    let mut start = self.later(year::autumn(), 0, 14);
                    for _ in 0..self.rng.between(1, 3) {
                        if start > date(2026, 11, 20) {
                            break;
                        }
                        let days = self.rng.between(1, 5);
                        let reasons = self.reasons(&SUSPENSION_REASONS);
                        self.push(
                            start,
                            by,
                            ChildCommand::RecordSuspension {
                                start,
                                school_days: days,
                                reasons,
                            },
                        );
                        start = self.after(start, days + 5, days + 20);
                    }
                }
            }
            Autumn::Excluded(path) => self.exclusion(sec, path),
            Autumn::Transfer => {
                let on = self.later(year::autumn(), 0, 40);
                let to = self.world.other_secondary(&mut self.rng, &[sec]);
                self.remove(on, sec, RemovalGround::A, Some(to));
                self.arrive(on, to);
            }
            Autumn::MovedAway { referred, located } => {
                let on = self.later(year::autumn(), 0, 30);
                self.push(
                    on,
                    by,
                    ChildCommand::LogContactAttempt {
                        method: ContactMethod::Phone,
                        outcome: ContactOutcome::SpokeToParent,
                        notes: "a parent says the family has moved away; no new address or school given"
                            .to_owned(),
                        made_on: Some(on),
                    },
                );
                self.remove(on, sec, RemovalGround::G, None);
                if referred {
                    let done = self.enquiries(on, by, false);
                    let raised = self.after(done, 1, 2);
                    self.raise(raised, by);
                    let accepted = self.after(raised, 1, 3);
                    self.accept(accepted);
                    if located {
                        self.locate(accepted, 5, 15, &[sec]);
                    }
                }
            }
            Autumn::HomeEducation => {
                let on = self.later(year::autumn(), 0, 40);
                self.push(
                    on,
                    by,
                    ChildCommand::LogContactAttempt {
                        method: ContactMethod::Letter,
                        outcome: ContactOutcome::SpokeToParent,
                        notes: "parent's written notice of elective home education received"
                            .to_owned(),
                        made_on: Some(on),
                    },
                );
                self.remove(on, sec, RemovalGround::F, None);
            }
        }
    }

    fn exclusion(&mut self, sec: usize, path: Exclusion) {
        use TrackKind::PermanentExclusion as Pex;
        let by = By::School(sec);
        let excluded = self.later(year::autumn(), 0, 14);
        let reasons = self.reasons(&EXCLUSION_REASONS);
        self.push(
            excluded,
            by,
            ChildCommand::RecordPermanentExclusion {
                date: excluded,
                reasons,
            },
        );
        if path == Exclusion::BoardOverdue {
            return;
        }
        let review = self.after(excluded, 5, 10);
        let upheld = "governors considered reinstatement and upheld the exclusion";
        if path == Exclusion::Reinstated {
            self.track_step(
                review,
                sec,
                Pex,
                TrackStep::GoverningBoardReview,
                "governors considered reinstatement",
            );
            self.track_step(
                review,
                sec,
                Pex,
                TrackStep::Reinstated,
                "governors directed reinstatement",
            );
            return;
        }
        self.track_step(review, sec, Pex, TrackStep::GoverningBoardReview, upheld);
        let pru = self.world.pupil_referral_unit();
        if path == Exclusion::BoardUpheld {
            // No review was asked for within 15 school days: the exclusion
            // stands and the pupil moves to the pupil referral unit.
            let removed = add_weekdays(review, 16);
            if removed <= last_day() {
                self.track_step(
                    removed,
                    sec,
                    Pex,
                    TrackStep::TrackClosed,
                    "no independent review requested",
                );
                self.remove(removed, sec, RemovalGround::O, Some(pru));
                self.arrive(removed, pru);
            }
            return;
        }
        let requested = self.after(review, 3, 10);
        self.track_step(
            requested,
            sec,
            Pex,
            TrackStep::IndependentReviewRequested,
            "parents applied for an independent review",
        );
        if path == Exclusion::PanelPending {
            return;
        }
        let panel = self.after(requested, 8, 14);
        if panel > last_day() {
            return;
        }
        if path == Exclusion::PanelUpheld {
            self.track_step(
                panel,
                sec,
                Pex,
                TrackStep::PanelUpheld,
                "the panel upheld the governors' decision",
            );
            let removed = self.after(panel, 2, 5);
            if removed <= last_day() {
                self.remove(removed, sec, RemovalGround::O, Some(pru));
                self.arrive(removed, pru);
            }
            return;
        }
        let (step, notes) = if self.rng.chance(0.5) {
            (TrackStep::PanelQuashed, "the panel quashed the decision")
        } else {
            (
                TrackStep::PanelRecommendedReconsideration,
                "the panel recommended reconsideration",
            )
        };
        self.track_step(panel, sec, Pex, step, notes);
        let reconsidered = self.after(panel, 3, 9);
        if reconsidered > last_day() {
            return;
        }
        if self.rng.chance(0.5) {
            self.track_step(
                reconsidered,
                sec,
                Pex,
                TrackStep::Reinstated,
                "on reconsideration, governors reinstated the pupil",
            );
        } else {
            self.track_step(
                reconsidered,
                sec,
                Pex,
                TrackStep::BoardReconsideration,
                "governors reconsidered and the exclusion stands",
            );
            let removed = self.after(reconsidered, 1, 3);
            if removed <= last_day() {
                self.remove(removed, sec, RemovalGround::O, Some(pru));
                self.arrive(removed, pru);
            }
        }
    }
}

/// Plans child `index`'s year: a pure function of the seed, the index, the
/// LA and its policy.
pub fn plan_child(seed: u64, index: u32, world: &World, policy: &LaPolicy) -> Plan {
    let mut rng = stream(seed, index, STORY);
    let id = child_id(seed, index);
    let (primary, upn) = world.pupil(index);
    let needs = {
        let sen = rng.weighted(&[(815, Sen::N), (140, Sen::K), (45, Sen::E)]);
        let semh = rng.chance(if sen == Sen::N { 0.03 } else { 0.2 });
        Needs {
            sen,
            semh,
            safeguarding: rng.chance(0.04),
        }
    };
    let showcase = usize::try_from(index)
        .ok()
        .and_then(|index| SHOWCASE.get(index).copied());
    let profile = showcase.unwrap_or_else(|| random_profile(&mut rng, needs));
    let mut p = Planner {
        world,
        policy,
        rng,
        steps: Vec::new(),
        last: year::register(),
    };
    let by_primary = By::School(primary);

    // January: the primary registers its Year 6 pupil.
    let registered = p.after(year::register(), 0, 4);
    let given_name = p.name(&GIVEN_NAMES);
    let family_name = p.name(&FAMILY_NAMES);
    let date_of_birth = date(2014, 9, 1) + chrono::Days::new(p.rng.below(365));
    p.push(
        registered,
        by_primary,
        ChildCommand::RegisterChild {
            upn: upn.clone(),
            given_name,
            family_name,
            date_of_birth,
            la_code: world.la.clone(),
            school_urn: Some(world.urn(primary)),
            year_group: Some(6),
            sen: Some(needs.sen),
        },
    );

    // Offer day and appeals.
    let first = if showcase.is_some() {
        world.secondary(0)
    } else {
        world.preferred_secondary(&mut p.rng)
    };
    let other = world.other_secondary(&mut p.rng, &[first]);
    let offer = year::offer_day();
    let mut destination = None;
    match profile.admission {
        Admission::FirstChoice => {
            p.allocate(offer, first);
            destination = Some(first);
        }
        Admission::OtherSchool => {
            p.allocate(offer, other);
            destination = Some(other);
        }
        Admission::AppealUpheld | Admission::AppealDismissed => {
            p.allocate(offer, other);
            let upheld = profile.admission == Admission::AppealUpheld;
            let outcome = if upheld {
                AppealOutcome::Upheld
            } else {
                AppealOutcome::Dismissed
            };
            p.appeal(first, outcome);
            destination = Some(if upheld { first } else { other });
        }
        Admission::NoPlaceAppealUpheld => {
            p.push(offer, By::La, ChildCommand::RecordNoAllocation {});
            p.appeal(first, AppealOutcome::Upheld);
            destination = Some(first);
        }
        Admission::NoPlaceAppealDismissed => {
            p.push(offer, By::La, ChildCommand::RecordNoAllocation {});
            let decided = p.appeal(first, AppealOutcome::Dismissed);
            let allocated = p.after(decided, 3, 10);
            p.allocate(allocated, other);
            destination = Some(other);
        }
        Admission::NoPlaceThenAllocated => {
            p.push(offer, By::La, ChildCommand::RecordNoAllocation {});
            let allocated = p.after(year::waiting_list(), 0, 50);
            p.allocate(allocated, other);
            destination = Some(other);
        }
        Admission::NoPlaceNever { appealed } => {
            p.push(offer, By::La, ChildCommand::RecordNoAllocation {});
            if appealed {
                p.appeal(first, AppealOutcome::Dismissed);
            }
        }
    }
    let Some(mut destination) = destination else {
        return p.finish(index, id, upn);
    };

    // Summer term: transition information for the vulnerable cohort, what
    // the secondary saw on its transition days, July confirmations.
    let share = |p: &mut Planner<'_>, on: NaiveDate, to: usize| {
        let mut summary = Vec::new();
        match needs.sen {
            Sen::E => summary.push(p.text(&EHCP_SUMMARIES)),
            Sen::K => summary.push(p.text(&SEN_SUPPORT_SUMMARIES)),
            Sen::N => {}
        }
        if needs.semh {
            summary.push(p.text(&SEMH_SUMMARIES));
        }
        if needs.safeguarding {
            summary.push(p.text(&SAFEGUARDING_SUMMARIES));
        }
        let strategies = p.text(&STRATEGIES);
        p.push(
            on,
            by_primary,
            ChildCommand::ShareTransitionInfo {
                school_urn: world.urn(to),
                sen: Some(needs.sen),
                semh: needs.semh,
                safeguarding: needs.safeguarding,
                summary: summary.join("; "),
                strategies,
            },
        );
    };
    if needs.vulnerable() {
        let on = p.later(year::transition_info(), 0, 19);
        share(&mut p, on, destination);
    }
    let concern = if needs.vulnerable() { 0.09 } else { 0.03 };
    if p.rng.chance(concern) {
        let on = p.later(year::transition_days(), 0, 2);
        let (category, notes) = *p.rng.pick(&CONCERNS);
        p.push(
            on,
            By::School(destination),
            ChildCommand::RecordTransitionConcern {
                category,
                notes: notes.to_owned(),
            },
        );
    }
    if p.rng.chance(0.95) {
        let on = p.later(year::confirmations(), 0, 9);
        p.push(
            on,
            by_primary,
            ChildCommand::ConfirmDestination {
                school_urn: world.urn(destination),
            },
        );
    }
    let late_appeal_school = (profile.late_appeal != LateAppeal::None).then(|| {
        let school = world.other_secondary(&mut p.rng, &[destination]);
        let on = p.later(year::late_appeals(), 0, 9);
        p.push(
            on,
            By::La,
            ChildCommand::LodgeAppeal {
                school_urn: world.urn(school),
            },
        );
        school
    });
    if profile.summer_change {
        let mut not = vec![destination];
        not.extend(late_appeal_school);
        let to = world.other_secondary(&mut p.rng, &not);
        let on = p.later(year::summer_changes(), 0, 12);
        let reason = p.text(&CHANGE_REASONS);
        p.push(
            on,
            By::La,
            ChildCommand::ChangeDestination {
                school_urn: world.urn(to),
                reason,
            },
        );
        destination = to;
        if needs.vulnerable() {
            let on = p.later(on, 1, 1);
            share(&mut p, on, destination);
        }
    }

    // September and the autumn term.
    p.september(destination, profile.start);
    if matches!(profile.start, Start::Arrived | Start::LateArrival) {
        p.autumn(destination, profile.autumn);
    }

    // The late appeal is heard in October, alongside the autumn story.
    if let Some(school) = late_appeal_school {
        let heard = p.after(year::late_hearings(), 0, 9);
        let school_urn = world.urn(school);
        match profile.late_appeal {
            LateAppeal::None | LateAppeal::Pending => {}
            LateAppeal::Dismissed => p.push(
                heard,
                By::La,
                ChildCommand::DecideAppeal {
                    school_urn,
                    outcome: AppealOutcome::Dismissed,
                },
            ),
            LateAppeal::Upheld => {
                p.push(
                    heard,
                    By::La,
                    ChildCommand::DecideAppeal {
                        school_urn,
                        outcome: AppealOutcome::Upheld,
                    },
                );
                let moved = p.after(heard, 2, 5);
                p.remove(moved, destination, RemovalGround::A, Some(school));
                p.arrive(moved, school);
            }
        }
    }
    p.finish(index, id, upn)
}

impl Planner<'_> {
    fn finish(mut self, index: u32, id: Uuid, upn: Upn) -> Plan {
        // Threads planned separately (the late appeal) interleave by day;
        // the sort is stable, so each thread keeps its own order.
        self.steps.sort_by_key(|step| step.on);
        Plan {
            index,
            id,
            upn,
            steps: self.steps,
        }
    }
}

// ---------------------------------------------------------------------------
// Running the plans through the store.

/// What a run did, for the summary.
#[derive(Debug, Default)]
struct Tally {
    children: u64,
    events: u64,
    /// Commands accepted, by name.
    commands: BTreeMap<&'static str, u64>,
    refused_as_expected: BTreeMap<&'static str, u64>,
    /// Children with each watchlist reason open, from the domain's own fold.
    reasons: BTreeMap<WatchReason, u64>,
    on_watchlist: u64,
}

impl Tally {
    fn commands_sent(&self) -> u64 {
        self.commands.values().sum::<u64>() + self.refused_as_expected.values().sum::<u64>()
    }

    fn count_child(&mut self, case: &ChildCase, today: NaiveDate) {
        self.children += 1;
        let mut reasons = case.watch_reasons();
        if !case.tracks.overdue(today).is_empty() {
            reasons.push(WatchReason::OverdueTrackStep);
        }
        if !reasons.is_empty() {
            self.on_watchlist += 1;
        }
        for reason in reasons {
            *self.reasons.entry(reason).or_default() += 1;
        }
    }
}

/// One child's steps on one day, and what they did.
#[derive(Debug)]
struct DayDone {
    position: usize,
    events: Vec<ChildEvent>,
    accepted: Vec<&'static str>,
    refused_as_expected: Vec<&'static str>,
}

async fn run_day(
    state: &AppState,
    world: &World,
    plan: &Plan,
    position: usize,
    steps: Vec<(usize, Step)>,
) -> Result<DayDone, DemoError> {
    let mut done = DayDone {
        position,
        events: Vec::new(),
        accepted: Vec::new(),
        refused_as_expected: Vec::new(),
    };
    for (number, step) in steps {
        let name = step.command.name();
        let services = CaseServices::new(step.on, state.calendar.clone(), state.policies.clone());
        let context = CommandContext {
            actor: world.actor(step.by),
            request_id: format!("demo-{}-{number}", plan.index),
            idempotency_key: None,
            expected_version: None,
        };
        let result = state
            .store
            .execute(plan.id, step.command, &context, &services)
            .await;
        match (result, step.expect_refusal) {
            (Ok(outcome), None) => {
                done.accepted.push(name);
                done.events
                    .extend(outcome.events.into_iter().map(|recorded| recorded.event));
            }
            (Err(StoreError::Rejected(error)), Some(code)) if error.code() == code => {
                done.refused_as_expected.push(name);
            }
            (Ok(_), Some(code)) => {
                return Err(DemoError::NotRefused {
                    index: plan.index,
                    command: name,
                    on: step.on,
                    code,
                });
            }
            (Err(StoreError::Rejected(error)), _) => {
                return Err(DemoError::Refused {
                    index: plan.index,
                    command: name,
                    on: step.on,
                    code: error.code(),
                    message: error.to_string(),
                });
            }
            (Err(StoreError::DuplicateUpn), _) => return Err(DemoError::AlreadyFilled),
            (Err(source), _) => {
                return Err(DemoError::Store {
                    index: plan.index,
                    command: name,
                    on: step.on,
                    source,
                });
            }
        }
    }
    Ok(done)
}

/// Progress on standard error: a redrawn bar on a terminal; otherwise a
/// line every tenth of the way, and at least every 15 seconds.
#[derive(Debug)]
struct Progress {
    total: u64,
    started: Instant,
    drawn: Instant,
    terminal: bool,
    next_tenth: u64,
}

impl Progress {
    fn new(total: u64) -> Self {
        let now = Instant::now();
        Self {
            total: total.max(1),
            started: now,
            drawn: now,
            terminal: std::io::stderr().is_terminal(),
            next_tenth: 1,
        }
    }

    /// `done` of `total` children-equivalents, `commands` sent so far.
    fn show(&mut self, done: f64, commands: u64, force: bool) {
        let fraction = (done / self.total as f64).clamp(0.0, 1.0);
        let elapsed = self.started.elapsed().as_secs_f64();
        let rate = commands as f64 / elapsed.max(1e-9);
        let eta = if fraction > 0.0 {
            elapsed * (1.0 - fraction) / fraction
        } else {
            0.0
        };
        let line = format!(
            "{:>3.0}%  {} commands  {:.0}/s  elapsed {}  eta {}",
            fraction * 100.0,
            thousands(commands),
            rate,
            clock(elapsed),
            clock(eta)
        );
        let mut stderr = std::io::stderr().lock();
        if self.terminal {
            if !force && self.drawn.elapsed() < Duration::from_millis(200) {
                return;
            }
            self.drawn = Instant::now();
            let width = 30usize;
            let filled = (fraction * width as f64).round() as usize;
            let bar = format!(
                "{}{}",
                "#".repeat(filled),
                "-".repeat(width.saturating_sub(filled))
            );
            let _ = write!(stderr, "\r[{bar}] {line}\x1b[K");
            let _ = stderr.flush();
        } else {
            let tenth = (fraction * 10.0).floor() as u64;
            if tenth >= self.next_tenth || force || self.drawn.elapsed() >= Duration::from_secs(15)
            {
                self.next_tenth = self.next_tenth.max(tenth + 1);
                self.drawn = Instant::now();
                let _ = writeln!(stderr, "demo: {line}");
            }
        }
    }

    fn finish(&mut self, commands: u64) {
        if self.terminal {
            self.show(self.total as f64, commands, true);
            let _ = writeln!(std::io::stderr());
        } else if self.next_tenth <= 10 {
            self.show(self.total as f64, commands, true);
        }
    }
}

fn clock(seconds: f64) -> String {
    let seconds = seconds.max(0.0).round() as u64;
    if seconds >= 60 {
        format!("{}m{:02}s", seconds / 60, seconds % 60)
    } else {
        format!("{seconds}s")
    }
}

fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// One child's steps on one day: its position in the chunk, and each step
/// with its number in the child's year.
type ChildDay = (usize, Vec<(usize, Step)>);

/// Runs chunk after chunk of children through the store.
async fn load(
    state: &AppState,
    world: &World,
    policy: &LaPolicy,
    args: &DemoArgs,
    jobs: usize,
) -> Result<Tally, DemoError> {
    let today = state.today();
    let mut tally = Tally::default();
    let mut progress = Progress::new(u64::from(args.children));
    let mut chunk_start = 0u32;
    while chunk_start < args.children {
        let chunk_end = chunk_start.saturating_add(CHUNK).min(args.children);
        let mut plans: Vec<Plan> = (chunk_start..chunk_end)
            .map(|index| plan_child(args.seed, index, world, policy))
            .collect();
        // Each day's work: for each child, its steps of that day in order.
        let mut days: BTreeMap<NaiveDate, Vec<ChildDay>> = BTreeMap::new();
        let mut steps_in_chunk = 0usize;
        for (position, plan) in plans.iter_mut().enumerate() {
            let mut today_steps: Vec<(usize, Step)> = Vec::new();
            for (number, step) in std::mem::take(&mut plan.steps).into_iter().enumerate() {
                steps_in_chunk += 1;
                if today_steps
                    .first()
                    .is_some_and(|(_, first)| first.on != step.on)
                {
                    let day = today_steps[0].1.on;
                    days.entry(day)
                        .or_default()
                        .push((position, std::mem::take(&mut today_steps)));
                }
                today_steps.push((number, step));
            }
            if let Some((_, first)) = today_steps.first() {
                days.entry(first.on)
                    .or_default()
                    .push((position, today_steps));
            }
        }
        let mut cases: Vec<ChildCase> = vec![ChildCase::default(); plans.len()];
        let mut steps_done = 0usize;
        let chunk_len = f64::from(chunk_end - chunk_start);
        for (_day, work) in days {
            let plans = &plans;
            let mut running =
                futures::stream::iter(work.into_iter().map(|(position, steps)| {
                    run_day(state, world, &plans[position], position, steps)
                }))
                .buffer_unordered(jobs);
            while let Some(done) = running.next().await {
                let done = done?;
                steps_done += done.accepted.len() + done.refused_as_expected.len();
                tally.events += u64::try_from(done.events.len()).unwrap_or(u64::MAX);
                for name in done.accepted {
                    *tally.commands.entry(name).or_default() += 1;
                }
                for name in done.refused_as_expected {
                    *tally.refused_as_expected.entry(name).or_default() += 1;
                }
                let case = &mut cases[done.position];
                for event in done.events {
                    case.apply(event);
                }
                let fraction = steps_done as f64 / steps_in_chunk.max(1) as f64;
                progress.show(
                    f64::from(chunk_start) + fraction * chunk_len,
                    tally.commands_sent(),
                    false,
                );
            }
        }
        for case in &cases {
            tally.count_child(case, today);
        }
        chunk_start = chunk_end;
    }
    progress.finish(tally.commands_sent());
    Ok(tally)
}

/// Brings every projection up to the end of the log: concurrently on
/// PostgreSQL, one after another on SQLite (one writer at a time anyway).
async fn project(db: &Database) -> Result<Vec<(&'static str, u64, f64)>, DemoError> {
    async fn one(db: &Database, name: &'static str) -> Result<(&'static str, u64, f64), DemoError> {
        let started = Instant::now();
        let mut applied = 0;
        // A running `serve` may be feeding the same projection; its batches
        // move the checkpoint under ours, which is harmless: read it again.
        for _ in 0..100 {
            match projector::catch_up(db, name, projector::REBUILD_BATCH).await {
                Ok(count) => {
                    applied += count;
                    let seconds = started.elapsed().as_secs_f64();
                    eprintln!(
                        "demo: projected {name}: {} events in {seconds:.1} s",
                        thousands(applied)
                    );
                    return Ok((name, applied, seconds));
                }
                Err(ProjectionError::CheckpointMoved(_)) => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(error) => return Err(error.into()),
            }
        }
        Err(ProjectionError::CheckpointMoved(name.to_owned()).into())
    }
    match db.kind() {
        BackendKind::Postgres => {
            futures::future::try_join_all(PROJECTIONS.into_iter().map(|name| one(db, name))).await
        }
        BackendKind::Sqlite => {
            let mut results = Vec::new();
            for name in PROJECTIONS {
                results.push(one(db, name).await?);
            }
            Ok(results)
        }
    }
}

/// Children with each reason open in the `child_cases` projection's tables.
async fn projected_reasons(
    db: &Database,
    la: &str,
    today: NaiveDate,
) -> Result<BTreeMap<String, i64>, sqlx::Error> {
    use sqlx::Row;
    let mut counts = BTreeMap::new();
    let rows = sqlx::query(
        "select reason, count(distinct child_id) as children from watchlist \
         where cleared_on is null and la_code = $1 group by reason",
    )
    .bind(la)
    .fetch_all(db.any())
    .await?;
    for row in rows {
        counts.insert(row.try_get("reason")?, row.try_get("children")?);
    }
    let overdue: i64 = sqlx::query_scalar(
        "select count(distinct child_id) from open_track_steps where la_code = $1 and due_on < $2",
    )
    .bind(la)
    .bind(today.to_string())
    .fetch_one(db.any())
    .await?;
    counts.insert(WatchReason::OverdueTrackStep.as_str().to_owned(), overdue);
    Ok(counts)
}

/// Fills the database: plans, commands, projections, tokens, summary.
pub async fn run(state: &AppState, args: &DemoArgs) -> Result<(), DemoError> {
    if args.children == 0 || args.children > MAX_CHILDREN {
        return Err(DemoError::ChildrenOutOfRange(args.children));
    }
    let world = World::new(args.children);
    let policy = state.policies.for_la(&world.la).clone();
    let db = &state.db;

    // Refuse before writing anything if an earlier run left its mark.
    let (_, first_upn) = world.pupil(0);
    if state.store.upn_owner(first_upn.as_str()).await?.is_some() {
        return Err(DemoError::AlreadyFilled);
    }
    let existing = auth::list_tokens(db).await?;
    if let Some((_, name)) = TOKENS
        .iter()
        .find(|(_, name)| existing.iter().any(|token| token.name == *name))
    {
        return Err(DemoError::TokenExists((*name).to_owned()));
    }

    let jobs = args
        .jobs
        .unwrap_or(match db.kind() {
            BackendKind::Postgres => 8,
            BackendKind::Sqlite => 2,
        })
        .max(1);
    let backend = match db.kind() {
        BackendKind::Postgres => "PostgreSQL",
        BackendKind::Sqlite => "SQLite",
    };
    eprintln!(
        "demo: {} children, seed {}, {jobs} at a time on {backend}",
        thousands(u64::from(args.children)),
        args.seed
    );
    let started = Instant::now();
    let tally = load(state, &world, &policy, args, jobs).await?;
    let loaded = started.elapsed().as_secs_f64();
    eprintln!("demo: projecting");
    let projected_at = Instant::now();
    let postgres = db.kind() == BackendKind::Postgres;
    if postgres {
        // After a bulk load the planner has no statistics for the log, and
        // each projector batch then sorts all of it (2.4 s instead of 20 ms
        // a batch at 100,000 children).
        sqlx::query("analyze events").execute(db.any()).await?;
    }
    let projections = project(db).await?;
    if postgres {
        // The same for the read models the API is about to query.
        sqlx::query("analyze").execute(db.any()).await?;
    }
    let projected = projected_at.elapsed().as_secs_f64();

    let today = state.today();
    let projected_counts = projected_reasons(db, world.la.as_str(), today).await?;

    let primary = &world.schools[world.primary(0)];
    let secondary = &world.schools[world.secondary(0)];
    let mut tokens = Vec::new();
    for (label, name) in TOKENS {
        let (role, la, school) = match label {
            "la" => ("la", Some(LA_CODE), None),
            "primary" => ("school", None, Some(primary.urn.as_str())),
            "secondary" => ("school", None, Some(secondary.urn.as_str())),
            "auditor" => ("auditor", Some(LA_CODE), None),
            _ => ("analyst", Some(LA_CODE), None),
        };
        tokens.push((label, auth::create_token(db, name, role, la, school).await?));
    }

    print_summary(&Summary {
        args,
        world: &world,
        tally: &tally,
        loaded,
        projected,
        backend,
        jobs,
        projections: &projections,
        projected_counts: &projected_counts,
        today,
        tokens: &tokens,
    });
    Ok(())
}

struct Summary<'a> {
    args: &'a DemoArgs,
    world: &'a World,
    tally: &'a Tally,
    loaded: f64,
    projected: f64,
    backend: &'a str,
    jobs: usize,
    projections: &'a [(&'static str, u64, f64)],
    projected_counts: &'a BTreeMap<String, i64>,
    today: NaiveDate,
    tokens: &'a [(&'static str, String)],
}

fn print_summary(s: &Summary<'_>) {
    let world = s.world;
    let tally = s.tally;
    let sent = tally.commands_sent();
    println!(
        "Rollcall demo: LA {LA_CODE} {LA_NAME}, seed {}",
        s.args.seed
    );
    println!(
        "  schools   {} primaries, {} secondaries, 1 pupil referral unit",
        world.primaries, world.secondaries
    );
    println!(
        "  children  {} (Year 6 in 2025/26; Year 7 from {})",
        thousands(tally.children),
        year::first_day()
    );
    println!(
        "  events    {} from {} commands in {:.1} s on {} ({:.0} commands/s, {} at a time)",
        thousands(tally.events),
        thousands(sent),
        s.loaded,
        s.backend,
        sent as f64 / s.loaded.max(1e-9),
        s.jobs
    );
    for (name, applied, seconds) in s.projections {
        println!(
            "  projected {name}: {} events in {seconds:.1} s",
            thousands(*applied)
        );
    }
    println!("  total     {:.1} s", s.loaded + s.projected);
    println!();
    println!("commands accepted");
    for (name, count) in &tally.commands {
        println!("  {name:<26} {:>9}", thousands(*count));
    }
    for (name, count) in &tally.refused_as_expected {
        println!(
            "  {name:<26} {:>9}  refused as the rules require (enquiries_incomplete)",
            thousands(*count)
        );
    }
    println!();
    println!(
        "LA watchlist on {} ({} children): reason, children by the domain, by the projection",
        s.today,
        thousands(tally.on_watchlist)
    );
    for reason in WatchReason::ALL {
        let domain = tally.reasons.get(&reason).copied().unwrap_or(0);
        let projected = s
            .projected_counts
            .get(reason.as_str())
            .copied()
            .unwrap_or(0);
        let flag = if i64::try_from(domain).ok() == Some(projected) {
            ""
        } else {
            "  MISMATCH"
        };
        println!(
            "  {:<28} {:>8} {:>8}{flag}",
            reason.as_str(),
            thousands(domain),
            projected
        );
    }
    println!();
    println!("tokens, shown once (role, token):");
    for (label, token) in s.tokens {
        println!("{label:<10}{token}");
    }
    let primary = &world.schools[world.primary(0)];
    let secondary = &world.schools[world.secondary(0)];
    println!(
        "  la: the LA {LA_CODE} CME team; primary: {} {}; secondary: {} {}; auditor and analyst: LA {LA_CODE}",
        primary.urn, primary.name, secondary.urn, secondary.name
    );
    let token = |label: &str| {
        s.tokens
            .iter()
            .find(|(l, _)| *l == label)
            .map_or("", |(_, token)| token.as_str())
    };
    let api = "http://127.0.0.1:8080/api/v1";
    let no_show = child_id(s.args.seed, 2.min(s.args.children - 1));
    let (_, first_upn) = world.pupil(0);
    println!();
    println!("try it: start `rollcall serve` on the same database, then");
    println!(
        "  curl -s -H 'Authorization: Bearer {}' '{api}/watchlist'",
        token("la")
    );
    println!(
        "  curl -s -H 'Authorization: Bearer {}' '{api}/watchlist?reason=overdue_track_step'",
        token("la")
    );
    println!(
        "  curl -s -H 'Authorization: Bearer {}' '{api}/reports/destination-changes'",
        token("la")
    );
    println!(
        "  curl -s -H 'Authorization: Bearer {}' '{api}/schools/{}/incoming'",
        token("secondary"),
        secondary.urn
    );
    println!(
        "  curl -s -H 'Authorization: Bearer {}' '{api}/reports/day-one-no-shows'",
        token("secondary")
    );
    println!(
        "  curl -s -H 'Authorization: Bearer {}' '{api}/children?upn={first_upn}'",
        token("primary")
    );
    println!(
        "  curl -s -H 'Authorization: Bearer {}' '{api}/children/{no_show}/history'",
        token("auditor")
    );
    println!(
        "  curl -s -H 'Authorization: Bearer {}' '{api}/watchlist'",
        token("analyst")
    );
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::sync::Arc;

    use domain::{PolicyBook, SchoolCalendar};

    use super::*;

    #[test]
    fn the_generator_repeats_itself_for_a_seed_and_differs_across_seeds() {
        let draw = |seed| {
            let mut rng = SplitMix64::new(seed);
            (0..100).map(|_| rng.next_u64()).collect::<Vec<_>>()
        };
        assert_eq!(draw(7), draw(7));
        assert_ne!(draw(7), draw(8));
        // SplitMix64's published first output for seed 0.
        assert_eq!(SplitMix64::new(0).next_u64(), 0xE220_A839_7B1D_CDAF);
    }

    #[test]
    fn bounded_draws_stay_in_range_and_reach_both_ends() {
        let mut rng = SplitMix64::new(42);
        let draws: Vec<u32> = (0..10_000).map(|_| rng.between(3, 9)).collect();
        assert!(draws.iter().all(|n| (3..=9).contains(n)));
        assert!(draws.contains(&3) && draws.contains(&9));
        assert!((0..10_000).all(|_| rng.below(5) < 5));
        let heads = (0..10_000).filter(|_| rng.chance(0.25)).count();
        assert!(
            (2_200..2_800).contains(&heads),
            "{heads} of 10000 at p = 0.25"
        );
    }

    #[test]
    fn child_ids_depend_on_seed_and_index_only() {
        assert_eq!(child_id(7, 12), child_id(7, 12));
        assert_ne!(child_id(7, 12), child_id(7, 13));
        assert_ne!(child_id(7, 12), child_id(8, 12));
        assert_eq!(child_id(7, 12).get_version_num(), 4);
    }

    #[test]
    fn demo_upns_are_valid_and_unique() {
        for children in [1, 300, 5_000, 120_000] {
            let world = World::new(children);
            let mut seen = HashSet::new();
            for index in (0..children).step_by(usize::try_from(children / 3000 + 1).expect("small"))
            {
                let (_, upn) = world.pupil(index);
                let parsed = Upn::parse(upn.as_str()).expect("a demo UPN parses");
                assert_eq!(parsed.la_code(), LA_CODE);
                assert!(!parsed.is_temporary());
                assert!(seen.insert(upn), "UPN of child {index} repeats");
            }
        }
        // A primary's thousandth pupil moves on to the next issue year.
        let world = World::new(MAX_CHILDREN);
        let (_, last) = world.pupil(MAX_CHILDREN - 1);
        assert!(Upn::parse(last.as_str()).is_ok());
        assert_eq!(demo_upn("801", 2000, 5, 1).as_str(), "B801200005001");
    }

    #[test]
    fn a_plan_is_the_same_for_the_same_seed() {
        let world = World::new(500);
        let policy = LaPolicy::default();
        for index in [0, 3, 17, 250, 499] {
            assert_eq!(
                plan_child(9, index, &world, &policy),
                plan_child(9, index, &world, &policy)
            );
        }
        let differs = (16..60).any(|index| {
            plan_child(9, index, &world, &policy).steps
                != plan_child(10, index, &world, &policy).steps
        });
        assert!(differs, "another seed should tell another story");
    }

    /// Runs every plan through the pure rules, as the store would, and
    /// returns the tally.
    fn dry_run(children: u32, seed: u64, policies: PolicyBook) -> Tally {
        let world = World::new(children);
        let policy = policies.for_la(&world.la).clone();
        let calendar = Arc::new(SchoolCalendar::default());
        let policies = Arc::new(policies);
        let today = date(2026, 12, 4);
        let mut tally = Tally::default();
        for index in 0..children {
            let plan = plan_child(seed, index, &world, &policy);
            let mut case = ChildCase::default();
            let mut previous = year::register();
            for step in &plan.steps {
                assert!(step.on >= previous, "child {index}: steps go back in time");
                assert!(
                    step.on <= last_day(),
                    "child {index}: a step after the last day"
                );
                previous = step.on;
                let services = CaseServices::new(step.on, calendar.clone(), policies.clone());
                match (
                    case.decide(step.command.clone(), &services),
                    step.expect_refusal,
                ) {
                    (Ok(events), None) => {
                        *tally.commands.entry(step.command.name()).or_default() += 1;
                        tally.events += events.len() as u64;
                        for event in events {
                            case.apply(event);
                        }
                    }
                    (Err(error), Some(code)) if error.code() == code => {
                        *tally
                            .refused_as_expected
                            .entry(step.command.name())
                            .or_default() += 1;
                    }
                    (result, expected) => panic!(
                        "child {index}: {} on {} gave {result:?}, expected refusal {expected:?}",
                        step.command.name(),
                        step.on
                    ),
                }
            }
            tally.count_child(&case, today);
        }
        tally
    }

    #[test]
    fn every_planned_command_passes_the_rules_and_every_watchlist_reason_appears() {
        let tally = dry_run(400, 7, PolicyBook::default());
        for reason in WatchReason::ALL {
            assert!(
                tally.reasons.get(&reason).copied().unwrap_or(0) > 0,
                "no child has {reason:?}: {:?}",
                tally.reasons
            );
        }
        for name in ChildCommand::NAMES {
            if !matches!(*name, "ReplaceUpn" | "CorrectEntry") {
                assert!(tally.commands.contains_key(name), "no {name} was sent");
            }
        }
        assert!(tally.refused_as_expected.contains_key("RaiseCmeReferral"));
    }

    /// Rare stories (a quashed exclusion, a returned referral) need many
    /// children to turn up; every one of them must pass the rules too.
    #[test]
    fn thousands_of_random_years_pass_the_rules() {
        for seed in [1, 2, 3] {
            let tally = dry_run(3000, seed, PolicyBook::default());
            assert_eq!(tally.children, 3000);
        }
    }

    #[test]
    fn plans_meet_a_stricter_enquiry_policy() {
        let strict = LaPolicy {
            required_contact_attempts: 3,
            required_home_visits: 2,
            ..LaPolicy::default()
        };
        let policies = PolicyBook {
            default: strict,
            by_la: BTreeMap::new(),
        };
        let tally = dry_run(300, 3, policies);
        assert!(tally.commands.contains_key("AcceptCmeReferral"));
    }

    #[test]
    fn a_small_demo_still_shows_every_reason() {
        let tally = dry_run(16, 1, PolicyBook::default());
        assert_eq!(
            tally.reasons.len(),
            WatchReason::ALL.len(),
            "{:?}",
            tally.reasons
        );
    }
}
