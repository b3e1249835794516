//! The child case aggregate: one child's whole story, rebuilt from its events.
//!
//! `decide` is a plain synchronous function from (state, command, services)
//! to events or a refusal; the cqrs-es `handle` only writes its result to the
//! sink. `apply` changes state and never validates.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use cqrs_es::Aggregate;
use cqrs_es::event_sink::EventSink;
use serde::{Deserialize, Serialize};

use crate::commands::{ChildCommand, Corrections, LocatedOutcome};
use crate::error::CaseError;
use crate::events::{ChildEvent, correctable_fields};
use crate::services::{CaseServices, LaPolicy, academic_year, statutory};
use crate::tracks::{DueStep, TrackKind, TrackStep, TrackUpdate, Tracks, decide_step};
use crate::values::{ExclusionReason, LaCode, Name, Sen, Upn, Urn};

/// Who the child is, as registered (and as corrected since).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    pub upn: Upn,
    pub given_name: Name,
    pub family_name: Name,
    pub date_of_birth: NaiveDate,
    pub la_code: LaCode,
    pub year_group: Option<u8>,
    pub sen: Option<Sen>,
}

/// A day-one no-show and whether a later arrival (or locating the child) resolved it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NoShow {
    /// The sequence of the `NoShowOnDayOne` entry, so a correction of its
    /// date reaches this no-show and no other.
    #[serde(default)]
    pub sequence: u64,
    pub school_urn: Urn,
    pub date: NaiveDate,
    pub resolved: bool,
}

/// A logged enquiry, kept by sequence so a correction of its date counts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Enquiry {
    pub sequence: u64,
    pub home_visit: bool,
    pub date: NaiveDate,
}

/// Where a CME referral stands.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Referral {
    #[default]
    None,
    /// Raised by the school, awaiting the LA's decision.
    Raised,
    /// Accepted by the LA: an open CME case until the child is located.
    Accepted,
}

/// The reasons a child appears on the LA watchlist. `OverdueTrackStep`
/// depends on the date as well as the events, so read models add it at query
/// time from the open due steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WatchReason {
    NoDestination,
    AppealPending,
    DayOneNoShow,
    ReportedMissing,
    RemovedWithoutDestination,
    CmeReferralOpen,
    OverdueTrackStep,
}

impl WatchReason {
    pub const ALL: [Self; 7] = [
        Self::NoDestination,
        Self::AppealPending,
        Self::DayOneNoShow,
        Self::ReportedMissing,
        Self::RemovedWithoutDestination,
        Self::CmeReferralOpen,
        Self::OverdueTrackStep,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::NoDestination => "no_destination",
            Self::AppealPending => "appeal_pending",
            Self::DayOneNoShow => "day_one_no_show",
            Self::ReportedMissing => "reported_missing",
            Self::RemovedWithoutDestination => "removed_without_destination",
            Self::CmeReferralOpen => "cme_referral_open",
            Self::OverdueTrackStep => "overdue_track_step",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|reason| reason.as_str() == raw)
    }
}

/// One child's case.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ChildCase {
    /// The sequence number of the last event applied.
    pub version: u64,
    pub identity: Option<Identity>,
    pub former_upns: Vec<Upn>,
    /// The school the child is on roll at: registered there, arrived there,
    /// or (after a day-one no-show) due there, which puts the child on its
    /// admission register.
    pub school_urn: Option<Urn>,
    /// The school the child is expected at next.
    pub destination_urn: Option<Urn>,
    pub destination_confirmed: bool,
    /// The child is in the admissions story (offered, refused or appealing)
    /// and has not yet arrived at a destination.
    pub in_transition: bool,
    pub appeals_pending: Vec<Urn>,
    /// The school the child arrived at for the current expected start.
    pub arrived_at: Option<Urn>,
    pub no_show: Option<NoShow>,
    /// The day the current missing episode began, if the child is missing.
    pub missing_since: Option<NaiveDate>,
    pub reported_missing: bool,
    pub removed_without_destination: bool,
    pub referral: Referral,
    pub enquiries: Vec<Enquiry>,
    /// Set by a permanent exclusion; lifted by reinstatement or by arriving
    /// at a new school.
    pub permanently_excluded: bool,
    /// Suspension school days per school year.
    pub suspension_days: BTreeMap<i32, u32>,
    pub tracks: Tracks,
    /// The event type of every entry, by sequence (index 0 is sequence 1).
    pub entries: Vec<String>,
}

fn require_text(field: &'static str, text: &str) -> Result<String, CaseError> {
    if text.trim().is_empty() {
        Err(CaseError::MissingText(field))
    } else {
        Ok(text.to_owned())
    }
}

fn not_in_future(what: &'static str, date: NaiveDate, today: NaiveDate) -> Result<(), CaseError> {
    if date > today {
        Err(CaseError::DateInFuture { what, date })
    } else {
        Ok(())
    }
}

fn check_year_group(year_group: Option<u8>) -> Result<(), CaseError> {
    if year_group.is_some_and(|year| year > 14) {
        Err(CaseError::InvalidValue {
            field: "year_group",
            detail: "a year group is 0 (reception) to 14".to_owned(),
        })
    } else {
        Ok(())
    }
}

fn check_reasons(reasons: &[ExclusionReason]) -> Result<(), CaseError> {
    let mut distinct = reasons.to_vec();
    distinct.sort();
    distinct.dedup();
    if reasons.is_empty() || reasons.len() > 3 || distinct.len() != reasons.len() {
        Err(CaseError::ReasonCodeCount)
    } else {
        Ok(())
    }
}

impl ChildCase {
    pub fn is_registered(&self) -> bool {
        self.identity.is_some()
    }

    /// The school expected to receive the child: the current destination.
    pub fn expected_school(&self) -> Option<&Urn> {
        self.destination_urn.as_ref()
    }

    /// The event-driven watchlist reasons open now (overdue steps excluded).
    pub fn watch_reasons(&self) -> Vec<WatchReason> {
        let mut reasons = Vec::new();
        if self.in_transition && self.destination_urn.is_none() {
            reasons.push(WatchReason::NoDestination);
        }
        if !self.appeals_pending.is_empty() {
            reasons.push(WatchReason::AppealPending);
        }
        if self
            .no_show
            .as_ref()
            .is_some_and(|no_show| !no_show.resolved)
        {
            reasons.push(WatchReason::DayOneNoShow);
        }
        if self.reported_missing {
            reasons.push(WatchReason::ReportedMissing);
        }
        if self.removed_without_destination {
            reasons.push(WatchReason::RemovedWithoutDestination);
        }
        if self.referral != Referral::None {
            reasons.push(WatchReason::CmeReferralOpen);
        }
        reasons
    }

    /// Every open track step with its deadline.
    pub fn open_steps(&self) -> Vec<(TrackKind, DueStep)> {
        self.tracks
            .open
            .iter()
            .flat_map(|track| track.due.iter().map(move |due| (track.kind, due.clone())))
            .collect()
    }

    /// What the policy's required enquiries still lack since the child went
    /// missing, in words; `None` when they are complete.
    pub fn missing_enquiries(&self, policy: &LaPolicy) -> Option<String> {
        let since = self.missing_since?;
        let (contacts, visits) = self.enquiry_counts(since);
        let mut missing = Vec::new();
        if contacts < policy.required_contact_attempts {
            let short = policy.required_contact_attempts - contacts;
            missing.push(format!(
                "{short} contact attempt{}",
                if short == 1 { "" } else { "s" }
            ));
        }
        if visits < policy.required_home_visits {
            let short = policy.required_home_visits - visits;
            missing.push(format!(
                "{short} home visit{}",
                if short == 1 { "" } else { "s" }
            ));
        }
        if missing.is_empty() {
            None
        } else {
            Some(format!(
                "{} logged on or after {since}",
                missing.join(" and ")
            ))
        }
    }

    fn enquiry_counts(&self, since: NaiveDate) -> (u32, u32) {
        let count = |home_visit: bool| {
            let n = self
                .enquiries
                .iter()
                .filter(|enquiry| enquiry.home_visit == home_visit && enquiry.date >= since)
                .count();
            u32::try_from(n).unwrap_or(u32::MAX)
        };
        (count(false), count(true))
    }

    /// Opens the CME track for a child who went missing on `since`, unless it is already open.
    fn open_cme_track(&self, since: NaiveDate, services: &CaseServices) -> Option<TrackUpdate> {
        if self.tracks.is_open(TrackKind::Cme) {
            return None;
        }
        let policy = self.policy(services);
        Some(TrackUpdate::open(
            TrackKind::Cme,
            vec![DueStep {
                step: TrackStep::EnquiriesAndReferral,
                due_on: services
                    .calendar
                    .add_school_days(since, policy.referral_due_school_days),
            }],
        ))
    }

    /// Closes the CME track, completing its due steps, if it is open.
    fn close_cme_track(&self) -> Option<TrackUpdate> {
        self.tracks.get(TrackKind::Cme).map(|track| TrackUpdate {
            track: TrackKind::Cme,
            opened: false,
            completed: track.due.iter().map(|due| due.step).collect(),
            due: Vec::new(),
            closed: true,
        })
    }

    /// The child counts as missing only because of a day-one no-show: no
    /// missing report, no removal without destination, no open referral. An
    /// arrival that resolves that no-show ends the missing episode; anything
    /// more is the LA's to close with `RecordChildLocated`.
    fn missing_only_by_no_show(&self) -> bool {
        !self.reported_missing
            && !self.removed_without_destination
            && self.referral == Referral::None
    }

    fn policy<'a>(&self, services: &'a CaseServices) -> &'a LaPolicy {
        match &self.identity {
            Some(identity) => services.policies.for_la(&identity.la_code),
            None => &services.policies.default,
        }
    }

    /// Decides what a command does: the events to append, or why not.
    pub fn decide(
        &self,
        command: ChildCommand,
        services: &CaseServices,
    ) -> Result<Vec<ChildEvent>, CaseError> {
        use ChildCommand as C;
        use ChildEvent as E;
        let today = services.today;
        if let C::RegisterChild {
            upn,
            given_name,
            family_name,
            date_of_birth,
            la_code,
            school_urn,
            year_group,
            sen,
        } = command
        {
            if self.is_registered() {
                return Err(CaseError::AlreadyRegistered);
            }
            not_in_future("date of birth", date_of_birth, today)?;
            check_year_group(year_group)?;
            return Ok(vec![E::ChildRegistered {
                upn,
                given_name,
                family_name,
                date_of_birth,
                la_code,
                school_urn,
                year_group,
                sen,
                on: today,
            }]);
        }
        if !self.is_registered() {
            return Err(CaseError::NotRegistered);
        }
        let event = match command {
            C::RegisterChild { .. } => unreachable!("registration is decided above"),
            C::AllocatePupil { school_urn } => {
                if self.destination_urn.as_ref() == Some(&school_urn) {
                    return Err(CaseError::AlreadyAllocated(school_urn));
                }
                if self.destination_urn.is_some() {
                    return Err(CaseError::DestinationAlreadySet);
                }
                E::PupilAllocated {
                    school_urn,
                    previous_urn: None,
                    via_appeal: false,
                    on: today,
                }
            }
            C::RecordNoAllocation {} => {
                if self.destination_urn.is_some() {
                    return Err(CaseError::DestinationAlreadySet);
                }
                E::NoPlaceAllocated { on: today }
            }
            C::LodgeAppeal { school_urn } => {
                if self.destination_urn.as_ref() == Some(&school_urn) {
                    return Err(CaseError::AlreadyAllocated(school_urn));
                }
                if self.appeals_pending.contains(&school_urn) {
                    return Err(CaseError::AppealAlreadyPending(school_urn));
                }
                E::AppealLodged {
                    school_urn,
                    on: today,
                }
            }
            C::DecideAppeal {
                school_urn,
                outcome,
            } => {
                if !self.appeals_pending.contains(&school_urn) {
                    return Err(CaseError::NoAppealPending(school_urn));
                }
                let decided = E::AppealDecided {
                    school_urn: school_urn.clone(),
                    outcome,
                    on: today,
                };
                if outcome == crate::commands::AppealOutcome::Upheld {
                    return Ok(vec![
                        decided,
                        E::PupilAllocated {
                            school_urn,
                            previous_urn: self.destination_urn.clone(),
                            via_appeal: true,
                            on: today,
                        },
                    ]);
                }
                decided
            }
            C::ConfirmDestination { school_urn } => match &self.destination_urn {
                None => return Err(CaseError::NoDestination),
                Some(current) if *current != school_urn => {
                    return Err(CaseError::DestinationMismatch {
                        current: current.clone(),
                        given: school_urn,
                    });
                }
                Some(_) => E::DestinationConfirmed {
                    school_urn,
                    on: today,
                },
            },
            C::ChangeDestination { school_urn, reason } => {
                let reason = require_text("reason", &reason)?;
                match &self.destination_urn {
                    None => return Err(CaseError::NoDestination),
                    Some(current) if *current == school_urn => {
                        return Err(CaseError::SameDestination(school_urn));
                    }
                    Some(current) => E::DestinationChanged {
                        from_urn: current.clone(),
                        to_urn: school_urn,
                        reason,
                        on: today,
                    },
                }
            }
            C::ShareTransitionInfo {
                school_urn,
                sen,
                semh,
                safeguarding,
                summary,
                strategies,
            } => {
                if self.destination_urn.as_ref() != Some(&school_urn) {
                    return Err(CaseError::NotExpectedAtSchool(school_urn));
                }
                E::TransitionInfoShared {
                    school_urn,
                    from_urn: self.school_urn.clone(),
                    sen,
                    semh,
                    safeguarding,
                    summary: require_text("summary", &summary)?,
                    strategies,
                    on: today,
                }
            }
            C::RecordTransitionConcern { category, notes } => E::TransitionConcernRecorded {
                category,
                notes: require_text("notes", &notes)?,
                on: today,
            },
            C::RecordArrival { school_urn, date } => {
                not_in_future("arrival date", date, today)?;
                if self.arrived_at.as_ref() == Some(&school_urn) {
                    return Err(CaseError::AlreadyArrived(school_urn));
                }
                if self.destination_urn.as_ref() != Some(&school_urn) {
                    return Err(CaseError::NotExpectedAtSchool(school_urn));
                }
                let resolved_no_show = self
                    .no_show
                    .as_ref()
                    .is_some_and(|no_show| !no_show.resolved && no_show.school_urn == school_urn);
                E::PupilArrived {
                    track: if resolved_no_show && self.missing_only_by_no_show() {
                        self.close_cme_track()
                    } else {
                        None
                    },
                    school_urn,
                    date,
                    resolved_no_show,
                }
            }
            C::RecordNoShow { school_urn, date } => {
                not_in_future("no-show date", date, today)?;
                if self.arrived_at.as_ref() == Some(&school_urn) {
                    return Err(CaseError::AlreadyArrived(school_urn));
                }
                if self.destination_urn.as_ref() != Some(&school_urn) {
                    return Err(CaseError::NotExpectedAtSchool(school_urn));
                }
                if self
                    .no_show
                    .as_ref()
                    .is_some_and(|no_show| no_show.school_urn == school_urn)
                {
                    return Err(CaseError::NoShowAlreadyRecorded(school_urn));
                }
                E::NoShowOnDayOne {
                    track: self.open_cme_track(date, services),
                    school_urn,
                    date,
                }
            }
            C::LogContactAttempt {
                method,
                outcome,
                notes,
                made_on,
            } => {
                let made_on = made_on.unwrap_or(today);
                not_in_future("contact date", made_on, today)?;
                E::ContactAttemptLogged {
                    method,
                    outcome,
                    notes,
                    made_on,
                }
            }
            C::LogHomeVisit {
                visited_on,
                outcome,
                notes,
            } => {
                not_in_future("visit date", visited_on, today)?;
                E::HomeVisitLogged {
                    visited_on,
                    outcome,
                    notes,
                }
            }
            C::ReportChildMissing {
                since,
                circumstances,
            } => {
                not_in_future("missing-since date", since, today)?;
                if self.reported_missing {
                    return Err(CaseError::AlreadyMissing);
                }
                E::ChildReportedMissing {
                    circumstances: require_text("circumstances", &circumstances)?,
                    school_urn: self
                        .school_urn
                        .clone()
                        .or_else(|| self.destination_urn.clone()),
                    track: self.open_cme_track(since, services),
                    since,
                }
            }
            C::RemoveFromRoll {
                school_urn,
                ground,
                date,
                destination_urn,
            } => {
                if self.school_urn.as_ref() != Some(&school_urn) {
                    return Err(CaseError::NotOnRoll(school_urn));
                }
                if date < today {
                    return Err(CaseError::RetrospectiveRemoval(today));
                }
                if ground == crate::values::RemovalGround::A && destination_urn.is_none() {
                    return Err(CaseError::DestinationRequired);
                }
                if ground.needs_enquiries() {
                    let policy = self.policy(services);
                    let missing = match self.missing_since {
                        None => Some(format!(
                            "{} contact attempt(s) and {} home visit(s): the child has not been reported missing",
                            policy.required_contact_attempts, policy.required_home_visits
                        )),
                        Some(_) => self.missing_enquiries(policy),
                    };
                    if let Some(missing) = missing {
                        return Err(CaseError::EnquiriesIncomplete { missing });
                    }
                }
                let without_destination = destination_urn.is_none() && !ground.accounts_for_child();
                E::RemovedFromRoll {
                    track: if without_destination {
                        self.open_cme_track(date, services)
                    } else {
                        None
                    },
                    school_urn,
                    ground,
                    date,
                    destination_urn,
                    without_destination,
                }
            }
            C::RaiseCmeReferral {
                reason,
                override_reason,
            } => {
                let reason = require_text("reason", &reason)?;
                if self.referral != Referral::None {
                    return Err(CaseError::ReferralAlreadyOpen);
                }
                let Some(since) = self.missing_since else {
                    return Err(CaseError::NotMissing);
                };
                let policy = self.policy(services);
                let override_reason = match override_reason {
                    Some(text) => Some(require_text("override_reason", &text)?),
                    None => None,
                };
                if let Some(missing) = self.missing_enquiries(policy) {
                    if override_reason.is_none() {
                        return Err(CaseError::EnquiriesIncomplete { missing });
                    }
                    if !policy.allow_override {
                        return Err(CaseError::OverrideNotPermitted);
                    }
                }
                let (contact_attempts, home_visits) = self.enquiry_counts(since);
                let mut track = self.open_cme_track(since, services).unwrap_or(TrackUpdate {
                    track: TrackKind::Cme,
                    opened: false,
                    completed: Vec::new(),
                    due: Vec::new(),
                    closed: false,
                });
                track
                    .due
                    .retain(|due| due.step != TrackStep::EnquiriesAndReferral);
                track.completed.push(TrackStep::EnquiriesAndReferral);
                track.due.push(DueStep {
                    step: TrackStep::LaDecision,
                    due_on: services
                        .calendar
                        .add_school_days(today, policy.la_decision_due_school_days),
                });
                E::CmeReferralRaised {
                    reason,
                    override_reason,
                    contact_attempts,
                    home_visits,
                    on: today,
                    track: Some(track),
                }
            }
            C::AcceptCmeReferral { notes } => {
                if self.referral != Referral::Raised {
                    return Err(CaseError::NoReferralAwaitingDecision);
                }
                E::CmeReferralAccepted {
                    notes,
                    on: today,
                    track: Some(TrackUpdate {
                        track: TrackKind::Cme,
                        opened: false,
                        completed: vec![TrackStep::LaDecision],
                        due: Vec::new(),
                        closed: false,
                    }),
                }
            }
            C::ReturnCmeReferral { reason } => {
                if self.referral != Referral::Raised {
                    return Err(CaseError::NoReferralAwaitingDecision);
                }
                let policy = self.policy(services);
                // The referral goes back to the school, which owes a new one.
                E::CmeReferralReturned {
                    reason: require_text("reason", &reason)?,
                    on: today,
                    track: Some(TrackUpdate {
                        track: TrackKind::Cme,
                        opened: false,
                        completed: vec![TrackStep::LaDecision],
                        due: vec![DueStep {
                            step: TrackStep::EnquiriesAndReferral,
                            due_on: services
                                .calendar
                                .add_school_days(today, policy.referral_due_school_days),
                        }],
                        closed: false,
                    }),
                }
            }
            C::RecordChildLocated {
                outcome,
                school_urn,
                la_code,
                notes,
            } => {
                if self.missing_since.is_none() && self.referral == Referral::None {
                    return Err(CaseError::NotMissing);
                }
                if outcome == LocatedOutcome::OnRoll && school_urn.is_none() {
                    return Err(CaseError::LocatedSchoolRequired);
                }
                E::ChildLocated {
                    outcome,
                    school_urn,
                    la_code,
                    notes,
                    on: today,
                    track: self.close_cme_track(),
                }
            }
            C::RecordSuspension {
                start,
                school_days,
                reasons,
            } => {
                check_reasons(&reasons)?;
                if school_days == 0 {
                    return Err(CaseError::ZeroSchoolDays);
                }
                let year = academic_year(start);
                let so_far = self.suspension_days.get(&year).copied().unwrap_or(0);
                let would_be = so_far.saturating_add(school_days);
                if would_be > statutory::SUSPENSION_CAP_DAYS {
                    return Err(CaseError::SuspensionCapExceeded {
                        would_be,
                        cap: statutory::SUSPENSION_CAP_DAYS,
                    });
                }
                let needs_review = would_be > statutory::SUSPENSION_REVIEW_THRESHOLD_DAYS
                    && !self.tracks.is_open(TrackKind::Suspension);
                E::SuspensionRecorded {
                    start,
                    school_days,
                    end: services.calendar.last_of_school_days(start, school_days),
                    reasons,
                    academic_year: year,
                    days_this_year: would_be,
                    track: needs_review.then(|| {
                        TrackUpdate::open(
                            TrackKind::Suspension,
                            vec![DueStep {
                                step: TrackStep::GoverningBoardReview,
                                due_on: services
                                    .calendar
                                    .add_school_days(start, statutory::BOARD_REVIEW_DAYS),
                            }],
                        )
                    }),
                }
            }
            C::RecordPermanentExclusion { date, reasons } => {
                check_reasons(&reasons)?;
                if self.permanently_excluded || self.tracks.is_open(TrackKind::PermanentExclusion) {
                    return Err(CaseError::AlreadyExcluded);
                }
                E::PermanentExclusionRecorded {
                    date,
                    reasons,
                    track: TrackUpdate::open(
                        TrackKind::PermanentExclusion,
                        vec![DueStep {
                            step: TrackStep::GoverningBoardReview,
                            due_on: services
                                .calendar
                                .add_school_days(date, statutory::BOARD_REVIEW_DAYS),
                        }],
                    ),
                }
            }
            C::RecordTrackStep {
                track,
                step,
                date,
                notes,
            } => {
                not_in_future("step date", date, today)?;
                let update = decide_step(
                    self.tracks.get(track),
                    track,
                    step,
                    date,
                    &services.calendar,
                )
                .map_err(|refusal| match refusal {
                    crate::tracks::StepRefusal::TrackNotOpen => {
                        CaseError::TrackNotOpen(track.as_str())
                    }
                    crate::tracks::StepRefusal::NotExpected => CaseError::StepNotExpected {
                        track: track.as_str(),
                        step: step.as_str(),
                    },
                })?;
                E::TrackStepRecorded {
                    track,
                    step,
                    date,
                    notes,
                    update,
                }
            }
            C::ReplaceUpn { new_upn } => {
                let current = &self
                    .identity
                    .as_ref()
                    .expect("registration was checked above")
                    .upn;
                if *current == new_upn {
                    return Err(CaseError::SameUpn);
                }
                if !current.is_temporary() {
                    return Err(CaseError::UpnNotTemporary);
                }
                E::UpnReplaced {
                    former_upn: current.clone(),
                    new_upn,
                }
            }
            C::CorrectEntry {
                sequence,
                reason,
                corrected,
            } => {
                let reason = require_text("reason", &reason)?;
                let entry = usize::try_from(sequence)
                    .ok()
                    .and_then(|seq| seq.checked_sub(1))
                    .and_then(|index| self.entries.get(index))
                    .ok_or(CaseError::NoSuchEntry(sequence))?;
                if corrected.is_empty() {
                    return Err(CaseError::NothingToCorrect);
                }
                let allowed = correctable_fields(entry);
                if let Some(field) = corrected
                    .fields()
                    .into_iter()
                    .find(|field| !allowed.contains(field))
                {
                    return Err(CaseError::CorrectionNotApplicable {
                        sequence,
                        entry: entry.clone(),
                        field,
                    });
                }
                if let Some(date) = corrected.date.or(corrected.date_of_birth) {
                    not_in_future("corrected date", date, today)?;
                }
                check_year_group(corrected.year_group)?;
                E::EntryCorrected {
                    sequence,
                    corrected_type: entry.clone(),
                    reason,
                    corrected,
                }
            }
        };
        Ok(vec![event])
    }

    fn apply_correction(&mut self, sequence: u64, corrected_type: &str, corrected: &Corrections) {
        match corrected_type {
            "ChildRegistered" => {
                if let Some(identity) = self.identity.as_mut() {
                    if let Some(name) = &corrected.given_name {
                        identity.given_name = name.clone();
                    }
                    if let Some(name) = &corrected.family_name {
                        identity.family_name = name.clone();
                    }
                    if let Some(date) = corrected.date_of_birth {
                        identity.date_of_birth = date;
                    }
                    if let Some(year) = corrected.year_group {
                        identity.year_group = Some(year);
                    }
                    if let Some(sen) = corrected.sen {
                        identity.sen = Some(sen);
                    }
                }
            }
            "ContactAttemptLogged" | "HomeVisitLogged" => {
                if let Some(date) = corrected.date {
                    for enquiry in &mut self.enquiries {
                        if enquiry.sequence == sequence {
                            enquiry.date = date;
                        }
                    }
                }
            }
            "NoShowOnDayOne" => {
                let Some(date) = corrected.date else { return };
                if let Some(no_show) = self
                    .no_show
                    .as_mut()
                    .filter(|no_show| no_show.sequence == sequence)
                {
                    let recorded = std::mem::replace(&mut no_show.date, date);
                    // The missing episode began with this no-show: enquiries
                    // count from the corrected day.
                    if self.missing_since == Some(recorded) {
                        self.missing_since = Some(date);
                    }
                }
            }
            _ => {}
        }
    }
}

impl Aggregate for ChildCase {
    /// Never changes: it names the stream of every event already stored.
    const TYPE: &'static str = "child_case";
    type Command = ChildCommand;
    type Event = ChildEvent;
    type Error = CaseError;
    type Services = CaseServices;

    async fn handle(
        &mut self,
        command: Self::Command,
        services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        for event in self.decide(command, services)? {
            sink.write(event, self).await;
        }
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        use ChildEvent as E;
        self.version += 1;
        self.entries.push(event.name().to_owned());
        if let Some(update) = event.track_update() {
            self.tracks.apply(update);
        }
        match event {
            E::ChildRegistered {
                upn,
                given_name,
                family_name,
                date_of_birth,
                la_code,
                school_urn,
                year_group,
                sen,
                on: _,
            } => {
                self.identity = Some(Identity {
                    upn,
                    given_name,
                    family_name,
                    date_of_birth,
                    la_code,
                    year_group,
                    sen,
                });
                self.school_urn = school_urn;
            }
            E::PupilAllocated { school_urn, .. } => {
                self.appeals_pending.retain(|urn| *urn != school_urn);
                self.set_destination(school_urn);
                self.in_transition = true;
            }
            E::NoPlaceAllocated { .. } => self.in_transition = true,
            E::AppealLodged { school_urn, .. } => {
                self.appeals_pending.push(school_urn);
                self.in_transition = true;
            }
            E::AppealDecided { school_urn, .. } => {
                self.appeals_pending.retain(|urn| *urn != school_urn);
            }
            E::DestinationConfirmed { .. } => self.destination_confirmed = true,
            E::DestinationChanged { to_urn, .. } => self.set_destination(to_urn),
            E::PupilArrived {
                school_urn,
                resolved_no_show,
                ..
            } => {
                if resolved_no_show {
                    if self.missing_only_by_no_show() {
                        self.missing_since = None;
                    }
                    if let Some(no_show) = self.no_show.as_mut() {
                        no_show.resolved = true;
                    }
                }
                // A new start: an exclusion from an earlier school no longer
                // stands in the way of recording one here.
                self.permanently_excluded = false;
                self.school_urn = Some(school_urn.clone());
                self.arrived_at = Some(school_urn);
                self.in_transition = false;
            }
            E::NoShowOnDayOne {
                school_urn, date, ..
            } => {
                // The child is on the school's admission register from the
                // first day they were due to attend, arrived or not: that
                // school makes the enquiries and, with the LA, any removal.
                self.school_urn = Some(school_urn.clone());
                self.no_show = Some(NoShow {
                    sequence: self.version,
                    school_urn,
                    date,
                    resolved: false,
                });
                self.missing_since.get_or_insert(date);
            }
            E::ContactAttemptLogged { made_on, .. } => self.enquiries.push(Enquiry {
                sequence: self.version,
                home_visit: false,
                date: made_on,
            }),
            E::HomeVisitLogged { visited_on, .. } => self.enquiries.push(Enquiry {
                sequence: self.version,
                home_visit: true,
                date: visited_on,
            }),
            E::ChildReportedMissing { since, .. } => {
                self.reported_missing = true;
                let earliest = self.missing_since.map_or(since, |known| known.min(since));
                self.missing_since = Some(earliest);
            }
            E::RemovedFromRoll {
                date,
                destination_urn,
                without_destination,
                ..
            } => {
                self.school_urn = None;
                if without_destination {
                    self.removed_without_destination = true;
                    self.missing_since.get_or_insert(date);
                } else if let Some(urn) = destination_urn {
                    self.set_destination(urn);
                }
            }
            E::CmeReferralRaised { .. } => self.referral = Referral::Raised,
            E::CmeReferralAccepted { .. } => self.referral = Referral::Accepted,
            E::CmeReferralReturned { .. } => self.referral = Referral::None,
            E::ChildLocated { school_urn, .. } => {
                self.referral = Referral::None;
                self.missing_since = None;
                self.reported_missing = false;
                self.removed_without_destination = false;
                if let Some(no_show) = self.no_show.as_mut() {
                    no_show.resolved = true;
                }
                if let Some(urn) = school_urn {
                    self.school_urn = Some(urn.clone());
                    self.arrived_at = Some(urn);
                    self.in_transition = false;
                }
            }
            E::SuspensionRecorded {
                academic_year,
                days_this_year,
                ..
            } => {
                self.suspension_days.insert(academic_year, days_this_year);
            }
            E::PermanentExclusionRecorded { .. } => self.permanently_excluded = true,
            E::TrackStepRecorded {
                track: TrackKind::PermanentExclusion,
                step: TrackStep::Reinstated,
                ..
            } => self.permanently_excluded = false,
            E::UpnReplaced {
                former_upn,
                new_upn,
            } => {
                self.former_upns.push(former_upn);
                if let Some(identity) = self.identity.as_mut() {
                    identity.upn = new_upn;
                }
            }
            E::EntryCorrected {
                sequence,
                corrected_type,
                corrected,
                ..
            } => self.apply_correction(sequence, &corrected_type, &corrected),
            E::TransitionInfoShared { .. }
            | E::TransitionConcernRecorded { .. }
            | E::TrackStepRecorded { .. } => {}
        }
    }
}

impl ChildCase {
    /// A new expected start: a new destination clears the arrival and the
    /// no-show bookkeeping of the old one (a no-show stays on record, and
    /// open, until resolved).
    fn set_destination(&mut self, urn: Urn) {
        if self.destination_urn.as_ref() != Some(&urn) {
            self.destination_confirmed = false;
            if self.arrived_at.as_ref() != Some(&urn) {
                self.arrived_at = None;
            }
            if self
                .no_show
                .as_ref()
                .is_some_and(|no_show| no_show.resolved)
            {
                self.no_show = None;
            }
        }
        self.destination_urn = Some(urn);
    }
}
