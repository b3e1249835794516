//! The business errors of a child case: one enum, each variant a named rule.

use chrono::NaiveDate;

use crate::values::Urn;

/// Why a command was refused. Nothing is appended when a command is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CaseError {
    #[error("the child is not registered")]
    NotRegistered,
    #[error("the child is already registered")]
    AlreadyRegistered,
    #[error("{field} is not valid: {detail}")]
    InvalidValue { field: &'static str, detail: String },
    #[error("{0} must not be empty")]
    MissingText(&'static str),
    #[error("{what} {date} is in the future")]
    DateInFuture { what: &'static str, date: NaiveDate },
    #[error("the child is already allocated to school {0}")]
    AlreadyAllocated(Urn),
    #[error("the child already has a destination school")]
    DestinationAlreadySet,
    #[error("an appeal for school {0} is already pending")]
    AppealAlreadyPending(Urn),
    #[error("no appeal is pending for school {0}")]
    NoAppealPending(Urn),
    #[error("the child has no destination school")]
    NoDestination,
    #[error("the child's destination is {current}, not {given}")]
    DestinationMismatch { current: Urn, given: Urn },
    #[error("school {0} is already the child's destination")]
    SameDestination(Urn),
    #[error("the child is not expected at school {0}")]
    NotExpectedAtSchool(Urn),
    #[error("a no-show at school {0} is already recorded for this start")]
    NoShowAlreadyRecorded(Urn),
    #[error("the child has already arrived at school {0}")]
    AlreadyArrived(Urn),
    #[error("the child is not on roll at school {0}")]
    NotOnRoll(Urn),
    #[error("removal on ground (a) must name the school the child is now registered at")]
    DestinationRequired,
    #[error("a removal from roll cannot be dated before today ({0})")]
    RetrospectiveRemoval(NaiveDate),
    #[error("reasonable enquiries are incomplete: missing {missing}")]
    EnquiriesIncomplete { missing: String },
    #[error("this LA's policy does not permit raising a referral without the required enquiries")]
    OverrideNotPermitted,
    #[error("the child is not currently missing")]
    NotMissing,
    #[error("the child is already reported missing")]
    AlreadyMissing,
    #[error("a CME referral is already open")]
    ReferralAlreadyOpen,
    #[error("no CME referral is awaiting a decision")]
    NoReferralAwaitingDecision,
    #[error("a located outcome of on_roll must name the school")]
    LocatedSchoolRequired,
    #[error("between 1 and 3 distinct reason codes are required")]
    ReasonCodeCount,
    #[error("a suspension must last at least one school day")]
    ZeroSchoolDays,
    #[error(
        "suspensions would total {would_be} school days this school year, over the cap of {cap}"
    )]
    SuspensionCapExceeded { would_be: u32, cap: u32 },
    #[error("the child is already permanently excluded")]
    AlreadyExcluded,
    #[error("no {0} track is open")]
    TrackNotOpen(&'static str),
    #[error("step {step} is not expected on the {track} track now")]
    StepNotExpected {
        track: &'static str,
        step: &'static str,
    },
    #[error("the current UPN is not temporary; only a temporary UPN is replaced")]
    UpnNotTemporary,
    #[error("the new UPN is the current one")]
    SameUpn,
    #[error("there is no entry with sequence {0}")]
    NoSuchEntry(u64),
    #[error("entry {sequence} ({entry}) has no correctable field {field}")]
    CorrectionNotApplicable {
        sequence: u64,
        entry: String,
        field: &'static str,
    },
    #[error("a correction must supply at least one corrected value")]
    NothingToCorrect,
}

impl CaseError {
    /// A stable, machine-readable code for the rule refused.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotRegistered => "not_registered",
            Self::AlreadyRegistered => "already_registered",
            Self::InvalidValue { .. } => "invalid_value",
            Self::MissingText(_) => "missing_text",
            Self::DateInFuture { .. } => "date_in_future",
            Self::AlreadyAllocated(_) => "already_allocated",
            Self::DestinationAlreadySet => "destination_already_set",
            Self::AppealAlreadyPending(_) => "appeal_already_pending",
            Self::NoAppealPending(_) => "no_appeal_pending",
            Self::NoDestination => "no_destination",
            Self::DestinationMismatch { .. } => "destination_mismatch",
            Self::SameDestination(_) => "same_destination",
            Self::NotExpectedAtSchool(_) => "not_expected_at_school",
            Self::NoShowAlreadyRecorded(_) => "no_show_already_recorded",
            Self::AlreadyArrived(_) => "already_arrived",
            Self::NotOnRoll(_) => "not_on_roll",
            Self::DestinationRequired => "destination_required",
            Self::RetrospectiveRemoval(_) => "retrospective_removal",
            Self::EnquiriesIncomplete { .. } => "enquiries_incomplete",
            Self::OverrideNotPermitted => "override_not_permitted",
            Self::NotMissing => "not_missing",
            Self::AlreadyMissing => "already_missing",
            Self::ReferralAlreadyOpen => "referral_already_open",
            Self::NoReferralAwaitingDecision => "no_referral_awaiting_decision",
            Self::LocatedSchoolRequired => "located_school_required",
            Self::ReasonCodeCount => "reason_code_count",
            Self::ZeroSchoolDays => "zero_school_days",
            Self::SuspensionCapExceeded { .. } => "suspension_cap_exceeded",
            Self::AlreadyExcluded => "already_excluded",
            Self::TrackNotOpen(_) => "track_not_open",
            Self::StepNotExpected { .. } => "step_not_expected",
            Self::UpnNotTemporary => "upn_not_temporary",
            Self::SameUpn => "same_upn",
            Self::NoSuchEntry(_) => "no_such_entry",
            Self::CorrectionNotApplicable { .. } => "correction_not_applicable",
            Self::NothingToCorrect => "nothing_to_correct",
        }
    }
}
