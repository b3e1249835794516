//! Given/when/then tests of every command of a child case, accepted and
//! refused, in the shape of the cqrs-es demo: `TestFramework` with the
//! services of one day, the events already stored, the command, and the
//! events (or the refusal) expected. Where a rule is about the state the
//! events leave behind (the watchlist reasons, the identity), the test folds
//! the events into a `ChildCase` and reads it.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::NaiveDate;
use cqrs_es::Aggregate;
use cqrs_es::test::TestFramework;

use crate::aggregate::{ChildCase, Referral, WatchReason};
use crate::commands::{
    AppealOutcome, ChildCommand as C, ConcernCategory, ContactMethod, ContactOutcome, Corrections,
    HomeVisitOutcome, LocatedOutcome,
};
use crate::error::CaseError;
use crate::events::ChildEvent as E;
use crate::services::{CaseServices, LaPolicy, PolicyBook, SchoolCalendar};
use crate::tracks::{DueStep, TrackKind, TrackStep, TrackUpdate};
use crate::values::{ExclusionReason, LaCode, Name, RemovalGround, Sen, Upn, Urn};

const LA: &str = "330";
const PERMANENT_UPN: &str = "B801200005001";
const TEMPORARY_UPN: &str = "X00180001701A";
/// The Year 6 school the child is on roll at when registered.
const PRIMARY: &str = "100001";
/// The secondary school allocated on offer day.
const SECONDARY: &str = "100002";
/// Another secondary school.
const OTHER: &str = "100003";

fn d(raw: &str) -> NaiveDate {
    raw.parse()
        .expect("test dates are written as valid YYYY-MM-DD")
}

fn urn(raw: &str) -> Urn {
    Urn::parse(raw).expect("test URNs are six digits")
}

fn upn(raw: &str) -> Upn {
    Upn::parse(raw).expect("test UPNs carry their check letter")
}

fn name(raw: &str) -> Name {
    Name::parse(raw).expect("test names are plain words")
}

fn reasons(codes: &[&str]) -> Vec<ExclusionReason> {
    codes
        .iter()
        .map(|code| ExclusionReason::parse(code).expect("test reason codes are census codes"))
        .collect()
}

fn text(raw: &str) -> String {
    raw.to_owned()
}

/// The test framework with default policy and a weekdays-only calendar, on `today`.
fn on(today: &str) -> TestFramework<ChildCase> {
    TestFramework::with(CaseServices::on(d(today)))
}

/// The test framework with a given calendar and policy book.
fn with(today: &str, calendar: SchoolCalendar, policies: PolicyBook) -> TestFramework<ChildCase> {
    TestFramework::with(CaseServices::new(
        d(today),
        Arc::new(calendar),
        Arc::new(policies),
    ))
}

/// A calendar with the 2026 autumn half term (26 to 30 October) as holidays.
fn half_term_calendar() -> SchoolCalendar {
    let mut calendar = SchoolCalendar::default();
    calendar.add_holiday_range(d("2026-10-26"), d("2026-10-30"));
    calendar
}

/// The state a list of events leaves, as the framework and the store rebuild it.
fn case(events: &[E]) -> ChildCase {
    events
        .iter()
        .cloned()
        .fold(ChildCase::default(), |mut case, event| {
            case.apply(event);
            case
        })
}

/// Decides `command` on the state `history` leaves, asserts the events, and
/// appends them to `history`: for tests that walk a track step by step.
fn step(history: &mut Vec<E>, today: &str, command: C, expected: Vec<E>) {
    on(today)
        .given(history.clone())
        .when(command)
        .then_expect_events(expected.clone());
    history.extend(expected);
}

// ---- events as stored, for the `given` of each test ------------------------

fn registered_with(upn_raw: &str) -> E {
    E::ChildRegistered {
        upn: upn(upn_raw),
        given_name: name("Amy"),
        family_name: name("Jones"),
        date_of_birth: d("2015-06-01"),
        la_code: LaCode::parse(LA).expect("the test LA code is three digits"),
        school_urn: Some(urn(PRIMARY)),
        year_group: Some(6),
        sen: Some(Sen::K),
        on: d("2026-01-12"),
    }
}

/// Sequence 1 of every registered history.
fn registered() -> E {
    registered_with(PERMANENT_UPN)
}

fn allocated(school: &str) -> E {
    E::PupilAllocated {
        school_urn: urn(school),
        previous_urn: None,
        via_appeal: false,
        on: d("2026-03-02"),
    }
}

fn arrived(school: &str, date: &str) -> E {
    E::PupilArrived {
        school_urn: urn(school),
        date: d(date),
        resolved_no_show: false,
        track: None,
    }
}

fn cme_opened(due_on: &str) -> TrackUpdate {
    TrackUpdate::open(
        TrackKind::Cme,
        vec![DueStep {
            step: TrackStep::EnquiriesAndReferral,
            due_on: d(due_on),
        }],
    )
}

/// A day-one no-show on 2 September 2026: the referral is due ten school
/// days later, on 16 September.
fn no_show_on_day_one() -> E {
    E::NoShowOnDayOne {
        school_urn: urn(SECONDARY),
        date: d("2026-09-02"),
        track: Some(cme_opened("2026-09-16")),
    }
}

fn contact_on(date: &str) -> E {
    E::ContactAttemptLogged {
        method: ContactMethod::Phone,
        outcome: ContactOutcome::NoAnswer,
        notes: String::new(),
        made_on: d(date),
    }
}

fn visit_on(date: &str) -> E {
    E::HomeVisitLogged {
        visited_on: d(date),
        outcome: HomeVisitOutcome::NoAnswer,
        notes: String::new(),
    }
}

/// Registered, allocated to `SECONDARY`, and absent on day one (sequences 1 to 3).
fn missing_on_day_one() -> Vec<E> {
    vec![registered(), allocated(SECONDARY), no_show_on_day_one()]
}

/// Missing on day one, with a phone call on 3 September and a home visit on
/// 4 September (sequences 4 and 5): the default policy's enquiries.
fn missing_with_enquiries() -> Vec<E> {
    let mut events = missing_on_day_one();
    events.extend([contact_on("2026-09-03"), visit_on("2026-09-04")]);
    events
}

/// The referral raised on Monday 7 September; the LA decides within five school days.
fn referral_raised() -> E {
    E::CmeReferralRaised {
        reason: text("not seen since the end of Year 6"),
        override_reason: None,
        contact_attempts: 1,
        home_visits: 1,
        on: d("2026-09-07"),
        track: Some(TrackUpdate {
            track: TrackKind::Cme,
            opened: false,
            completed: vec![TrackStep::EnquiriesAndReferral],
            due: vec![DueStep {
                step: TrackStep::LaDecision,
                due_on: d("2026-09-14"),
            }],
            closed: false,
        }),
    }
}

fn raise_referral() -> C {
    C::RaiseCmeReferral {
        reason: text("not seen since the end of Year 6"),
        override_reason: None,
    }
}

/// Registered and arrived at `SECONDARY` on day one: on roll there.
fn on_roll_at_secondary() -> Vec<E> {
    vec![
        registered(),
        allocated(SECONDARY),
        arrived(SECONDARY, "2026-09-02"),
    ]
}

fn excluded_on(date: &str, board_due: &str) -> E {
    E::PermanentExclusionRecorded {
        date: d(date),
        reasons: reasons(&["PA"]),
        track: TrackUpdate::open(
            TrackKind::PermanentExclusion,
            vec![DueStep {
                step: TrackStep::GoverningBoardReview,
                due_on: d(board_due),
            }],
        ),
    }
}

fn track_step(track: TrackKind, step: TrackStep, date: &str) -> C {
    C::RecordTrackStep {
        track,
        step,
        date: d(date),
        notes: String::new(),
    }
}

fn step_recorded(track: TrackKind, step: TrackStep, date: &str, update: TrackUpdate) -> E {
    E::TrackStepRecorded {
        track,
        step,
        date: d(date),
        notes: String::new(),
        update,
    }
}

fn update(
    track: TrackKind,
    completed: Vec<TrackStep>,
    due: Vec<(TrackStep, &str)>,
    closed: bool,
) -> TrackUpdate {
    TrackUpdate {
        track,
        opened: false,
        completed,
        due: due
            .into_iter()
            .map(|(step, due_on)| DueStep {
                step,
                due_on: d(due_on),
            })
            .collect(),
        closed,
    }
}

fn policy_book_for(la: &str, policy: LaPolicy) -> PolicyBook {
    PolicyBook {
        default: LaPolicy::default(),
        by_la: BTreeMap::from([(
            LaCode::parse(la).expect("test LA codes are three digits"),
            policy,
        )]),
    }
}

// ---- RegisterChild ---------------------------------------------------------

#[test]
fn registering_a_child_records_who_they_are_and_where_they_are_on_roll() {
    on("2026-01-12")
        .given_no_previous_events()
        .when(C::RegisterChild {
            upn: upn(PERMANENT_UPN),
            given_name: name("Amy"),
            family_name: name("Jones"),
            date_of_birth: d("2015-06-01"),
            la_code: LaCode::parse(LA).expect("valid"),
            school_urn: Some(urn(PRIMARY)),
            year_group: Some(6),
            sen: Some(Sen::K),
        })
        .then_expect_events(vec![registered()]);
    let case = case(&[registered()]);
    assert!(case.is_registered());
    assert_eq!(case.school_urn, Some(urn(PRIMARY)));
    assert!(case.watch_reasons().is_empty());
}

#[test]
fn registering_a_child_twice_is_refused() {
    on("2026-01-13")
        .given(vec![registered()])
        .when(C::RegisterChild {
            upn: upn(PERMANENT_UPN),
            given_name: name("Amy"),
            family_name: name("Jones"),
            date_of_birth: d("2015-06-01"),
            la_code: LaCode::parse(LA).expect("valid"),
            school_urn: None,
            year_group: None,
            sen: None,
        })
        .then_expect_error(CaseError::AlreadyRegistered);
}

#[test]
fn a_date_of_birth_in_the_future_is_refused() {
    on("2026-01-12")
        .given_no_previous_events()
        .when(C::RegisterChild {
            upn: upn(PERMANENT_UPN),
            given_name: name("Amy"),
            family_name: name("Jones"),
            date_of_birth: d("2026-01-13"),
            la_code: LaCode::parse(LA).expect("valid"),
            school_urn: None,
            year_group: None,
            sen: None,
        })
        .then_expect_error(CaseError::DateInFuture {
            what: "date of birth",
            date: d("2026-01-13"),
        });
}

#[test]
fn a_year_group_over_fourteen_is_refused() {
    let refused = on("2026-01-12")
        .given_no_previous_events()
        .when(C::RegisterChild {
            upn: upn(PERMANENT_UPN),
            given_name: name("Amy"),
            family_name: name("Jones"),
            date_of_birth: d("2015-06-01"),
            la_code: LaCode::parse(LA).expect("valid"),
            school_urn: None,
            year_group: Some(15),
            sen: None,
        })
        .inspect_result()
        .expect_err("year 15 does not exist");
    assert_eq!(refused.code(), "invalid_value");
}

/// One command of every kind but `RegisterChild`, each valid on its own.
fn one_of_every_other_command() -> Vec<C> {
    vec![
        C::AllocatePupil {
            school_urn: urn(SECONDARY),
        },
        C::RecordNoAllocation {},
        C::LodgeAppeal {
            school_urn: urn(SECONDARY),
        },
        C::DecideAppeal {
            school_urn: urn(SECONDARY),
            outcome: AppealOutcome::Upheld,
        },
        C::ConfirmDestination {
            school_urn: urn(SECONDARY),
        },
        C::ChangeDestination {
            school_urn: urn(OTHER),
            reason: text("moved house"),
        },
        C::ShareTransitionInfo {
            school_urn: urn(SECONDARY),
            sen: None,
            semh: false,
            safeguarding: false,
            summary: text("settled"),
            strategies: String::new(),
        },
        C::RecordTransitionConcern {
            category: ConcernCategory::Anxiety,
            notes: text("worried about the bus"),
        },
        C::RecordArrival {
            school_urn: urn(SECONDARY),
            date: d("2026-09-02"),
        },
        C::RecordNoShow {
            school_urn: urn(SECONDARY),
            date: d("2026-09-02"),
        },
        C::LogContactAttempt {
            method: ContactMethod::Phone,
            outcome: ContactOutcome::NoAnswer,
            notes: String::new(),
            made_on: None,
        },
        C::LogHomeVisit {
            visited_on: d("2026-09-02"),
            outcome: HomeVisitOutcome::NoAnswer,
            notes: String::new(),
        },
        C::ReportChildMissing {
            since: d("2026-09-02"),
            circumstances: text("not seen"),
        },
        C::RemoveFromRoll {
            school_urn: urn(SECONDARY),
            ground: RemovalGround::F,
            date: d("2026-09-10"),
            destination_urn: None,
        },
        raise_referral(),
        C::AcceptCmeReferral {
            notes: String::new(),
        },
        C::ReturnCmeReferral {
            reason: text("no home visit"),
        },
        C::RecordChildLocated {
            outcome: LocatedOutcome::MovedAbroad,
            school_urn: None,
            la_code: None,
            notes: String::new(),
        },
        C::RecordSuspension {
            start: d("2026-09-07"),
            school_days: 2,
            reasons: reasons(&["DB"]),
        },
        C::RecordPermanentExclusion {
            date: d("2026-09-07"),
            reasons: reasons(&["PA"]),
        },
        track_step(
            TrackKind::PermanentExclusion,
            TrackStep::GoverningBoardReview,
            "2026-09-07",
        ),
        C::ReplaceUpn {
            new_upn: upn(PERMANENT_UPN),
        },
        C::CorrectEntry {
            sequence: 1,
            reason: text("typo"),
            corrected: Corrections {
                given_name: Some(name("Amie")),
                ..Corrections::default()
            },
        },
    ]
}

#[test]
fn every_other_command_is_refused_before_the_child_is_registered() {
    let commands = one_of_every_other_command();
    let kinds: std::collections::BTreeSet<_> = commands.iter().map(C::name).collect();
    assert_eq!(
        kinds.len(),
        C::NAMES.len() - 1,
        "one command of each other kind"
    );
    assert!(!kinds.contains("RegisterChild"));
    for command in commands {
        let name = command.name();
        let result = on("2026-09-10")
            .given_no_previous_events()
            .when(command)
            .inspect_result();
        assert_eq!(result, Err(CaseError::NotRegistered), "{name}");
    }
}

// ---- AllocatePupil ---------------------------------------------------------

#[test]
fn allocating_a_place_sets_the_destination() {
    on("2026-03-02")
        .given(vec![registered()])
        .when(C::AllocatePupil {
            school_urn: urn(SECONDARY),
        })
        .then_expect_events(vec![allocated(SECONDARY)]);
    let case = case(&[registered(), allocated(SECONDARY)]);
    assert_eq!(case.expected_school(), Some(&urn(SECONDARY)));
    assert!(case.in_transition);
    assert!(case.watch_reasons().is_empty());
}

#[test]
fn allocating_the_allocated_school_again_is_refused() {
    on("2026-03-03")
        .given(vec![registered(), allocated(SECONDARY)])
        .when(C::AllocatePupil {
            school_urn: urn(SECONDARY),
        })
        .then_expect_error(CaseError::AlreadyAllocated(urn(SECONDARY)));
}

#[test]
fn allocating_another_school_over_a_destination_is_refused() {
    on("2026-03-03")
        .given(vec![registered(), allocated(SECONDARY)])
        .when(C::AllocatePupil {
            school_urn: urn(OTHER),
        })
        .then_expect_error(CaseError::DestinationAlreadySet);
}

// ---- RecordNoAllocation ----------------------------------------------------

#[test]
fn a_child_with_no_place_is_on_the_watchlist_for_no_destination() {
    let no_place = E::NoPlaceAllocated {
        on: d("2026-03-02"),
    };
    on("2026-03-02")
        .given(vec![registered()])
        .when(C::RecordNoAllocation {})
        .then_expect_events(vec![no_place.clone()]);
    assert_eq!(
        case(&[registered(), no_place]).watch_reasons(),
        vec![WatchReason::NoDestination]
    );
}

#[test]
fn no_allocation_is_refused_once_a_destination_is_set() {
    on("2026-03-03")
        .given(vec![registered(), allocated(SECONDARY)])
        .when(C::RecordNoAllocation {})
        .then_expect_error(CaseError::DestinationAlreadySet);
}

// ---- LodgeAppeal and DecideAppeal ------------------------------------------

fn appeal_lodged(school: &str) -> E {
    E::AppealLodged {
        school_urn: urn(school),
        on: d("2026-03-16"),
    }
}

#[test]
fn lodging_an_appeal_marks_it_pending() {
    on("2026-03-16")
        .given(vec![registered(), allocated(SECONDARY)])
        .when(C::LodgeAppeal {
            school_urn: urn(OTHER),
        })
        .then_expect_events(vec![appeal_lodged(OTHER)]);
    let case = case(&[registered(), allocated(SECONDARY), appeal_lodged(OTHER)]);
    assert_eq!(case.watch_reasons(), vec![WatchReason::AppealPending]);
}

#[test]
fn an_appeal_for_the_allocated_school_is_refused() {
    on("2026-03-16")
        .given(vec![registered(), allocated(SECONDARY)])
        .when(C::LodgeAppeal {
            school_urn: urn(SECONDARY),
        })
        .then_expect_error(CaseError::AlreadyAllocated(urn(SECONDARY)));
}

#[test]
fn a_second_appeal_for_the_same_school_is_refused_while_the_first_is_pending() {
    on("2026-03-17")
        .given(vec![registered(), appeal_lodged(OTHER)])
        .when(C::LodgeAppeal {
            school_urn: urn(OTHER),
        })
        .then_expect_error(CaseError::AppealAlreadyPending(urn(OTHER)));
}

#[test]
fn an_upheld_appeal_is_decided_and_allocates_the_school_in_place_of_the_offer() {
    on("2026-05-20")
        .given(vec![
            registered(),
            allocated(SECONDARY),
            appeal_lodged(OTHER),
        ])
        .when(C::DecideAppeal {
            school_urn: urn(OTHER),
            outcome: AppealOutcome::Upheld,
        })
        .then_expect_events(vec![
            E::AppealDecided {
                school_urn: urn(OTHER),
                outcome: AppealOutcome::Upheld,
                on: d("2026-05-20"),
            },
            E::PupilAllocated {
                school_urn: urn(OTHER),
                previous_urn: Some(urn(SECONDARY)),
                via_appeal: true,
                on: d("2026-05-20"),
            },
        ]);
}

#[test]
fn an_upheld_appeal_for_a_child_with_no_place_clears_both_watch_reasons() {
    let history = vec![
        registered(),
        E::NoPlaceAllocated {
            on: d("2026-03-02"),
        },
        appeal_lodged(OTHER),
    ];
    assert_eq!(
        case(&history).watch_reasons(),
        vec![WatchReason::NoDestination, WatchReason::AppealPending]
    );
    let decided = vec![
        E::AppealDecided {
            school_urn: urn(OTHER),
            outcome: AppealOutcome::Upheld,
            on: d("2026-05-20"),
        },
        E::PupilAllocated {
            school_urn: urn(OTHER),
            previous_urn: None,
            via_appeal: true,
            on: d("2026-05-20"),
        },
    ];
    on("2026-05-20")
        .given(history.clone())
        .when(C::DecideAppeal {
            school_urn: urn(OTHER),
            outcome: AppealOutcome::Upheld,
        })
        .then_expect_events(decided.clone());
    let after = case(&[history, decided].concat());
    assert!(after.watch_reasons().is_empty());
    assert_eq!(after.expected_school(), Some(&urn(OTHER)));
}

#[test]
fn a_dismissed_appeal_only_records_the_decision_and_the_child_stays_without_a_place() {
    let history = vec![
        registered(),
        E::NoPlaceAllocated {
            on: d("2026-03-02"),
        },
        appeal_lodged(OTHER),
    ];
    let decided = E::AppealDecided {
        school_urn: urn(OTHER),
        outcome: AppealOutcome::Dismissed,
        on: d("2026-05-20"),
    };
    on("2026-05-20")
        .given(history.clone())
        .when(C::DecideAppeal {
            school_urn: urn(OTHER),
            outcome: AppealOutcome::Dismissed,
        })
        .then_expect_events(vec![decided.clone()]);
    assert_eq!(
        case(&[history, vec![decided]].concat()).watch_reasons(),
        vec![WatchReason::NoDestination]
    );
}

#[test]
fn deciding_an_appeal_that_is_not_pending_is_refused() {
    on("2026-05-20")
        .given(vec![registered(), allocated(SECONDARY)])
        .when(C::DecideAppeal {
            school_urn: urn(OTHER),
            outcome: AppealOutcome::Dismissed,
        })
        .then_expect_error(CaseError::NoAppealPending(urn(OTHER)));
}

#[test]
fn deciding_an_appeal_twice_is_refused() {
    on("2026-05-21")
        .given(vec![
            registered(),
            appeal_lodged(OTHER),
            E::AppealDecided {
                school_urn: urn(OTHER),
                outcome: AppealOutcome::Dismissed,
                on: d("2026-05-20"),
            },
        ])
        .when(C::DecideAppeal {
            school_urn: urn(OTHER),
            outcome: AppealOutcome::Upheld,
        })
        .then_expect_error(CaseError::NoAppealPending(urn(OTHER)));
}

// ---- ConfirmDestination and ChangeDestination ------------------------------

#[test]
fn the_primary_confirms_the_destination_in_july() {
    let confirmed = E::DestinationConfirmed {
        school_urn: urn(SECONDARY),
        on: d("2026-07-06"),
    };
    on("2026-07-06")
        .given(vec![registered(), allocated(SECONDARY)])
        .when(C::ConfirmDestination {
            school_urn: urn(SECONDARY),
        })
        .then_expect_events(vec![confirmed.clone()]);
    assert!(case(&[registered(), allocated(SECONDARY), confirmed]).destination_confirmed);
}

#[test]
fn confirming_a_destination_for_a_child_without_one_is_refused() {
    on("2026-07-06")
        .given(vec![registered()])
        .when(C::ConfirmDestination {
            school_urn: urn(SECONDARY),
        })
        .then_expect_error(CaseError::NoDestination);
}

#[test]
fn confirming_a_school_other_than_the_destination_is_refused() {
    on("2026-07-06")
        .given(vec![registered(), allocated(SECONDARY)])
        .when(C::ConfirmDestination {
            school_urn: urn(OTHER),
        })
        .then_expect_error(CaseError::DestinationMismatch {
            current: urn(SECONDARY),
            given: urn(OTHER),
        });
}

#[test]
fn changing_the_destination_records_both_schools_and_unconfirms_it() {
    let history = vec![
        registered(),
        allocated(SECONDARY),
        E::DestinationConfirmed {
            school_urn: urn(SECONDARY),
            on: d("2026-07-06"),
        },
    ];
    let changed = E::DestinationChanged {
        from_urn: urn(SECONDARY),
        to_urn: urn(OTHER),
        reason: text("family moved within the LA"),
        on: d("2026-07-15"),
    };
    on("2026-07-15")
        .given(history.clone())
        .when(C::ChangeDestination {
            school_urn: urn(OTHER),
            reason: text("family moved within the LA"),
        })
        .then_expect_events(vec![changed.clone()]);
    let after = case(&[history, vec![changed]].concat());
    assert_eq!(after.expected_school(), Some(&urn(OTHER)));
    assert!(!after.destination_confirmed);
}

#[test]
fn changing_the_destination_to_the_same_school_is_refused() {
    on("2026-07-15")
        .given(vec![registered(), allocated(SECONDARY)])
        .when(C::ChangeDestination {
            school_urn: urn(SECONDARY),
            reason: text("re-entered"),
        })
        .then_expect_error(CaseError::SameDestination(urn(SECONDARY)));
}

#[test]
fn changing_the_destination_of_a_child_without_one_is_refused() {
    on("2026-07-15")
        .given(vec![registered()])
        .when(C::ChangeDestination {
            school_urn: urn(OTHER),
            reason: text("moved"),
        })
        .then_expect_error(CaseError::NoDestination);
}

#[test]
fn a_destination_change_needs_a_reason() {
    on("2026-07-15")
        .given(vec![registered(), allocated(SECONDARY)])
        .when(C::ChangeDestination {
            school_urn: urn(OTHER),
            reason: text("   "),
        })
        .then_expect_error(CaseError::MissingText("reason"));
}

// ---- ShareTransitionInfo and RecordTransitionConcern -----------------------

#[test]
fn transition_info_shared_with_the_destination_names_the_school_that_shared_it() {
    on("2026-07-08")
        .given(vec![registered(), allocated(SECONDARY)])
        .when(C::ShareTransitionInfo {
            school_urn: urn(SECONDARY),
            sen: Some(Sen::K),
            semh: true,
            safeguarding: false,
            summary: text("anxious about the move"),
            strategies: text("buddy on day one"),
        })
        .then_expect_events(vec![E::TransitionInfoShared {
            school_urn: urn(SECONDARY),
            from_urn: Some(urn(PRIMARY)),
            sen: Some(Sen::K),
            semh: true,
            safeguarding: false,
            summary: text("anxious about the move"),
            strategies: text("buddy on day one"),
            on: d("2026-07-08"),
        }]);
}

#[test]
fn transition_info_for_a_school_that_does_not_expect_the_child_is_refused() {
    on("2026-07-08")
        .given(vec![registered(), allocated(SECONDARY)])
        .when(C::ShareTransitionInfo {
            school_urn: urn(OTHER),
            sen: None,
            semh: false,
            safeguarding: false,
            summary: text("settled"),
            strategies: String::new(),
        })
        .then_expect_error(CaseError::NotExpectedAtSchool(urn(OTHER)));
}

#[test]
fn transition_info_needs_a_summary() {
    on("2026-07-08")
        .given(vec![registered(), allocated(SECONDARY)])
        .when(C::ShareTransitionInfo {
            school_urn: urn(SECONDARY),
            sen: None,
            semh: false,
            safeguarding: false,
            summary: String::new(),
            strategies: String::new(),
        })
        .then_expect_error(CaseError::MissingText("summary"));
}

#[test]
fn a_transition_concern_is_recorded_with_its_notes() {
    on("2026-07-10")
        .given(vec![registered()])
        .when(C::RecordTransitionConcern {
            category: ConcernCategory::Anxiety,
            notes: text("cried in the taster day"),
        })
        .then_expect_events(vec![E::TransitionConcernRecorded {
            category: ConcernCategory::Anxiety,
            notes: text("cried in the taster day"),
            on: d("2026-07-10"),
        }]);
}

#[test]
fn a_transition_concern_needs_notes() {
    on("2026-07-10")
        .given(vec![registered()])
        .when(C::RecordTransitionConcern {
            category: ConcernCategory::Other,
            notes: text(""),
        })
        .then_expect_error(CaseError::MissingText("notes"));
}

// ---- RecordArrival ---------------------------------------------------------

#[test]
fn an_arrival_at_the_destination_puts_the_child_on_roll_there() {
    on("2026-09-02")
        .given(vec![registered(), allocated(SECONDARY)])
        .when(C::RecordArrival {
            school_urn: urn(SECONDARY),
            date: d("2026-09-02"),
        })
        .then_expect_events(vec![arrived(SECONDARY, "2026-09-02")]);
    let after = case(&on_roll_at_secondary());
    assert_eq!(after.school_urn, Some(urn(SECONDARY)));
    assert!(!after.in_transition);
    assert!(after.watch_reasons().is_empty());
}

#[test]
fn an_arrival_at_a_school_that_does_not_expect_the_child_is_refused() {
    on("2026-09-02")
        .given(vec![registered(), allocated(SECONDARY)])
        .when(C::RecordArrival {
            school_urn: urn(OTHER),
            date: d("2026-09-02"),
        })
        .then_expect_error(CaseError::NotExpectedAtSchool(urn(OTHER)));
}

#[test]
fn a_second_arrival_at_the_same_school_is_refused() {
    on("2026-09-03")
        .given(on_roll_at_secondary())
        .when(C::RecordArrival {
            school_urn: urn(SECONDARY),
            date: d("2026-09-03"),
        })
        .then_expect_error(CaseError::AlreadyArrived(urn(SECONDARY)));
}

#[test]
fn an_arrival_dated_in_the_future_is_refused() {
    on("2026-09-01")
        .given(vec![registered(), allocated(SECONDARY)])
        .when(C::RecordArrival {
            school_urn: urn(SECONDARY),
            date: d("2026-09-02"),
        })
        .then_expect_error(CaseError::DateInFuture {
            what: "arrival date",
            date: d("2026-09-02"),
        });
}

#[test]
fn a_later_arrival_resolves_a_day_one_no_show_and_ends_the_missing_episode() {
    let late_arrival = E::PupilArrived {
        school_urn: urn(SECONDARY),
        date: d("2026-09-04"),
        resolved_no_show: true,
        track: Some(update(
            TrackKind::Cme,
            vec![TrackStep::EnquiriesAndReferral],
            vec![],
            true,
        )),
    };
    on("2026-09-04")
        .given(missing_on_day_one())
        .when(C::RecordArrival {
            school_urn: urn(SECONDARY),
            date: d("2026-09-04"),
        })
        .then_expect_events(vec![late_arrival.clone()]);
    let before = case(&missing_on_day_one());
    assert_eq!(before.watch_reasons(), vec![WatchReason::DayOneNoShow]);
    let after = case(&[missing_on_day_one(), vec![late_arrival]].concat());
    assert!(after.watch_reasons().is_empty());
    assert_eq!(after.missing_since, None);
    assert!(
        after.open_steps().is_empty(),
        "no referral is owed for a child in school"
    );
}

#[test]
fn an_arrival_after_a_missing_report_resolves_the_no_show_but_leaves_the_case_to_the_la() {
    let mut history = missing_on_day_one();
    history.push(E::ChildReportedMissing {
        since: d("2026-09-02"),
        circumstances: text("family not answering"),
        school_urn: Some(urn(SECONDARY)),
        track: None,
    });
    let late_arrival = E::PupilArrived {
        school_urn: urn(SECONDARY),
        date: d("2026-09-07"),
        resolved_no_show: true,
        track: None,
    };
    on("2026-09-07")
        .given(history.clone())
        .when(C::RecordArrival {
            school_urn: urn(SECONDARY),
            date: d("2026-09-07"),
        })
        .then_expect_events(vec![late_arrival.clone()]);
    let after = case(&[history, vec![late_arrival]].concat());
    assert_eq!(after.watch_reasons(), vec![WatchReason::ReportedMissing]);
    assert_eq!(after.missing_since, Some(d("2026-09-02")));
}

// ---- RecordNoShow ----------------------------------------------------------

#[test]
fn a_day_one_no_show_opens_the_cme_track_with_the_referral_due_in_ten_school_days() {
    on("2026-09-02")
        .given(vec![registered(), allocated(SECONDARY)])
        .when(C::RecordNoShow {
            school_urn: urn(SECONDARY),
            date: d("2026-09-02"),
        })
        .then_expect_events(vec![no_show_on_day_one()]);
    let after = case(&missing_on_day_one());
    assert_eq!(after.watch_reasons(), vec![WatchReason::DayOneNoShow]);
    assert_eq!(after.missing_since, Some(d("2026-09-02")));
    assert_eq!(
        after.open_steps(),
        vec![(
            TrackKind::Cme,
            DueStep {
                step: TrackStep::EnquiriesAndReferral,
                due_on: d("2026-09-16"),
            }
        )]
    );
}

#[test]
fn a_no_show_is_refused_at_a_school_that_does_not_expect_the_child() {
    on("2026-09-02")
        .given(vec![registered(), allocated(SECONDARY)])
        .when(C::RecordNoShow {
            school_urn: urn(OTHER),
            date: d("2026-09-02"),
        })
        .then_expect_error(CaseError::NotExpectedAtSchool(urn(OTHER)));
}

#[test]
fn a_no_show_is_recorded_once_per_start() {
    on("2026-09-03")
        .given(missing_on_day_one())
        .when(C::RecordNoShow {
            school_urn: urn(SECONDARY),
            date: d("2026-09-03"),
        })
        .then_expect_error(CaseError::NoShowAlreadyRecorded(urn(SECONDARY)));
}

#[test]
fn no_show_is_refused_after_arrival() {
    on("2026-09-03")
        .given(on_roll_at_secondary())
        .when(C::RecordNoShow {
            school_urn: urn(SECONDARY),
            date: d("2026-09-03"),
        })
        .then_expect_error(CaseError::AlreadyArrived(urn(SECONDARY)));
}

#[test]
fn a_no_show_dated_in_the_future_is_refused() {
    on("2026-09-01")
        .given(vec![registered(), allocated(SECONDARY)])
        .when(C::RecordNoShow {
            school_urn: urn(SECONDARY),
            date: d("2026-09-02"),
        })
        .then_expect_error(CaseError::DateInFuture {
            what: "no-show date",
            date: d("2026-09-02"),
        });
}

#[test]
fn a_no_show_at_a_new_destination_is_a_new_start() {
    // Arrived at the secondary, then moved to another school in October.
    let mut history = on_roll_at_secondary();
    history.push(E::DestinationChanged {
        from_urn: urn(SECONDARY),
        to_urn: urn(OTHER),
        reason: text("managed move"),
        on: d("2026-10-01"),
    });
    on("2026-10-05")
        .given(history)
        .when(C::RecordNoShow {
            school_urn: urn(OTHER),
            date: d("2026-10-05"),
        })
        .then_expect_events(vec![E::NoShowOnDayOne {
            school_urn: urn(OTHER),
            date: d("2026-10-05"),
            track: Some(cme_opened("2026-10-19")),
        }]);
}

#[test]
fn a_no_show_while_the_cme_track_is_open_does_not_open_it_again() {
    let history = vec![
        registered(),
        allocated(SECONDARY),
        E::ChildReportedMissing {
            since: d("2026-08-28"),
            circumstances: text("family left the address"),
            school_urn: Some(urn(SECONDARY)),
            track: Some(cme_opened("2026-09-11")),
        },
    ];
    on("2026-09-02")
        .given(history)
        .when(C::RecordNoShow {
            school_urn: urn(SECONDARY),
            date: d("2026-09-02"),
        })
        .then_expect_events(vec![E::NoShowOnDayOne {
            school_urn: urn(SECONDARY),
            date: d("2026-09-02"),
            track: None,
        }]);
}

// ---- LogContactAttempt and LogHomeVisit ------------------------------------

#[test]
fn a_contact_attempt_without_a_date_is_dated_today() {
    on("2026-09-03")
        .given(missing_on_day_one())
        .when(C::LogContactAttempt {
            method: ContactMethod::Phone,
            outcome: ContactOutcome::NoAnswer,
            notes: String::new(),
            made_on: None,
        })
        .then_expect_events(vec![contact_on("2026-09-03")]);
}

#[test]
fn a_contact_attempt_dated_in_the_future_is_refused() {
    on("2026-09-03")
        .given(missing_on_day_one())
        .when(C::LogContactAttempt {
            method: ContactMethod::Email,
            outcome: ContactOutcome::MessageLeft,
            notes: String::new(),
            made_on: Some(d("2026-09-04")),
        })
        .then_expect_error(CaseError::DateInFuture {
            what: "contact date",
            date: d("2026-09-04"),
        });
}

#[test]
fn a_home_visit_is_logged_with_its_date() {
    on("2026-09-05")
        .given(missing_on_day_one())
        .when(C::LogHomeVisit {
            visited_on: d("2026-09-04"),
            outcome: HomeVisitOutcome::NoAnswer,
            notes: String::new(),
        })
        .then_expect_events(vec![visit_on("2026-09-04")]);
}

#[test]
fn a_home_visit_dated_in_the_future_is_refused() {
    on("2026-09-03")
        .given(missing_on_day_one())
        .when(C::LogHomeVisit {
            visited_on: d("2026-09-04"),
            outcome: HomeVisitOutcome::NoAnswer,
            notes: String::new(),
        })
        .then_expect_error(CaseError::DateInFuture {
            what: "visit date",
            date: d("2026-09-04"),
        });
}

// ---- ReportChildMissing ----------------------------------------------------

#[test]
fn reporting_a_child_missing_names_the_school_and_opens_the_cme_track() {
    let reported = E::ChildReportedMissing {
        since: d("2026-10-05"),
        circumstances: text("not seen since Friday"),
        school_urn: Some(urn(SECONDARY)),
        track: Some(cme_opened("2026-10-19")),
    };
    on("2026-10-07")
        .given(on_roll_at_secondary())
        .when(C::ReportChildMissing {
            since: d("2026-10-05"),
            circumstances: text("not seen since Friday"),
        })
        .then_expect_events(vec![reported.clone()]);
    let after = case(&[on_roll_at_secondary(), vec![reported]].concat());
    assert_eq!(after.watch_reasons(), vec![WatchReason::ReportedMissing]);
    assert_eq!(after.missing_since, Some(d("2026-10-05")));
}

#[test]
fn a_missing_report_after_a_no_show_names_the_school_that_expected_the_child() {
    // On roll at the primary until July, but on the secondary's admission
    // register from the day the child was due there.
    on("2026-09-07")
        .given(missing_on_day_one())
        .when(C::ReportChildMissing {
            since: d("2026-09-02"),
            circumstances: text("family not answering"),
        })
        .then_expect_events(vec![E::ChildReportedMissing {
            since: d("2026-09-02"),
            circumstances: text("family not answering"),
            school_urn: Some(urn(SECONDARY)),
            track: None,
        }]);
}

#[test]
fn reporting_a_child_missing_twice_is_refused() {
    let mut history = on_roll_at_secondary();
    history.push(E::ChildReportedMissing {
        since: d("2026-10-05"),
        circumstances: text("not seen since Friday"),
        school_urn: Some(urn(SECONDARY)),
        track: Some(cme_opened("2026-10-19")),
    });
    on("2026-10-08")
        .given(history)
        .when(C::ReportChildMissing {
            since: d("2026-10-05"),
            circumstances: text("still not seen"),
        })
        .then_expect_error(CaseError::AlreadyMissing);
}

#[test]
fn a_missing_report_needs_the_circumstances() {
    on("2026-10-07")
        .given(on_roll_at_secondary())
        .when(C::ReportChildMissing {
            since: d("2026-10-05"),
            circumstances: text(" "),
        })
        .then_expect_error(CaseError::MissingText("circumstances"));
}

#[test]
fn a_missing_report_dated_in_the_future_is_refused() {
    on("2026-10-07")
        .given(on_roll_at_secondary())
        .when(C::ReportChildMissing {
            since: d("2026-10-08"),
            circumstances: text("expected to go missing"),
        })
        .then_expect_error(CaseError::DateInFuture {
            what: "missing-since date",
            date: d("2026-10-08"),
        });
}

// ---- RaiseCmeReferral ------------------------------------------------------

#[test]
fn a_referral_with_the_enquiries_done_completes_the_school_step_and_awaits_the_la() {
    on("2026-09-07")
        .given(missing_with_enquiries())
        .when(raise_referral())
        .then_expect_events(vec![referral_raised()]);
    let after = case(&[missing_with_enquiries(), vec![referral_raised()]].concat());
    assert_eq!(after.referral, Referral::Raised);
    assert!(
        after
            .watch_reasons()
            .contains(&WatchReason::CmeReferralOpen)
    );
    assert_eq!(
        after.open_steps(),
        vec![(
            TrackKind::Cme,
            DueStep {
                step: TrackStep::LaDecision,
                due_on: d("2026-09-14"),
            }
        )]
    );
}

#[test]
fn a_referral_without_enquiries_is_refused_naming_what_is_missing() {
    let refused = on("2026-09-07")
        .given(missing_on_day_one())
        .when(raise_referral())
        .inspect_result()
        .expect_err("the default policy wants a contact attempt and a home visit");
    assert_eq!(refused.code(), "enquiries_incomplete");
    let message = refused.to_string();
    assert!(message.contains("contact attempt"), "{message}");
    assert!(message.contains("home visit"), "{message}");
    assert_eq!(
        refused,
        CaseError::EnquiriesIncomplete {
            missing: text("1 contact attempt and 1 home visit logged on or after 2026-09-02"),
        }
    );
}

#[test]
fn a_referral_with_only_a_phone_call_is_refused_for_the_missing_home_visit() {
    let mut history = missing_on_day_one();
    history.push(contact_on("2026-09-03"));
    on("2026-09-07")
        .given(history)
        .when(raise_referral())
        .then_expect_error(CaseError::EnquiriesIncomplete {
            missing: text("1 home visit logged on or after 2026-09-02"),
        });
}

#[test]
fn an_la_that_wants_two_contact_attempts_says_how_many_are_missing() {
    let policies = policy_book_for(
        LA,
        LaPolicy {
            required_contact_attempts: 2,
            ..LaPolicy::default()
        },
    );
    with("2026-09-07", SchoolCalendar::default(), policies)
        .given(missing_with_enquiries())
        .when(raise_referral())
        .then_expect_error(CaseError::EnquiriesIncomplete {
            missing: text("1 contact attempt logged on or after 2026-09-02"),
        });
}

#[test]
fn evidence_logged_before_the_child_went_missing_does_not_count() {
    // The call and the visit were in August, before the day-one no-show.
    let history = vec![
        registered(),
        allocated(SECONDARY),
        contact_on("2026-08-27"),
        visit_on("2026-08-28"),
        no_show_on_day_one(),
    ];
    on("2026-09-07")
        .given(history)
        .when(raise_referral())
        .then_expect_error(CaseError::EnquiriesIncomplete {
            missing: text("1 contact attempt and 1 home visit logged on or after 2026-09-02"),
        });
}

#[test]
fn an_override_is_refused_under_the_default_policy() {
    let refused = on("2026-09-07")
        .given(missing_on_day_one())
        .when(C::RaiseCmeReferral {
            reason: text("family fled domestic abuse"),
            override_reason: Some(text("a home visit would put the parent at risk")),
        })
        .inspect_result()
        .expect_err("the default policy does not allow an override");
    assert_eq!(refused, CaseError::OverrideNotPermitted);
    assert_eq!(refused.code(), "override_not_permitted");
}

#[test]
fn an_override_is_accepted_where_the_la_policy_permits_it() {
    let policies = policy_book_for(
        LA,
        LaPolicy {
            allow_override: true,
            ..LaPolicy::default()
        },
    );
    with("2026-09-07", SchoolCalendar::default(), policies)
        .given(missing_on_day_one())
        .when(C::RaiseCmeReferral {
            reason: text("family fled domestic abuse"),
            override_reason: Some(text("a home visit would put the parent at risk")),
        })
        .then_expect_events(vec![E::CmeReferralRaised {
            reason: text("family fled domestic abuse"),
            override_reason: Some(text("a home visit would put the parent at risk")),
            contact_attempts: 0,
            home_visits: 0,
            on: d("2026-09-07"),
            track: Some(update(
                TrackKind::Cme,
                vec![TrackStep::EnquiriesAndReferral],
                vec![(TrackStep::LaDecision, "2026-09-14")],
                false,
            )),
        }]);
}

#[test]
fn an_override_permitted_by_another_la_does_not_apply_to_this_child() {
    let policies = policy_book_for(
        "331",
        LaPolicy {
            allow_override: true,
            ..LaPolicy::default()
        },
    );
    with("2026-09-07", SchoolCalendar::default(), policies)
        .given(missing_on_day_one())
        .when(C::RaiseCmeReferral {
            reason: text("family fled domestic abuse"),
            override_reason: Some(text("a home visit would put the parent at risk")),
        })
        .then_expect_error(CaseError::OverrideNotPermitted);
}

#[test]
fn a_blank_override_reason_is_refused() {
    let policies = policy_book_for(
        LA,
        LaPolicy {
            allow_override: true,
            ..LaPolicy::default()
        },
    );
    with("2026-09-07", SchoolCalendar::default(), policies)
        .given(missing_on_day_one())
        .when(C::RaiseCmeReferral {
            reason: text("not seen"),
            override_reason: Some(text("")),
        })
        .then_expect_error(CaseError::MissingText("override_reason"));
}

#[test]
fn a_second_referral_is_refused_while_one_is_open() {
    on("2026-09-08")
        .given([missing_with_enquiries(), vec![referral_raised()]].concat())
        .when(raise_referral())
        .then_expect_error(CaseError::ReferralAlreadyOpen);
}

#[test]
fn a_referral_for_a_child_who_is_not_missing_is_refused() {
    on("2026-09-08")
        .given(on_roll_at_secondary())
        .when(raise_referral())
        .then_expect_error(CaseError::NotMissing);
}

// ---- AcceptCmeReferral and ReturnCmeReferral -------------------------------

fn referral_accepted() -> E {
    E::CmeReferralAccepted {
        notes: text("CME officer assigned"),
        on: d("2026-09-09"),
        track: Some(update(
            TrackKind::Cme,
            vec![TrackStep::LaDecision],
            vec![],
            false,
        )),
    }
}

#[test]
fn accepting_a_referral_completes_the_la_decision_and_keeps_the_case_open() {
    let history = [missing_with_enquiries(), vec![referral_raised()]].concat();
    on("2026-09-09")
        .given(history.clone())
        .when(C::AcceptCmeReferral {
            notes: text("CME officer assigned"),
        })
        .then_expect_events(vec![referral_accepted()]);
    let after = case(&[history, vec![referral_accepted()]].concat());
    assert_eq!(after.referral, Referral::Accepted);
    assert!(
        after
            .watch_reasons()
            .contains(&WatchReason::CmeReferralOpen)
    );
    assert!(after.open_steps().is_empty());
    assert!(after.tracks.is_open(TrackKind::Cme));
}

#[test]
fn accepting_without_a_raised_referral_is_refused() {
    on("2026-09-09")
        .given(missing_with_enquiries())
        .when(C::AcceptCmeReferral {
            notes: String::new(),
        })
        .then_expect_error(CaseError::NoReferralAwaitingDecision);
}

#[test]
fn accepting_a_referral_twice_is_refused() {
    on("2026-09-10")
        .given(
            [
                missing_with_enquiries(),
                vec![referral_raised(), referral_accepted()],
            ]
            .concat(),
        )
        .when(C::AcceptCmeReferral {
            notes: String::new(),
        })
        .then_expect_error(CaseError::NoReferralAwaitingDecision);
}

#[test]
fn returning_a_referral_gives_the_school_a_new_referral_deadline() {
    let history = [missing_with_enquiries(), vec![referral_raised()]].concat();
    let returned = E::CmeReferralReturned {
        reason: text("the home visit found the property empty: check with neighbours"),
        on: d("2026-09-09"),
        track: Some(update(
            TrackKind::Cme,
            vec![TrackStep::LaDecision],
            vec![(TrackStep::EnquiriesAndReferral, "2026-09-23")],
            false,
        )),
    };
    on("2026-09-09")
        .given(history.clone())
        .when(C::ReturnCmeReferral {
            reason: text("the home visit found the property empty: check with neighbours"),
        })
        .then_expect_events(vec![returned.clone()]);
    let after = case(&[history, vec![returned]].concat());
    assert_eq!(after.referral, Referral::None);
    assert!(
        !after
            .watch_reasons()
            .contains(&WatchReason::CmeReferralOpen)
    );
    assert_eq!(after.open_steps().len(), 1);
}

#[test]
fn returning_a_referral_needs_a_reason() {
    on("2026-09-09")
        .given([missing_with_enquiries(), vec![referral_raised()]].concat())
        .when(C::ReturnCmeReferral {
            reason: String::new(),
        })
        .then_expect_error(CaseError::MissingText("reason"));
}

#[test]
fn returning_without_a_raised_referral_is_refused() {
    on("2026-09-09")
        .given(missing_with_enquiries())
        .when(C::ReturnCmeReferral {
            reason: text("no evidence"),
        })
        .then_expect_error(CaseError::NoReferralAwaitingDecision);
}

// ---- RecordChildLocated ----------------------------------------------------

#[test]
fn locating_a_child_closes_the_cme_track_and_clears_every_missing_reason() {
    let mut history = missing_with_enquiries();
    history.push(E::ChildReportedMissing {
        since: d("2026-09-02"),
        circumstances: text("family not answering"),
        school_urn: Some(urn(SECONDARY)),
        track: None,
    });
    history.extend([referral_raised(), referral_accepted()]);
    let before = case(&history);
    assert_eq!(
        before.watch_reasons(),
        vec![
            WatchReason::DayOneNoShow,
            WatchReason::ReportedMissing,
            WatchReason::CmeReferralOpen
        ]
    );
    let located = E::ChildLocated {
        outcome: LocatedOutcome::OnRoll,
        school_urn: Some(urn(OTHER)),
        la_code: None,
        notes: text("on roll at the academy nearer the new address"),
        on: d("2026-09-21"),
        track: Some(update(TrackKind::Cme, vec![], vec![], true)),
    };
    on("2026-09-21")
        .given(history.clone())
        .when(C::RecordChildLocated {
            outcome: LocatedOutcome::OnRoll,
            school_urn: Some(urn(OTHER)),
            la_code: None,
            notes: text("on roll at the academy nearer the new address"),
        })
        .then_expect_events(vec![located.clone()]);
    let after = case(&[history, vec![located]].concat());
    assert!(after.watch_reasons().is_empty());
    assert!(after.tracks.open.is_empty());
    assert_eq!(after.missing_since, None);
    assert_eq!(after.school_urn, Some(urn(OTHER)));
}

#[test]
fn locating_a_child_completes_the_steps_still_due() {
    on("2026-09-10")
        .given(missing_on_day_one())
        .when(C::RecordChildLocated {
            outcome: LocatedOutcome::MovedToAnotherLa,
            school_urn: None,
            la_code: Some(LaCode::parse("331").expect("valid")),
            notes: String::new(),
        })
        .then_expect_events(vec![E::ChildLocated {
            outcome: LocatedOutcome::MovedToAnotherLa,
            school_urn: None,
            la_code: Some(LaCode::parse("331").expect("valid")),
            notes: String::new(),
            on: d("2026-09-10"),
            track: Some(update(
                TrackKind::Cme,
                vec![TrackStep::EnquiriesAndReferral],
                vec![],
                true,
            )),
        }]);
}

#[test]
fn locating_a_child_who_is_not_missing_is_refused() {
    on("2026-09-10")
        .given(on_roll_at_secondary())
        .when(C::RecordChildLocated {
            outcome: LocatedOutcome::MovedAbroad,
            school_urn: None,
            la_code: None,
            notes: String::new(),
        })
        .then_expect_error(CaseError::NotMissing);
}

#[test]
fn a_child_located_on_roll_must_name_the_school() {
    on("2026-09-10")
        .given(missing_on_day_one())
        .when(C::RecordChildLocated {
            outcome: LocatedOutcome::OnRoll,
            school_urn: None,
            la_code: None,
            notes: String::new(),
        })
        .then_expect_error(CaseError::LocatedSchoolRequired);
}

// ---- RemoveFromRoll --------------------------------------------------------

fn remove(ground: RemovalGround, date: &str, destination: Option<&str>) -> C {
    C::RemoveFromRoll {
        school_urn: urn(SECONDARY),
        ground,
        date: d(date),
        destination_urn: destination.map(urn),
    }
}

#[test]
fn removal_on_ground_a_names_the_school_the_child_is_now_registered_at() {
    let removed = E::RemovedFromRoll {
        school_urn: urn(SECONDARY),
        ground: RemovalGround::A,
        date: d("2026-11-02"),
        destination_urn: Some(urn(OTHER)),
        without_destination: false,
        track: None,
    };
    on("2026-11-02")
        .given(on_roll_at_secondary())
        .when(remove(RemovalGround::A, "2026-11-02", Some(OTHER)))
        .then_expect_events(vec![removed.clone()]);
    let after = case(&[on_roll_at_secondary(), vec![removed]].concat());
    assert_eq!(after.school_urn, None);
    assert_eq!(after.expected_school(), Some(&urn(OTHER)));
    assert!(after.watch_reasons().is_empty());
}

#[test]
fn removal_on_ground_a_without_the_new_school_is_refused() {
    on("2026-11-02")
        .given(on_roll_at_secondary())
        .when(remove(RemovalGround::A, "2026-11-02", None))
        .then_expect_error(CaseError::DestinationRequired);
}

#[test]
fn a_retrospective_removal_is_refused() {
    on("2026-11-02")
        .given(on_roll_at_secondary())
        .when(remove(RemovalGround::A, "2026-10-30", Some(OTHER)))
        .then_expect_error(CaseError::RetrospectiveRemoval(d("2026-11-02")));
}

#[test]
fn removal_from_a_school_the_child_is_not_on_roll_at_is_refused() {
    on("2026-11-02")
        .given(vec![registered(), allocated(SECONDARY)])
        .when(remove(RemovalGround::A, "2026-11-02", Some(OTHER)))
        .then_expect_error(CaseError::NotOnRoll(urn(SECONDARY)));
}

#[test]
fn removal_on_grounds_h_and_i_needs_reasonable_enquiries_first() {
    for ground in [RemovalGround::H, RemovalGround::I] {
        let refused = on("2026-11-02")
            .given(on_roll_at_secondary())
            .when(remove(ground, "2026-11-02", None))
            .inspect_result()
            .expect_err("no enquiries were made");
        assert_eq!(refused.code(), "enquiries_incomplete", "{ground:?}");
        let message = refused.to_string();
        assert!(message.contains("contact attempt"), "{message}");
        assert!(message.contains("home visit"), "{message}");
    }
}

#[test]
fn removal_on_ground_i_after_enquiries_leaves_the_child_missing_education() {
    let mut history = on_roll_at_secondary();
    history.extend([
        E::ChildReportedMissing {
            since: d("2026-10-05"),
            circumstances: text("not seen since Friday"),
            school_urn: Some(urn(SECONDARY)),
            track: Some(cme_opened("2026-10-19")),
        },
        contact_on("2026-10-06"),
        visit_on("2026-10-07"),
    ]);
    let removed = E::RemovedFromRoll {
        school_urn: urn(SECONDARY),
        ground: RemovalGround::I,
        date: d("2026-11-10"),
        destination_urn: None,
        without_destination: true,
        track: None,
    };
    on("2026-11-10")
        .given(history.clone())
        .when(remove(RemovalGround::I, "2026-11-10", None))
        .then_expect_events(vec![removed.clone()]);
    let after = case(&[history, vec![removed]].concat());
    assert_eq!(
        after.watch_reasons(),
        vec![
            WatchReason::ReportedMissing,
            WatchReason::RemovedWithoutDestination
        ]
    );
}

#[test]
fn a_school_can_remove_a_child_who_never_arrived_once_enquiries_are_done() {
    on("2026-10-01")
        .given(missing_with_enquiries())
        .when(remove(RemovalGround::I, "2026-10-01", None))
        .then_expect_events(vec![E::RemovedFromRoll {
            school_urn: urn(SECONDARY),
            ground: RemovalGround::I,
            date: d("2026-10-01"),
            destination_urn: None,
            without_destination: true,
            track: None,
        }]);
}

#[test]
fn removal_without_a_destination_marks_the_child_missing_education_and_opens_the_cme_track() {
    let removed = E::RemovedFromRoll {
        school_urn: urn(SECONDARY),
        ground: RemovalGround::G,
        date: d("2026-11-02"),
        destination_urn: None,
        without_destination: true,
        track: Some(cme_opened("2026-11-16")),
    };
    on("2026-11-02")
        .given(on_roll_at_secondary())
        .when(remove(RemovalGround::G, "2026-11-02", None))
        .then_expect_events(vec![removed.clone()]);
    let after = case(&[on_roll_at_secondary(), vec![removed]].concat());
    assert_eq!(
        after.watch_reasons(),
        vec![WatchReason::RemovedWithoutDestination]
    );
    assert_eq!(after.missing_since, Some(d("2026-11-02")));
}

#[test]
fn removal_on_a_ground_that_accounts_for_the_child_does_not_open_the_cme_track() {
    let removed = E::RemovedFromRoll {
        school_urn: urn(SECONDARY),
        ground: RemovalGround::F,
        date: d("2026-11-02"),
        destination_urn: None,
        without_destination: false,
        track: None,
    };
    on("2026-11-02")
        .given(on_roll_at_secondary())
        .when(remove(RemovalGround::F, "2026-11-02", None))
        .then_expect_events(vec![removed.clone()]);
    assert!(
        case(&[on_roll_at_secondary(), vec![removed]].concat())
            .watch_reasons()
            .is_empty()
    );
}

// ---- RecordSuspension ------------------------------------------------------

fn suspension(start: &str, days: u32, end: &str, total: u32) -> E {
    E::SuspensionRecorded {
        start: d(start),
        school_days: days,
        end: d(end),
        reasons: reasons(&["DB"]),
        academic_year: 2026,
        days_this_year: total,
        track: None,
    }
}

fn suspend(start: &str, days: u32) -> C {
    C::RecordSuspension {
        start: d(start),
        school_days: days,
        reasons: reasons(&["DB"]),
    }
}

#[test]
fn a_suspension_records_its_last_school_day_and_the_running_total() {
    // Thursday 1 October for three school days ends on Monday 5 October.
    let mut history = on_roll_at_secondary();
    history.push(suspension("2026-09-21", 2, "2026-09-22", 2));
    on("2026-10-01")
        .given(history)
        .when(suspend("2026-10-01", 3))
        .then_expect_events(vec![suspension("2026-10-01", 3, "2026-10-05", 5)]);
}

#[test]
fn suspensions_are_capped_at_45_school_days_in_a_school_year() {
    // Forty days from 7 September; the board review it opened is still due,
    // so a further suspension does not open another.
    let mut history = on_roll_at_secondary();
    history.push(E::SuspensionRecorded {
        start: d("2026-09-07"),
        school_days: 40,
        end: d("2026-10-30"),
        reasons: reasons(&["PA"]),
        academic_year: 2026,
        days_this_year: 40,
        track: Some(TrackUpdate::open(
            TrackKind::Suspension,
            vec![DueStep {
                step: TrackStep::GoverningBoardReview,
                due_on: d("2026-09-28"),
            }],
        )),
    });
    on("2027-01-11")
        .given(history.clone())
        .when(suspend("2027-01-11", 6))
        .then_expect_error(CaseError::SuspensionCapExceeded {
            would_be: 46,
            cap: 45,
        });
    on("2027-01-11")
        .given(history)
        .when(suspend("2027-01-11", 5))
        .then_expect_events(vec![suspension("2027-01-11", 5, "2027-01-15", 45)]);
}

#[test]
fn the_suspension_cap_starts_again_in_a_new_school_year() {
    let mut history = on_roll_at_secondary();
    history.push(E::SuspensionRecorded {
        start: d("2027-06-07"),
        school_days: 45,
        end: d("2027-08-06"),
        reasons: reasons(&["PA"]),
        academic_year: 2026,
        days_this_year: 45,
        track: None,
    });
    on("2027-09-06")
        .given(history)
        .when(suspend("2027-09-06", 1))
        .then_expect_events(vec![E::SuspensionRecorded {
            start: d("2027-09-06"),
            school_days: 1,
            end: d("2027-09-06"),
            reasons: reasons(&["DB"]),
            academic_year: 2027,
            days_this_year: 1,
            track: None,
        }]);
}

#[test]
fn suspensions_over_15_days_open_a_board_review_due_in_15_school_days() {
    // 10 days in September, then 6 from Monday 19 October: 16 in the year.
    // Half term (26 to 30 October) is not school days, so the suspension
    // ends on Monday 2 November and the board meets by Monday 16 November.
    let mut history = on_roll_at_secondary();
    history.push(suspension("2026-09-21", 10, "2026-10-02", 10));
    with("2026-10-19", half_term_calendar(), PolicyBook::default())
        .given(history)
        .when(suspend("2026-10-19", 6))
        .then_expect_events(vec![E::SuspensionRecorded {
            start: d("2026-10-19"),
            school_days: 6,
            end: d("2026-11-02"),
            reasons: reasons(&["DB"]),
            academic_year: 2026,
            days_this_year: 16,
            track: Some(TrackUpdate::open(
                TrackKind::Suspension,
                vec![DueStep {
                    step: TrackStep::GoverningBoardReview,
                    due_on: d("2026-11-16"),
                }],
            )),
        }]);
}

#[test]
fn the_board_review_closes_the_suspension_track() {
    let mut history = on_roll_at_secondary();
    history.push(E::SuspensionRecorded {
        start: d("2026-09-21"),
        school_days: 16,
        end: d("2026-10-12"),
        reasons: reasons(&["DB"]),
        academic_year: 2026,
        days_this_year: 16,
        track: Some(TrackUpdate::open(
            TrackKind::Suspension,
            vec![DueStep {
                step: TrackStep::GoverningBoardReview,
                due_on: d("2026-10-12"),
            }],
        )),
    });
    let reviewed = step_recorded(
        TrackKind::Suspension,
        TrackStep::GoverningBoardReview,
        "2026-10-08",
        update(
            TrackKind::Suspension,
            vec![TrackStep::GoverningBoardReview],
            vec![],
            true,
        ),
    );
    on("2026-10-08")
        .given(history.clone())
        .when(track_step(
            TrackKind::Suspension,
            TrackStep::GoverningBoardReview,
            "2026-10-08",
        ))
        .then_expect_events(vec![reviewed.clone()]);
    assert!(
        case(&[history, vec![reviewed]].concat())
            .tracks
            .open
            .is_empty()
    );
}

#[test]
fn a_suspension_needs_one_to_three_distinct_reason_codes() {
    for codes in [&[][..], &["DB", "PA", "VA", "TH"][..], &["DB", "DB"][..]] {
        on("2026-10-01")
            .given(on_roll_at_secondary())
            .when(C::RecordSuspension {
                start: d("2026-10-01"),
                school_days: 1,
                reasons: reasons(codes),
            })
            .then_expect_error(CaseError::ReasonCodeCount);
    }
}

#[test]
fn a_suspension_of_no_school_days_is_refused() {
    on("2026-10-01")
        .given(on_roll_at_secondary())
        .when(suspend("2026-10-01", 0))
        .then_expect_error(CaseError::ZeroSchoolDays);
}

// ---- RecordPermanentExclusion and the exclusion track ----------------------

#[test]
fn a_permanent_exclusion_opens_a_board_review_due_in_15_school_days_skipping_half_term() {
    // Tuesday 20 October: three school days before half term, then twelve
    // after it, so the board must meet by Tuesday 17 November (with no
    // holiday it would be Tuesday 10 November).
    with("2026-10-20", half_term_calendar(), PolicyBook::default())
        .given(on_roll_at_secondary())
        .when(C::RecordPermanentExclusion {
            date: d("2026-10-20"),
            reasons: reasons(&["PA"]),
        })
        .then_expect_events(vec![excluded_on("2026-10-20", "2026-11-17")]);
    on("2026-10-20")
        .given(on_roll_at_secondary())
        .when(C::RecordPermanentExclusion {
            date: d("2026-10-20"),
            reasons: reasons(&["PA"]),
        })
        .then_expect_events(vec![excluded_on("2026-10-20", "2026-11-10")]);
}

#[test]
fn a_second_permanent_exclusion_is_refused() {
    on("2026-11-03")
        .given(
            [
                on_roll_at_secondary(),
                vec![excluded_on("2026-11-02", "2026-11-23")],
            ]
            .concat(),
        )
        .when(C::RecordPermanentExclusion {
            date: d("2026-11-03"),
            reasons: reasons(&["DB"]),
        })
        .then_expect_error(CaseError::AlreadyExcluded);
}

#[test]
fn a_permanent_exclusion_needs_one_to_three_distinct_reason_codes() {
    on("2026-11-02")
        .given(on_roll_at_secondary())
        .when(C::RecordPermanentExclusion {
            date: d("2026-11-02"),
            reasons: vec![],
        })
        .then_expect_error(CaseError::ReasonCodeCount);
}

#[test]
fn the_exclusion_track_runs_board_panel_and_reconsideration_with_their_deadlines() {
    use TrackKind::PermanentExclusion as Pex;
    let mut history = on_roll_at_secondary();
    // Monday 2 November: the board meets by Monday 23 November.
    step(
        &mut history,
        "2026-11-02",
        C::RecordPermanentExclusion {
            date: d("2026-11-02"),
            reasons: reasons(&["PA"]),
        },
        vec![excluded_on("2026-11-02", "2026-11-23")],
    );
    // A review request before the board has met is out of order.
    on("2026-11-05")
        .given(history.clone())
        .when(track_step(
            Pex,
            TrackStep::IndependentReviewRequested,
            "2026-11-05",
        ))
        .then_expect_error(CaseError::StepNotExpected {
            track: "permanent_exclusion",
            step: "independent_review_requested",
        });
    step(
        &mut history,
        "2026-11-16",
        track_step(Pex, TrackStep::GoverningBoardReview, "2026-11-16"),
        vec![step_recorded(
            Pex,
            TrackStep::GoverningBoardReview,
            "2026-11-16",
            update(Pex, vec![TrackStep::GoverningBoardReview], vec![], false),
        )],
    );
    // The parents apply on Monday 30 November: the panel meets within 15
    // school days, by Monday 21 December.
    step(
        &mut history,
        "2026-11-30",
        track_step(Pex, TrackStep::IndependentReviewRequested, "2026-11-30"),
        vec![step_recorded(
            Pex,
            TrackStep::IndependentReviewRequested,
            "2026-11-30",
            update(
                Pex,
                vec![],
                vec![(TrackStep::IndependentReviewPanel, "2026-12-21")],
                false,
            ),
        )],
    );
    // The panel recommends reconsideration on Monday 14 December: the board
    // reconsiders within 10 school days, by Monday 28 December (this
    // calendar has no Christmas holiday).
    step(
        &mut history,
        "2026-12-14",
        track_step(
            Pex,
            TrackStep::PanelRecommendedReconsideration,
            "2026-12-14",
        ),
        vec![step_recorded(
            Pex,
            TrackStep::PanelRecommendedReconsideration,
            "2026-12-14",
            update(
                Pex,
                vec![TrackStep::IndependentReviewPanel],
                vec![(TrackStep::BoardReconsideration, "2026-12-28")],
                false,
            ),
        )],
    );
    assert_eq!(
        case(&history).open_steps(),
        vec![(
            Pex,
            DueStep {
                step: TrackStep::BoardReconsideration,
                due_on: d("2026-12-28"),
            }
        )]
    );
    step(
        &mut history,
        "2026-12-18",
        track_step(Pex, TrackStep::BoardReconsideration, "2026-12-18"),
        vec![step_recorded(
            Pex,
            TrackStep::BoardReconsideration,
            "2026-12-18",
            update(Pex, vec![TrackStep::BoardReconsideration], vec![], true),
        )],
    );
    let after = case(&history);
    assert!(after.tracks.open.is_empty());
    assert!(after.permanently_excluded, "the board upheld the exclusion");
}

#[test]
fn a_panel_that_upholds_the_exclusion_closes_the_track() {
    use TrackKind::PermanentExclusion as Pex;
    let history = [
        on_roll_at_secondary(),
        vec![
            excluded_on("2026-11-02", "2026-11-23"),
            step_recorded(
                Pex,
                TrackStep::GoverningBoardReview,
                "2026-11-16",
                update(Pex, vec![TrackStep::GoverningBoardReview], vec![], false),
            ),
            step_recorded(
                Pex,
                TrackStep::IndependentReviewRequested,
                "2026-11-30",
                update(
                    Pex,
                    vec![],
                    vec![(TrackStep::IndependentReviewPanel, "2026-12-21")],
                    false,
                ),
            ),
        ],
    ]
    .concat();
    on("2026-12-15")
        .given(history.clone())
        .when(track_step(
            Pex,
            TrackStep::BoardReconsideration,
            "2026-12-15",
        ))
        .then_expect_error(CaseError::StepNotExpected {
            track: "permanent_exclusion",
            step: "board_reconsideration",
        });
    on("2026-12-15")
        .given(history)
        .when(track_step(Pex, TrackStep::PanelUpheld, "2026-12-15"))
        .then_expect_events(vec![step_recorded(
            Pex,
            TrackStep::PanelUpheld,
            "2026-12-15",
            update(Pex, vec![TrackStep::IndependentReviewPanel], vec![], true),
        )]);
}

#[test]
fn reinstatement_closes_the_track_and_lifts_the_exclusion() {
    use TrackKind::PermanentExclusion as Pex;
    let history = [
        on_roll_at_secondary(),
        vec![excluded_on("2026-11-02", "2026-11-23")],
    ]
    .concat();
    let reinstated = step_recorded(
        Pex,
        TrackStep::Reinstated,
        "2026-11-16",
        update(Pex, vec![TrackStep::GoverningBoardReview], vec![], true),
    );
    on("2026-11-16")
        .given(history.clone())
        .when(track_step(Pex, TrackStep::Reinstated, "2026-11-16"))
        .then_expect_events(vec![reinstated.clone()]);
    let after = case(&[history, vec![reinstated]].concat());
    assert!(!after.permanently_excluded);
    assert!(after.tracks.open.is_empty());
}

#[test]
fn a_child_excluded_from_one_school_can_be_excluded_from_the_next() {
    use TrackKind::PermanentExclusion as Pex;
    let history = [
        on_roll_at_secondary(),
        vec![
            excluded_on("2026-11-02", "2026-11-23"),
            step_recorded(
                Pex,
                TrackStep::TrackClosed,
                "2026-12-01",
                update(Pex, vec![], vec![], true),
            ),
            E::DestinationChanged {
                from_urn: urn(SECONDARY),
                to_urn: urn(OTHER),
                reason: text("new school after exclusion"),
                on: d("2027-01-04"),
            },
            arrived(OTHER, "2027-01-05"),
        ],
    ]
    .concat();
    on("2027-03-01")
        .given(history)
        .when(C::RecordPermanentExclusion {
            date: d("2027-03-01"),
            reasons: reasons(&["OW"]),
        })
        .then_expect_events(vec![E::PermanentExclusionRecorded {
            date: d("2027-03-01"),
            reasons: reasons(&["OW"]),
            track: TrackUpdate::open(
                Pex,
                vec![DueStep {
                    step: TrackStep::GoverningBoardReview,
                    due_on: d("2027-03-22"),
                }],
            ),
        }]);
}

#[test]
fn a_step_on_a_track_that_is_not_open_is_refused() {
    on("2026-11-16")
        .given(on_roll_at_secondary())
        .when(track_step(
            TrackKind::PermanentExclusion,
            TrackStep::GoverningBoardReview,
            "2026-11-16",
        ))
        .then_expect_error(CaseError::TrackNotOpen("permanent_exclusion"));
}

#[test]
fn a_step_that_belongs_to_another_track_is_refused() {
    on("2026-09-05")
        .given(missing_on_day_one())
        .when(track_step(
            TrackKind::Cme,
            TrackStep::PanelUpheld,
            "2026-09-05",
        ))
        .then_expect_error(CaseError::StepNotExpected {
            track: "cme",
            step: "panel_upheld",
        });
}

#[test]
fn a_track_step_dated_in_the_future_is_refused() {
    on("2026-11-16")
        .given(
            [
                on_roll_at_secondary(),
                vec![excluded_on("2026-11-02", "2026-11-23")],
            ]
            .concat(),
        )
        .when(track_step(
            TrackKind::PermanentExclusion,
            TrackStep::GoverningBoardReview,
            "2026-11-17",
        ))
        .then_expect_error(CaseError::DateInFuture {
            what: "step date",
            date: d("2026-11-17"),
        });
}

#[test]
fn closing_the_cme_track_by_hand_lapses_its_due_steps() {
    let closed = step_recorded(
        TrackKind::Cme,
        TrackStep::TrackClosed,
        "2026-09-05",
        update(TrackKind::Cme, vec![], vec![], true),
    );
    on("2026-09-05")
        .given(missing_on_day_one())
        .when(track_step(
            TrackKind::Cme,
            TrackStep::TrackClosed,
            "2026-09-05",
        ))
        .then_expect_events(vec![closed.clone()]);
    assert!(
        case(&[missing_on_day_one(), vec![closed]].concat())
            .open_steps()
            .is_empty()
    );
}

// ---- ReplaceUpn ------------------------------------------------------------

#[test]
fn replacing_a_temporary_upn_keeps_the_former_one() {
    let history = vec![registered_with(TEMPORARY_UPN)];
    let replaced = E::UpnReplaced {
        former_upn: upn(TEMPORARY_UPN),
        new_upn: upn(PERMANENT_UPN),
    };
    on("2026-02-01")
        .given(history.clone())
        .when(C::ReplaceUpn {
            new_upn: upn(PERMANENT_UPN),
        })
        .then_expect_events(vec![replaced.clone()]);
    let after = case(&[history, vec![replaced]].concat());
    assert_eq!(
        after.identity.as_ref().map(|identity| &identity.upn),
        Some(&upn(PERMANENT_UPN))
    );
    assert_eq!(after.former_upns, vec![upn(TEMPORARY_UPN)]);
}

#[test]
fn replacing_a_permanent_upn_is_refused() {
    on("2026-02-01")
        .given(vec![registered()])
        .when(C::ReplaceUpn {
            new_upn: upn(TEMPORARY_UPN),
        })
        .then_expect_error(CaseError::UpnNotTemporary);
}

#[test]
fn replacing_a_upn_with_itself_is_refused() {
    on("2026-02-01")
        .given(vec![registered_with(TEMPORARY_UPN)])
        .when(C::ReplaceUpn {
            new_upn: upn(TEMPORARY_UPN),
        })
        .then_expect_error(CaseError::SameUpn);
}

// ---- CorrectEntry ----------------------------------------------------------

fn correct(sequence: u64, corrected: Corrections) -> C {
    C::CorrectEntry {
        sequence,
        reason: text("recorded wrongly"),
        corrected,
    }
}

fn corrected(sequence: u64, corrected_type: &str, corrected: Corrections) -> E {
    E::EntryCorrected {
        sequence,
        corrected_type: text(corrected_type),
        reason: text("recorded wrongly"),
        corrected,
    }
}

fn date_correction(date: &str) -> Corrections {
    Corrections {
        date: Some(d(date)),
        ..Corrections::default()
    }
}

#[test]
fn correcting_the_registered_names_changes_the_identity_and_keeps_the_entry() {
    let names = Corrections {
        given_name: Some(name("Aimee")),
        family_name: Some(name("Jones-Khan")),
        ..Corrections::default()
    };
    let correction = corrected(1, "ChildRegistered", names.clone());
    on("2026-02-01")
        .given(vec![registered()])
        .when(correct(1, names))
        .then_expect_events(vec![correction.clone()]);
    let after = case(&[registered(), correction]);
    let identity = after.identity.expect("the child is registered");
    assert_eq!(identity.given_name, name("Aimee"));
    assert_eq!(identity.family_name, name("Jones-Khan"));
    assert_eq!(
        identity.date_of_birth,
        d("2015-06-01"),
        "uncorrected fields stay"
    );
    assert_eq!(after.entries, vec!["ChildRegistered", "EntryCorrected"]);
}

#[test]
fn correcting_a_home_visit_date_into_the_missing_episode_makes_it_count() {
    // The visit was typed as 1 September, the day before the no-show.
    let mut history = missing_on_day_one();
    history.extend([contact_on("2026-09-03"), visit_on("2026-09-01")]);
    on("2026-09-07")
        .given(history.clone())
        .when(raise_referral())
        .then_expect_error(CaseError::EnquiriesIncomplete {
            missing: text("1 home visit logged on or after 2026-09-02"),
        });
    let correction = corrected(5, "HomeVisitLogged", date_correction("2026-09-04"));
    on("2026-09-07")
        .given(history.clone())
        .when(correct(5, date_correction("2026-09-04")))
        .then_expect_events(vec![correction.clone()]);
    history.push(correction);
    let result = on("2026-09-07")
        .given(history)
        .when(raise_referral())
        .inspect_result();
    assert!(
        matches!(
            result.as_deref(),
            Ok([E::CmeReferralRaised {
                contact_attempts: 1,
                home_visits: 1,
                ..
            }])
        ),
        "{result:?}"
    );
}

#[test]
fn correcting_a_home_visit_date_out_of_the_missing_episode_stops_it_counting() {
    let mut history = missing_with_enquiries();
    history.push(corrected(
        5,
        "HomeVisitLogged",
        date_correction("2026-08-28"),
    ));
    on("2026-09-07")
        .given(history)
        .when(raise_referral())
        .then_expect_error(CaseError::EnquiriesIncomplete {
            missing: text("1 home visit logged on or after 2026-09-02"),
        });
}

#[test]
fn correcting_a_no_show_date_moves_the_start_of_the_missing_episode() {
    // The no-show was typed as 2 September but was on the 1st, when the
    // school made its call: the call now counts.
    let mut history = vec![
        registered(),
        allocated(SECONDARY),
        no_show_on_day_one(),
        contact_on("2026-09-01"),
        visit_on("2026-09-03"),
    ];
    on("2026-09-07")
        .given(history.clone())
        .when(raise_referral())
        .then_expect_error(CaseError::EnquiriesIncomplete {
            missing: text("1 contact attempt logged on or after 2026-09-02"),
        });
    history.push(corrected(
        3,
        "NoShowOnDayOne",
        date_correction("2026-09-01"),
    ));
    assert_eq!(case(&history).missing_since, Some(d("2026-09-01")));
    assert!(
        on("2026-09-07")
            .given(history)
            .when(raise_referral())
            .inspect_result()
            .is_ok()
    );
}

#[test]
fn a_correction_of_a_field_the_entry_does_not_have_is_refused() {
    on("2026-09-07")
        .given(missing_with_enquiries())
        .when(correct(
            5,
            Corrections {
                given_name: Some(name("Amie")),
                ..Corrections::default()
            },
        ))
        .then_expect_error(CaseError::CorrectionNotApplicable {
            sequence: 5,
            entry: text("HomeVisitLogged"),
            field: "given_name",
        });
    on("2026-09-07")
        .given(missing_with_enquiries())
        .when(correct(2, date_correction("2026-03-03")))
        .then_expect_error(CaseError::CorrectionNotApplicable {
            sequence: 2,
            entry: text("PupilAllocated"),
            field: "date",
        });
}

#[test]
fn a_correction_is_not_itself_correctable() {
    let history = vec![
        registered(),
        corrected(
            1,
            "ChildRegistered",
            Corrections {
                year_group: Some(7),
                ..Corrections::default()
            },
        ),
    ];
    on("2026-09-07")
        .given(history)
        .when(correct(2, date_correction("2026-09-01")))
        .then_expect_error(CaseError::CorrectionNotApplicable {
            sequence: 2,
            entry: text("EntryCorrected"),
            field: "date",
        });
}

#[test]
fn correcting_an_entry_that_does_not_exist_is_refused() {
    for sequence in [0, 6, u64::MAX] {
        on("2026-09-07")
            .given(missing_with_enquiries())
            .when(correct(sequence, date_correction("2026-09-01")))
            .then_expect_error(CaseError::NoSuchEntry(sequence));
    }
}

#[test]
fn a_correction_must_correct_something() {
    on("2026-09-07")
        .given(missing_with_enquiries())
        .when(correct(5, Corrections::default()))
        .then_expect_error(CaseError::NothingToCorrect);
}

#[test]
fn a_correction_needs_a_reason() {
    on("2026-09-07")
        .given(missing_with_enquiries())
        .when(C::CorrectEntry {
            sequence: 5,
            reason: String::new(),
            corrected: date_correction("2026-09-04"),
        })
        .then_expect_error(CaseError::MissingText("reason"));
}

#[test]
fn a_corrected_date_in_the_future_is_refused() {
    on("2026-09-07")
        .given(missing_with_enquiries())
        .when(correct(5, date_correction("2026-09-08")))
        .then_expect_error(CaseError::DateInFuture {
            what: "corrected date",
            date: d("2026-09-08"),
        });
}

#[test]
fn a_corrected_year_group_is_checked_like_a_registered_one() {
    let refused = on("2026-09-07")
        .given(vec![registered()])
        .when(correct(
            1,
            Corrections {
                year_group: Some(70),
                ..Corrections::default()
            },
        ))
        .inspect_result()
        .expect_err("year 70 does not exist");
    assert_eq!(refused.code(), "invalid_value");
}

// ---- the aggregate as a whole ----------------------------------------------

#[test]
fn the_aggregate_type_never_changes() {
    assert_eq!(ChildCase::TYPE, "child_case");
}

#[test]
fn a_refused_command_appends_nothing_and_the_version_counts_every_event() {
    let history = missing_with_enquiries();
    let case = case(&history);
    assert_eq!(case.version, 5);
    assert_eq!(case.entries.len(), 5);
    let refused = case.decide(
        C::AcceptCmeReferral {
            notes: String::new(),
        },
        &CaseServices::on(d("2026-09-07")),
    );
    assert_eq!(refused, Err(CaseError::NoReferralAwaitingDecision));
}
