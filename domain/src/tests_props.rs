//! Property tests on the pure rules, each property named in its doc comment,
//! and the tests that hold `docs/events.md` to the code: every event is in
//! the catalogue, and every JSON example there is an event exactly as stored.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use chrono::{Days, NaiveDate};
use cqrs_es::persist::{EventUpcaster, SemanticVersionEventUpcaster, SerializedEvent};
use cqrs_es::{Aggregate, DomainEvent, EventEnvelope};
use proptest::prelude::*;
use proptest::sample::select;
use proptest::strategy::{Union, ValueTree};
use proptest::test_runner::TestRunner;
use serde_json::{Value, json};

use crate::aggregate::ChildCase;
use crate::commands::{
    AppealOutcome, ChildCommand as C, ConcernCategory, ContactMethod, ContactOutcome, Corrections,
    HomeVisitOutcome, LocatedOutcome,
};
use crate::events::{ChildEvent, EVENT_VERSION};
use crate::services::{CaseServices, LaPolicy, PolicyBook, SchoolCalendar};
use crate::tracks::{TrackKind, TrackStep};
use crate::values::{
    CHECK_LETTERS, EXCLUSION_REASON_CODES, ExclusionReason, LaCode, Name, RemovalGround, Sen, Upn,
    Urn, check_letter,
};

/// The catalogue, read at compile time so a change to it rebuilds the tests.
const CATALOGUE: &str = include_str!("../../docs/events.md");

fn d(raw: &str) -> NaiveDate {
    raw.parse()
        .expect("test dates are written as valid YYYY-MM-DD")
}

// ---- strategies: commands from small pools, so sequences meet each other ---

/// The first of the fifty days commands mention: late August to mid October.
const FIRST_DAY: &str = "2026-08-24";
/// The day a run starts on, so that commands mention past days and a few
/// future ones (which some rules refuse and removals require).
const FIRST_TODAY: &str = "2026-09-07";

fn arb_date() -> impl Strategy<Value = NaiveDate> {
    (0u64..50).prop_map(|offset| {
        d(FIRST_DAY)
            .checked_add_days(Days::new(offset))
            .expect("fifty days from 2026 is a valid date")
    })
}

fn arb_urn() -> impl Strategy<Value = Urn> {
    select(vec!["100001", "100002", "100003"])
        .prop_map(|raw| Urn::parse(raw).expect("pool URNs are six digits"))
}

fn arb_la() -> impl Strategy<Value = LaCode> {
    select(vec!["330", "331"])
        .prop_map(|raw| LaCode::parse(raw).expect("pool LA codes are three digits"))
}

fn arb_upn() -> impl Strategy<Value = Upn> {
    select(vec!["B801200005001", "X00180001701A", "X001800017010"])
        .prop_map(|raw| Upn::parse(raw).expect("pool UPNs carry their check letter"))
}

fn arb_name() -> impl Strategy<Value = Name> {
    select(vec!["Amy", "Jones", "O'Neill"])
        .prop_map(|raw| Name::parse(raw).expect("pool names are plain"))
}

fn arb_text() -> impl Strategy<Value = String> {
    select(vec!["", "  ", "moved away", "family not answering"]).prop_map(str::to_owned)
}

fn arb_reasons() -> impl Strategy<Value = Vec<ExclusionReason>> {
    let codes: Vec<&str> = EXCLUSION_REASON_CODES
        .iter()
        .map(|(code, _)| *code)
        .collect();
    prop::collection::vec(select(codes), 0..5).prop_map(|codes| {
        codes
            .into_iter()
            .map(|code| ExclusionReason::parse(code).expect("codes come from the census list"))
            .collect()
    })
}

fn arb_sen() -> impl Strategy<Value = Option<Sen>> {
    prop::option::of(select(vec![Sen::N, Sen::K, Sen::E]))
}

fn arb_corrections() -> impl Strategy<Value = Corrections> {
    (
        prop::option::weighted(0.2, arb_name()),
        prop::option::weighted(0.2, arb_name()),
        prop::option::weighted(0.1, arb_date()),
        prop::option::weighted(0.1, 0u8..20),
        prop::option::weighted(0.1, select(vec![Sen::N, Sen::K, Sen::E])),
        prop::option::weighted(0.4, arb_date()),
        prop::option::weighted(0.2, arb_text()),
    )
        .prop_map(
            |(given_name, family_name, date_of_birth, year_group, sen, date, notes)| Corrections {
                given_name,
                family_name,
                date_of_birth,
                year_group,
                sen,
                date,
                notes,
            },
        )
}

const GROUNDS: [RemovalGround; 15] = [
    RemovalGround::A,
    RemovalGround::B,
    RemovalGround::C,
    RemovalGround::D,
    RemovalGround::E,
    RemovalGround::F,
    RemovalGround::G,
    RemovalGround::H,
    RemovalGround::I,
    RemovalGround::J,
    RemovalGround::K,
    RemovalGround::L,
    RemovalGround::M,
    RemovalGround::N,
    RemovalGround::O,
];

const STEPS: [TrackStep; 11] = [
    TrackStep::EnquiriesAndReferral,
    TrackStep::LaDecision,
    TrackStep::GoverningBoardReview,
    TrackStep::IndependentReviewRequested,
    TrackStep::IndependentReviewPanel,
    TrackStep::PanelUpheld,
    TrackStep::PanelRecommendedReconsideration,
    TrackStep::PanelQuashed,
    TrackStep::BoardReconsideration,
    TrackStep::Reinstated,
    TrackStep::TrackClosed,
];

fn arb_register() -> impl Strategy<Value = C> {
    (
        arb_upn(),
        arb_name(),
        arb_name(),
        prop_oneof![4 => Just(d("2015-06-01")), 1 => arb_date()],
        arb_la(),
        prop::option::of(arb_urn()),
        prop::option::of(prop_oneof![4 => 5u8..9, 1 => 0u8..16]),
        arb_sen(),
    )
        .prop_map(
            |(
                upn,
                given_name,
                family_name,
                date_of_birth,
                la_code,
                school_urn,
                year_group,
                sen,
            )| {
                C::RegisterChild {
                    upn,
                    given_name,
                    family_name,
                    date_of_birth,
                    la_code,
                    school_urn,
                    year_group,
                    sen,
                }
            },
        )
}

/// Any command, from small pools of schools, dates and texts.
fn arb_command() -> impl Strategy<Value = C> {
    // Weighted toward the commands that lead somewhere (arrivals, no-shows,
    // enquiries, referrals, track steps), so runs reach the later rules.
    Union::new_weighted(vec![
        (1, arb_register().boxed()),
        (
            4,
            arb_urn()
                .prop_map(|school_urn| C::AllocatePupil { school_urn })
                .boxed(),
        ),
        (2, Just(C::RecordNoAllocation {}).boxed()),
        (
            2,
            arb_urn()
                .prop_map(|school_urn| C::LodgeAppeal { school_urn })
                .boxed(),
        ),
        (
            2,
            (
                arb_urn(),
                select(vec![AppealOutcome::Upheld, AppealOutcome::Dismissed]),
            )
                .prop_map(|(school_urn, outcome)| C::DecideAppeal {
                    school_urn,
                    outcome,
                })
                .boxed(),
        ),
        (
            2,
            arb_urn()
                .prop_map(|school_urn| C::ConfirmDestination { school_urn })
                .boxed(),
        ),
        (
            2,
            (arb_urn(), arb_text())
                .prop_map(|(school_urn, reason)| C::ChangeDestination { school_urn, reason })
                .boxed(),
        ),
        (
            2,
            (
                arb_urn(),
                arb_sen(),
                any::<bool>(),
                any::<bool>(),
                arb_text(),
                arb_text(),
            )
                .prop_map(
                    |(school_urn, sen, semh, safeguarding, summary, strategies)| {
                        C::ShareTransitionInfo {
                            school_urn,
                            sen,
                            semh,
                            safeguarding,
                            summary,
                            strategies,
                        }
                    },
                )
                .boxed(),
        ),
        (
            1,
            (
                select(vec![
                    ConcernCategory::Anxiety,
                    ConcernCategory::Attendance,
                    ConcernCategory::Safeguarding,
                ]),
                arb_text(),
            )
                .prop_map(|(category, notes)| C::RecordTransitionConcern { category, notes })
                .boxed(),
        ),
        (
            4,
            (arb_urn(), arb_date())
                .prop_map(|(school_urn, date)| C::RecordArrival { school_urn, date })
                .boxed(),
        ),
        (
            5,
            (arb_urn(), arb_date())
                .prop_map(|(school_urn, date)| C::RecordNoShow { school_urn, date })
                .boxed(),
        ),
        (
            5,
            (
                select(vec![ContactMethod::Phone, ContactMethod::Letter]),
                select(vec![
                    ContactOutcome::NoAnswer,
                    ContactOutcome::SpokeToParent,
                ]),
                arb_text(),
                prop::option::of(arb_date()),
            )
                .prop_map(|(method, outcome, notes, made_on)| C::LogContactAttempt {
                    method,
                    outcome,
                    notes,
                    made_on,
                })
                .boxed(),
        ),
        (
            5,
            (
                arb_date(),
                select(vec![
                    HomeVisitOutcome::NoAnswer,
                    HomeVisitOutcome::MovedAway,
                ]),
                arb_text(),
            )
                .prop_map(|(visited_on, outcome, notes)| C::LogHomeVisit {
                    visited_on,
                    outcome,
                    notes,
                })
                .boxed(),
        ),
        (
            3,
            (arb_date(), arb_text())
                .prop_map(|(since, circumstances)| C::ReportChildMissing {
                    since,
                    circumstances,
                })
                .boxed(),
        ),
        (
            3,
            (
                arb_urn(),
                select(GROUNDS.to_vec()),
                arb_date(),
                prop::option::of(arb_urn()),
            )
                .prop_map(
                    |(school_urn, ground, date, destination_urn)| C::RemoveFromRoll {
                        school_urn,
                        ground,
                        date,
                        destination_urn,
                    },
                )
                .boxed(),
        ),
        (
            5,
            (arb_text(), prop::option::of(arb_text()))
                .prop_map(|(reason, override_reason)| C::RaiseCmeReferral {
                    reason,
                    override_reason,
                })
                .boxed(),
        ),
        (
            3,
            arb_text()
                .prop_map(|notes| C::AcceptCmeReferral { notes })
                .boxed(),
        ),
        (
            2,
            arb_text()
                .prop_map(|reason| C::ReturnCmeReferral { reason })
                .boxed(),
        ),
        (
            3,
            (
                select(vec![
                    LocatedOutcome::OnRoll,
                    LocatedOutcome::ElectiveHomeEducation,
                    LocatedOutcome::MovedToAnotherLa,
                ]),
                prop::option::of(arb_urn()),
                prop::option::of(arb_la()),
                arb_text(),
            )
                .prop_map(
                    |(outcome, school_urn, la_code, notes)| C::RecordChildLocated {
                        outcome,
                        school_urn,
                        la_code,
                        notes,
                    },
                )
                .boxed(),
        ),
        (
            3,
            (arb_date(), 0u32..30, arb_reasons())
                .prop_map(|(start, school_days, reasons)| C::RecordSuspension {
                    start,
                    school_days,
                    reasons,
                })
                .boxed(),
        ),
        (
            2,
            (arb_date(), arb_reasons())
                .prop_map(|(date, reasons)| C::RecordPermanentExclusion { date, reasons })
                .boxed(),
        ),
        (
            5,
            (
                select(vec![
                    TrackKind::Suspension,
                    TrackKind::PermanentExclusion,
                    TrackKind::Cme,
                ]),
                select(STEPS.to_vec()),
                arb_date(),
                arb_text(),
            )
                .prop_map(|(track, step, date, notes)| C::RecordTrackStep {
                    track,
                    step,
                    date,
                    notes,
                })
                .boxed(),
        ),
        (
            1,
            arb_upn()
                .prop_map(|new_upn| C::ReplaceUpn { new_upn })
                .boxed(),
        ),
        (
            3,
            (0u64..16, arb_text(), arb_corrections())
                .prop_map(|(sequence, reason, corrected)| C::CorrectEntry {
                    sequence,
                    reason,
                    corrected,
                })
                .boxed(),
        ),
    ])
}

/// Services for one run: a calendar with or without half term, and a policy
/// book that may or may not permit overrides or want more evidence for LA 330.
fn arb_services() -> impl Strategy<Value = (Arc<SchoolCalendar>, Arc<PolicyBook>)> {
    (any::<bool>(), any::<bool>(), 0u32..3, 0u32..3).prop_map(
        |(half_term, allow_override, contacts, visits)| {
            let mut calendar = SchoolCalendar::default();
            if half_term {
                calendar.add_holiday_range(d("2026-10-26"), d("2026-10-30"));
            }
            let policy = LaPolicy {
                required_contact_attempts: contacts,
                required_home_visits: visits,
                allow_override,
                ..LaPolicy::default()
            };
            let policies = PolicyBook {
                default: LaPolicy::default(),
                by_la: BTreeMap::from([(LaCode::parse("330").expect("valid"), policy)]),
            };
            (Arc::new(calendar), Arc::new(policies))
        },
    )
}

/// A run: a registration (usually), then commands, each on a day no
/// earlier than the last.
fn arb_run() -> impl Strategy<Value = Vec<(u64, C)>> {
    (
        prop::option::weighted(0.95, arb_register()),
        prop::collection::vec((0u64..2, arb_command()), 0..60),
    )
        .prop_map(|(register, rest)| {
            register
                .map(|command| (0, command))
                .into_iter()
                .chain(rest)
                .collect()
        })
}

/// Decides each command on the live state, applying accepted events one by
/// one as the cqrs-es event sink does. Returns the live state and every
/// accepted event in order.
fn run(
    steps: Vec<(u64, C)>,
    calendar: &Arc<SchoolCalendar>,
    policies: &Arc<PolicyBook>,
) -> (ChildCase, Vec<ChildEvent>) {
    let mut today = d(FIRST_TODAY);
    let mut live = ChildCase::default();
    let mut accepted = Vec::new();
    for (advance, command) in steps {
        today = today
            .checked_add_days(Days::new(advance))
            .expect("a run spans a few months");
        let services = CaseServices::new(today, Arc::clone(calendar), Arc::clone(policies));
        if let Ok(events) = live.decide(command, &services) {
            for event in events {
                live.apply(event.clone());
                accepted.push(event);
            }
        }
    }
    (live, accepted)
}

fn replay(events: &[ChildEvent]) -> ChildCase {
    events
        .iter()
        .cloned()
        .fold(ChildCase::default(), |mut case, event| {
            case.apply(event);
            case
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Property: replay is deterministic. For any sequence of commands,
    /// deciding never panics, the state built by applying each accepted
    /// event as it is decided equals `ChildCase::default()` folded over all
    /// accepted events, and the version counts the events.
    #[test]
    fn replay_is_deterministic(steps in arb_run(), (calendar, policies) in arb_services()) {
        let (live, accepted) = run(steps, &calendar, &policies);
        let replayed = replay(&accepted);
        prop_assert_eq!(&replayed, &live);
        prop_assert_eq!(live.version, u64::try_from(accepted.len()).expect("a run is short"));
        prop_assert_eq!(live.entries.len(), accepted.len());
    }

    /// Property: every event round-trips through serde. Each event produced
    /// serializes to JSON whose `type` field is its `event_type()`, at
    /// version `EVENT_VERSION`, and deserializes back equal. The state
    /// (an aggregate snapshot) round-trips too.
    #[test]
    fn every_event_round_trips_through_serde(steps in arb_run(), (calendar, policies) in arb_services()) {
        let (live, accepted) = run(steps, &calendar, &policies);
        for event in &accepted {
            let stored = serde_json::to_value(event).expect("events serialize");
            let event_type = event.event_type();
            prop_assert_eq!(stored.get("type").and_then(Value::as_str), Some(event_type.as_str()));
            prop_assert_eq!(event.event_version(), EVENT_VERSION);
            let read: ChildEvent = serde_json::from_value(stored).expect("stored events deserialize");
            prop_assert_eq!(&read, event);
        }
        let snapshot = serde_json::to_value(&live).expect("a case serializes");
        let restored: ChildCase = serde_json::from_value(snapshot).expect("a snapshot deserializes");
        prop_assert_eq!(restored, live);
    }
}

// ---- UPNs ------------------------------------------------------------------

/// A 12-character UPN body: 11 digits, then a digit or (temporary) a table letter.
fn arb_upn_body() -> impl Strategy<Value = Vec<u8>> {
    (
        prop::collection::vec(select(b"0123456789".to_vec()), 11),
        prop_oneof![
            select(b"0123456789".to_vec()),
            select(CHECK_LETTERS.to_vec()),
        ],
    )
        .prop_map(|(mut body, last)| {
            body.push(last);
            body
        })
}

/// The value a character of the body counts for: a digit its value, a
/// letter its index in the check-letter table.
fn value(byte: u8) -> usize {
    if byte.is_ascii_digit() {
        usize::from(byte - b'0')
    } else {
        CHECK_LETTERS
            .iter()
            .position(|letter| *letter == byte)
            .expect("only table letters are used")
    }
}

/// The characters allowed at each position of a UPN (0-based).
fn allowed_at(position: usize) -> Vec<u8> {
    match position {
        0 => CHECK_LETTERS.to_vec(),
        12 => [b"0123456789".as_slice(), CHECK_LETTERS.as_slice()].concat(),
        _ => b"0123456789".to_vec(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Property: the check letter catches every single-character change.
    /// A UPN built from any body with its computed check letter parses (and
    /// is temporary exactly when it ends in a letter); changing any one
    /// position to any other allowed character is rejected.
    ///
    /// Why no change can slip through: a body change at position p (weight
    /// w in 2..=13) shifts the weighted sum by w * delta, where delta is the
    /// change in the character's value, 0 < |delta| < 23. Since 23 is prime
    /// and neither factor is a multiple of it, the sum mod 23, and so the
    /// check letter, changes. Changing the check letter itself makes it
    /// disagree with the unchanged body.
    ///
    /// The one exception is by design of the DfE algorithm: in the last
    /// position a letter counts by its table index, so the letters A to K
    /// (A=0, B=1, ..., H=7, J=8, K=9) have the same value as the digits 0 to
    /// 9 and delta is 0. `X00180001701A` and `X001800017010` are both valid:
    /// the temporary and the permanent form share a check letter. The
    /// property asserts that such a swap parses, keeps the check letter and
    /// flips `is_temporary`.
    #[test]
    fn every_single_character_change_to_a_upn_is_caught(body in arb_upn_body()) {
        let upn: Vec<u8> = [vec![check_letter(&body)], body].concat();
        let raw = String::from_utf8(upn.clone()).expect("ASCII");
        let parsed = Upn::parse(&raw);
        prop_assert!(parsed.is_ok(), "{} should parse: {:?}", raw, parsed);
        let parsed = parsed.expect("checked above");
        prop_assert_eq!(parsed.is_temporary(), upn[12].is_ascii_alphabetic());
        for position in 0..13 {
            for replacement in allowed_at(position) {
                if replacement == upn[position] {
                    continue;
                }
                let mut changed = upn.clone();
                changed[position] = replacement;
                let changed = String::from_utf8(changed).expect("ASCII");
                let same_value = position == 12 && value(replacement) == value(upn[12]);
                match Upn::parse(&changed) {
                    Ok(other) => {
                        prop_assert!(same_value, "{} was changed to {} and still parsed", raw, changed);
                        prop_assert_eq!(other.is_temporary(), !parsed.is_temporary());
                    }
                    Err(_) => prop_assert!(!same_value, "{} should parse like {}", changed, raw),
                }
            }
            for junk in [b'I', b'O', b'S', b'a', b' ', b'/'] {
                let mut changed = upn.clone();
                changed[position] = junk;
                let changed = String::from_utf8(changed).expect("ASCII");
                prop_assert!(Upn::parse(&changed).is_err(), "{} has a character never allowed", changed);
            }
        }
    }

    /// Property: parsing never panics. `Upn::parse`, `LaCode::parse`,
    /// `Urn::parse` and `Name::parse` return `Ok` or `Err` for any string,
    /// including multi-byte characters at any position, and whatever they
    /// accept has the shape they promise.
    #[test]
    fn parsing_never_panics(
        raw in prop_oneof![
            any::<String>(),
            "[A-Z0-9]{11,14}",
            ".{13}",
            "[0-9]{2,7}",
            "\\PC{0,120}",
            "[ \t\n]{0,3}[A-Za-z' -]{0,10}[ \t\n]{0,3}",
        ]
    ) {
        if let Ok(upn) = Upn::parse(&raw) {
            prop_assert_eq!(upn.as_str().len(), 13);
            prop_assert_eq!(upn.la_code().len(), 3);
        }
        if let Ok(la) = LaCode::parse(&raw) {
            prop_assert_eq!(la.as_str().len(), 3);
        }
        if let Ok(urn) = Urn::parse(&raw) {
            prop_assert_eq!(urn.as_str().len(), 6);
        }
        if let Ok(name) = Name::parse(&raw) {
            prop_assert_eq!(name.as_str().trim(), name.as_str());
            prop_assert!(!name.as_str().is_empty());
        }
    }
}

#[test]
fn a_temporary_upn_ending_in_a_and_its_permanent_form_share_a_check_letter() {
    let temporary = Upn::parse("X00180001701A").expect("the DfE example");
    let permanent = Upn::parse("X001800017010").expect("same check letter, last value 0");
    assert!(temporary.is_temporary());
    assert!(!permanent.is_temporary());
}

// ---- the event catalogue ---------------------------------------------------

/// A school year of one child's case, decided command by command: every
/// event type appears at least once. It is the source of the examples in
/// `docs/events.md`.
fn a_school_year() -> Vec<ChildEvent> {
    let urn = |raw: &str| Urn::parse(raw).expect("six digits");
    let reasons = |codes: &[&str]| -> Vec<ExclusionReason> {
        codes
            .iter()
            .map(|code| ExclusionReason::parse(code).expect("census codes"))
            .collect()
    };
    let text = str::to_owned;
    let script: Vec<(&str, C)> = vec![
        (
            "2026-01-12",
            C::RegisterChild {
                upn: Upn::parse("X00180001701A").expect("valid"),
                given_name: Name::parse("Amy").expect("valid"),
                family_name: Name::parse("Jones").expect("valid"),
                date_of_birth: d("2015-06-01"),
                la_code: LaCode::parse("330").expect("valid"),
                school_urn: Some(urn("100001")),
                year_group: Some(6),
                sen: Some(Sen::K),
            },
        ),
        (
            "2026-02-02",
            C::ReplaceUpn {
                new_upn: Upn::parse("B801200005001").expect("valid"),
            },
        ),
        ("2026-03-02", C::RecordNoAllocation {}),
        (
            "2026-03-16",
            C::LodgeAppeal {
                school_urn: urn("100002"),
            },
        ),
        (
            "2026-05-20",
            C::DecideAppeal {
                school_urn: urn("100002"),
                outcome: AppealOutcome::Upheld,
            },
        ),
        (
            "2026-07-06",
            C::ConfirmDestination {
                school_urn: urn("100002"),
            },
        ),
        (
            "2026-07-08",
            C::ShareTransitionInfo {
                school_urn: urn("100002"),
                sen: Some(Sen::K),
                semh: true,
                safeguarding: false,
                summary: text("Anxious about the move; 91% attendance in Year 6."),
                strategies: text("Buddy on day one; quiet room at lunch."),
            },
        ),
        (
            "2026-07-10",
            C::RecordTransitionConcern {
                category: ConcernCategory::Anxiety,
                notes: text("Did not come to the second taster day."),
            },
        ),
        (
            "2026-07-15",
            C::ChangeDestination {
                school_urn: urn("100003"),
                reason: text("Family moved to the north of the LA."),
            },
        ),
        (
            "2026-09-02",
            C::RecordNoShow {
                school_urn: urn("100003"),
                date: d("2026-09-02"),
            },
        ),
        (
            "2026-09-03",
            C::LogContactAttempt {
                method: ContactMethod::Phone,
                outcome: ContactOutcome::NoAnswer,
                notes: text("Mother's mobile and the emergency contact."),
                made_on: None,
            },
        ),
        (
            "2026-09-04",
            C::LogHomeVisit {
                visited_on: d("2026-09-04"),
                outcome: HomeVisitOutcome::PropertyEmpty,
                notes: text("Curtains drawn, post piling up."),
            },
        ),
        (
            "2026-09-07",
            C::ReportChildMissing {
                since: d("2026-09-02"),
                circumstances: text("Family not seen at the address since August."),
            },
        ),
        (
            "2026-09-07",
            C::RaiseCmeReferral {
                reason: text("Not seen since the end of Year 6; the house looks empty."),
                override_reason: None,
            },
        ),
        (
            "2026-09-09",
            C::ReturnCmeReferral {
                reason: text("Please try the emergency contacts held by the primary."),
            },
        ),
        (
            "2026-09-10",
            C::RaiseCmeReferral {
                reason: text("Emergency contacts tried; no answer."),
                override_reason: None,
            },
        ),
        (
            "2026-09-11",
            C::AcceptCmeReferral {
                notes: text("Assigned to the CME officer for the north area."),
            },
        ),
        (
            "2026-09-21",
            C::RecordArrival {
                school_urn: urn("100003"),
                date: d("2026-09-21"),
            },
        ),
        (
            "2026-09-21",
            C::RecordChildLocated {
                outcome: LocatedOutcome::OnRoll,
                school_urn: Some(urn("100003")),
                la_code: None,
                notes: text("Started at the academy on 21 September."),
            },
        ),
        (
            "2026-10-05",
            C::RecordSuspension {
                start: d("2026-10-05"),
                school_days: 5,
                reasons: reasons(&["VA", "DB"]),
            },
        ),
        (
            "2026-11-09",
            C::RecordSuspension {
                start: d("2026-11-09"),
                school_days: 12,
                reasons: reasons(&["DB"]),
            },
        ),
        (
            "2026-11-26",
            C::RecordTrackStep {
                track: TrackKind::Suspension,
                step: TrackStep::GoverningBoardReview,
                date: d("2026-11-26"),
                notes: text("The board upheld the suspension."),
            },
        ),
        (
            "2027-01-11",
            C::RecordPermanentExclusion {
                date: d("2027-01-11"),
                reasons: reasons(&["PA", "OW"]),
            },
        ),
        (
            "2027-01-14",
            C::CorrectEntry {
                sequence: 12,
                reason: text("The call was made on day one, not the day after."),
                corrected: Corrections {
                    date: Some(d("2026-09-02")),
                    ..Corrections::default()
                },
            },
        ),
        (
            "2027-02-01",
            C::RecordTrackStep {
                track: TrackKind::PermanentExclusion,
                step: TrackStep::GoverningBoardReview,
                date: d("2027-02-01"),
                notes: text("The board declined to reinstate."),
            },
        ),
        (
            "2027-02-22",
            C::RemoveFromRoll {
                school_urn: urn("100003"),
                ground: RemovalGround::O,
                date: d("2027-02-22"),
                destination_urn: None,
            },
        ),
    ];
    let mut case = ChildCase::default();
    let mut events = Vec::new();
    for (today, command) in script {
        let name = command.name();
        let decided = case
            .decide(command, &CaseServices::on(d(today)))
            .unwrap_or_else(|refusal| panic!("{name} on {today} should be accepted: {refusal}"));
        for event in decided {
            case.apply(event.clone());
            events.push(event);
        }
    }
    events
}

#[test]
fn the_school_year_example_produces_every_event_type() {
    let produced: BTreeSet<&str> = a_school_year().iter().map(ChildEvent::name).collect();
    let all: BTreeSet<&str> = ChildEvent::NAMES.iter().copied().collect();
    assert_eq!(produced, all);
}

/// The JSON blocks of the catalogue fenced as ```` ```json ````; the stored
/// envelope example is fenced as `jsonc` and is not an event.
fn json_examples(markdown: &str) -> Vec<&str> {
    markdown
        .split("```json\n")
        .skip(1)
        .map(|block| {
            block
                .split("\n```")
                .next()
                .expect("split always yields a first part")
        })
        .collect()
}

#[test]
fn the_event_catalogue_mentions_every_event() {
    for name in ChildEvent::NAMES {
        assert!(
            CATALOGUE.contains(&format!("### {name}\n")),
            "docs/events.md has no entry for {name}"
        );
    }
}

#[test]
fn every_json_example_in_the_catalogue_is_an_event_exactly_as_stored() {
    let mut documented = BTreeSet::new();
    for block in json_examples(CATALOGUE) {
        let written: Value = serde_json::from_str(block)
            .unwrap_or_else(|error| panic!("not JSON ({error}):\n{block}"));
        let event: ChildEvent = serde_json::from_value(written.clone())
            .unwrap_or_else(|error| panic!("not a ChildEvent ({error}):\n{block}"));
        let stored = serde_json::to_value(&event).expect("events serialize");
        assert_eq!(written, stored, "the example differs from what is stored");
        documented.insert(event.name());
    }
    let all: BTreeSet<&str> = ChildEvent::NAMES.iter().copied().collect();
    assert_eq!(documented, all, "one JSON example per event");
}

#[test]
fn the_catalogue_examples_are_events_the_rules_produce() {
    // Every example is, field for field, an event of the school year above.
    let year: Vec<Value> = a_school_year()
        .iter()
        .map(|event| serde_json::to_value(event).expect("events serialize"))
        .collect();
    for block in json_examples(CATALOGUE) {
        let written: Value = serde_json::from_str(block).expect("checked by the test above");
        assert!(
            year.contains(&written),
            "not produced by the school year:\n{block}"
        );
    }
}

// ---- versioning ------------------------------------------------------------

#[test]
fn a_payload_stored_before_an_additive_optional_field_still_reads() {
    // `PupilArrived.track` was added after 1.0 as an optional field: rows
    // written without it read as `None`, so the version did not change.
    let stored = json!({
        "type": "PupilArrived",
        "school_urn": "100003",
        "date": "2026-09-21",
        "resolved_no_show": false
    });
    let event: ChildEvent = serde_json::from_value(stored).expect("an older 1.0 payload reads");
    assert_eq!(
        event,
        ChildEvent::PupilArrived {
            school_urn: Urn::parse("100003").expect("valid"),
            date: d("2026-09-21"),
            resolved_no_show: false,
            track: None,
        }
    );
}

#[test]
fn an_upcaster_rewrites_an_older_payload_before_it_is_deserialized() {
    // The pattern every version bump follows, shown on a hypothetical 0.9
    // `PupilArrived` that had no `resolved_no_show`: the upcaster is
    // registered on the event store and runs on every row older than its
    // version as the row is loaded; the row in the database is not changed.
    let upcaster = SemanticVersionEventUpcaster::new(
        "PupilArrived",
        EVENT_VERSION,
        Box::new(|mut payload: Value| {
            if let Some(fields) = payload.as_object_mut() {
                fields
                    .entry("resolved_no_show")
                    .or_insert(Value::Bool(false));
            }
            payload
        }),
    );
    let row = SerializedEvent::new(
        "6f1c2a4e-0d7b-4c1e-9a51-3b2f8e7d9c10".to_owned(),
        19,
        ChildCase::TYPE.to_owned(),
        "PupilArrived".to_owned(),
        "0.9".to_owned(),
        json!({"type": "PupilArrived", "school_urn": "100003", "date": "2026-09-21"}),
        json!({}),
    );
    assert!(serde_json::from_value::<ChildEvent>(row.payload.clone()).is_err());
    assert!(upcaster.can_upcast("PupilArrived", "0.9"));
    assert!(
        !upcaster.can_upcast("PupilArrived", EVENT_VERSION),
        "current rows pass through"
    );
    assert!(!upcaster.can_upcast("NoShowOnDayOne", "0.9"));
    let upcast = upcaster.upcast(row);
    assert_eq!(upcast.event_version, "1.0.0");
    let envelope = EventEnvelope::<ChildCase>::try_from(upcast).expect("the upcast row reads");
    assert_eq!(envelope.sequence, 19);
    assert_eq!(
        envelope.payload,
        ChildEvent::PupilArrived {
            school_urn: Urn::parse("100003").expect("valid"),
            date: d("2026-09-21"),
            resolved_no_show: false,
            track: None,
        }
    );
}

/// The properties above are only as strong as the runs they see: this
/// checks, with proptest's deterministic runner, that 256 runs of the
/// command strategy produce every event type, so replay and round-trip
/// cover every `apply` arm.
#[test]
fn the_command_strategy_reaches_every_event_type() {
    let mut runner = TestRunner::deterministic();
    let mut produced = BTreeSet::new();
    for _ in 0..256 {
        let steps = arb_run()
            .new_tree(&mut runner)
            .expect("the run strategy never rejects")
            .current();
        let (calendar, policies) = arb_services()
            .new_tree(&mut runner)
            .expect("the services strategy never rejects")
            .current();
        let (_, events) = run(steps, &calendar, &policies);
        produced.extend(events.iter().map(ChildEvent::name));
    }
    let all: BTreeSet<&str> = ChildEvent::NAMES.iter().copied().collect();
    let missing: Vec<_> = all.difference(&produced).collect();
    assert!(missing.is_empty(), "no run produced {missing:?}");
}
