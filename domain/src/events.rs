//! The events of a child's case: the stored contract.
//!
//! Each event is past tense, its `event_type()` is its variant name, and it
//! carries what a reader needs years later without looking anything else up
//! (both URNs of a destination change, the deadlines a step opened). A change
//! of shape bumps `EVENT_VERSION` and comes with a cqrs-es upcaster; see
//! `docs/events.md`.

use chrono::NaiveDate;
use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};

use crate::commands::{
    AppealOutcome, ConcernCategory, ContactMethod, ContactOutcome, Corrections, HomeVisitOutcome,
    LocatedOutcome,
};
use crate::tracks::{TrackKind, TrackStep, TrackUpdate};
use crate::values::{ExclusionReason, LaCode, Name, RemovalGround, Sen, Upn, Urn};

/// The version every event is written at today.
pub const EVENT_VERSION: &str = "1.0";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(no_recursion))]
pub enum ChildEvent {
    ChildRegistered {
        #[cfg_attr(feature = "openapi", schema(value_type = String))]
        upn: Upn,
        #[cfg_attr(feature = "openapi", schema(value_type = String))]
        given_name: Name,
        #[cfg_attr(feature = "openapi", schema(value_type = String))]
        family_name: Name,
        date_of_birth: NaiveDate,
        #[cfg_attr(feature = "openapi", schema(value_type = String))]
        la_code: LaCode,
        #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
        school_urn: Option<Urn>,
        year_group: Option<u8>,
        #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
        sen: Option<Sen>,
        on: NaiveDate,
    },
    PupilAllocated {
        #[cfg_attr(feature = "openapi", schema(value_type = String))]
        school_urn: Urn,
        /// The destination this allocation replaces, if any.
        #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
        previous_urn: Option<Urn>,
        /// Allocated because an appeal for this school was upheld.
        via_appeal: bool,
        on: NaiveDate,
    },
    NoPlaceAllocated {
        on: NaiveDate,
    },
    AppealLodged {
        #[cfg_attr(feature = "openapi", schema(value_type = String))]
        school_urn: Urn,
        on: NaiveDate,
    },
    AppealDecided {
        #[cfg_attr(feature = "openapi", schema(value_type = String))]
        school_urn: Urn,
        outcome: AppealOutcome,
        on: NaiveDate,
    },
    DestinationConfirmed {
        #[cfg_attr(feature = "openapi", schema(value_type = String))]
        school_urn: Urn,
        on: NaiveDate,
    },
    DestinationChanged {
        #[cfg_attr(feature = "openapi", schema(value_type = String))]
        from_urn: Urn,
        #[cfg_attr(feature = "openapi", schema(value_type = String))]
        to_urn: Urn,
        reason: String,
        on: NaiveDate,
    },
    TransitionInfoShared {
        /// The destination school the information is for.
        #[cfg_attr(feature = "openapi", schema(value_type = String))]
        school_urn: Urn,
        /// The school the child is on roll at, which shared it.
        #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
        from_urn: Option<Urn>,
        #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
        sen: Option<Sen>,
        semh: bool,
        safeguarding: bool,
        summary: String,
        strategies: String,
        on: NaiveDate,
    },
    TransitionConcernRecorded {
        category: ConcernCategory,
        notes: String,
        on: NaiveDate,
    },
    PupilArrived {
        #[cfg_attr(feature = "openapi", schema(value_type = String))]
        school_urn: Urn,
        date: NaiveDate,
        /// This arrival resolved a day-one no-show at the same school.
        resolved_no_show: bool,
        /// Closes the CME track when the resolved no-show was the only
        /// reason the child was missing. Added after 1.0 as an optional
        /// field, so older payloads without it still read (as `null`).
        #[serde(default)]
        track: Option<TrackUpdate>,
    },
    NoShowOnDayOne {
        #[cfg_attr(feature = "openapi", schema(value_type = String))]
        school_urn: Urn,
        date: NaiveDate,
        /// Opens the CME track (absent when one is already open).
        track: Option<TrackUpdate>,
    },
    ContactAttemptLogged {
        method: ContactMethod,
        outcome: ContactOutcome,
        notes: String,
        made_on: NaiveDate,
    },
    HomeVisitLogged {
        visited_on: NaiveDate,
        outcome: HomeVisitOutcome,
        notes: String,
    },
    ChildReportedMissing {
        since: NaiveDate,
        circumstances: String,
        /// The school the child was on roll at or expected at.
        #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
        school_urn: Option<Urn>,
        track: Option<TrackUpdate>,
    },
    RemovedFromRoll {
        #[cfg_attr(feature = "openapi", schema(value_type = String))]
        school_urn: Urn,
        #[cfg_attr(feature = "openapi", schema(value_type = String))]
        ground: RemovalGround,
        date: NaiveDate,
        #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
        destination_urn: Option<Urn>,
        /// No school and no ground that accounts for the child: the child is
        /// now missing education, and the CME track opens.
        without_destination: bool,
        track: Option<TrackUpdate>,
    },
    CmeReferralRaised {
        reason: String,
        override_reason: Option<String>,
        /// The evidence present when the referral was raised.
        contact_attempts: u32,
        home_visits: u32,
        on: NaiveDate,
        track: Option<TrackUpdate>,
    },
    CmeReferralAccepted {
        notes: String,
        on: NaiveDate,
        track: Option<TrackUpdate>,
    },
    CmeReferralReturned {
        reason: String,
        on: NaiveDate,
        track: Option<TrackUpdate>,
    },
    ChildLocated {
        outcome: LocatedOutcome,
        #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
        school_urn: Option<Urn>,
        #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
        la_code: Option<LaCode>,
        notes: String,
        on: NaiveDate,
        track: Option<TrackUpdate>,
    },
    SuspensionRecorded {
        start: NaiveDate,
        school_days: u32,
        /// The last school day of the suspension.
        end: NaiveDate,
        #[cfg_attr(feature = "openapi", schema(value_type = Vec<String>))]
        reasons: Vec<ExclusionReason>,
        /// The school year (named by its first calendar year) and its running total.
        academic_year: i32,
        days_this_year: u32,
        track: Option<TrackUpdate>,
    },
    PermanentExclusionRecorded {
        date: NaiveDate,
        #[cfg_attr(feature = "openapi", schema(value_type = Vec<String>))]
        reasons: Vec<ExclusionReason>,
        track: TrackUpdate,
    },
    TrackStepRecorded {
        track: TrackKind,
        step: TrackStep,
        date: NaiveDate,
        notes: String,
        update: TrackUpdate,
    },
    UpnReplaced {
        #[cfg_attr(feature = "openapi", schema(value_type = String))]
        former_upn: Upn,
        #[cfg_attr(feature = "openapi", schema(value_type = String))]
        new_upn: Upn,
    },
    EntryCorrected {
        /// The sequence number of the corrected entry; the entry itself stays in the history.
        sequence: u64,
        /// The corrected entry's event type, so a reader needs no lookup.
        corrected_type: String,
        reason: String,
        corrected: Corrections,
    },
}

impl ChildEvent {
    /// The event's name, as stored in `event_type`.
    pub fn name(&self) -> &'static str {
        match self {
            Self::ChildRegistered { .. } => "ChildRegistered",
            Self::PupilAllocated { .. } => "PupilAllocated",
            Self::NoPlaceAllocated { .. } => "NoPlaceAllocated",
            Self::AppealLodged { .. } => "AppealLodged",
            Self::AppealDecided { .. } => "AppealDecided",
            Self::DestinationConfirmed { .. } => "DestinationConfirmed",
            Self::DestinationChanged { .. } => "DestinationChanged",
            Self::TransitionInfoShared { .. } => "TransitionInfoShared",
            Self::TransitionConcernRecorded { .. } => "TransitionConcernRecorded",
            Self::PupilArrived { .. } => "PupilArrived",
            Self::NoShowOnDayOne { .. } => "NoShowOnDayOne",
            Self::ContactAttemptLogged { .. } => "ContactAttemptLogged",
            Self::HomeVisitLogged { .. } => "HomeVisitLogged",
            Self::ChildReportedMissing { .. } => "ChildReportedMissing",
            Self::RemovedFromRoll { .. } => "RemovedFromRoll",
            Self::CmeReferralRaised { .. } => "CmeReferralRaised",
            Self::CmeReferralAccepted { .. } => "CmeReferralAccepted",
            Self::CmeReferralReturned { .. } => "CmeReferralReturned",
            Self::ChildLocated { .. } => "ChildLocated",
            Self::SuspensionRecorded { .. } => "SuspensionRecorded",
            Self::PermanentExclusionRecorded { .. } => "PermanentExclusionRecorded",
            Self::TrackStepRecorded { .. } => "TrackStepRecorded",
            Self::UpnReplaced { .. } => "UpnReplaced",
            Self::EntryCorrected { .. } => "EntryCorrected",
        }
    }

    /// Every event name, for documentation and the catalogue test.
    pub const NAMES: &'static [&'static str] = &[
        "ChildRegistered",
        "PupilAllocated",
        "NoPlaceAllocated",
        "AppealLodged",
        "AppealDecided",
        "DestinationConfirmed",
        "DestinationChanged",
        "TransitionInfoShared",
        "TransitionConcernRecorded",
        "PupilArrived",
        "NoShowOnDayOne",
        "ContactAttemptLogged",
        "HomeVisitLogged",
        "ChildReportedMissing",
        "RemovedFromRoll",
        "CmeReferralRaised",
        "CmeReferralAccepted",
        "CmeReferralReturned",
        "ChildLocated",
        "SuspensionRecorded",
        "PermanentExclusionRecorded",
        "TrackStepRecorded",
        "UpnReplaced",
        "EntryCorrected",
    ];

    /// The track update this event carries, if any.
    pub fn track_update(&self) -> Option<&TrackUpdate> {
        match self {
            Self::PupilArrived { track, .. }
            | Self::NoShowOnDayOne { track, .. }
            | Self::ChildReportedMissing { track, .. }
            | Self::RemovedFromRoll { track, .. }
            | Self::CmeReferralRaised { track, .. }
            | Self::CmeReferralAccepted { track, .. }
            | Self::CmeReferralReturned { track, .. }
            | Self::ChildLocated { track, .. }
            | Self::SuspensionRecorded { track, .. } => track.as_ref(),
            Self::PermanentExclusionRecorded { track, .. } => Some(track),
            Self::TrackStepRecorded { update, .. } => Some(update),
            _ => None,
        }
    }

    /// The date the event says it happened on, for reports and watchlist
    /// `since` values.
    pub fn date(&self) -> Option<NaiveDate> {
        match self {
            Self::ChildRegistered { on, .. }
            | Self::PupilAllocated { on, .. }
            | Self::NoPlaceAllocated { on }
            | Self::AppealLodged { on, .. }
            | Self::AppealDecided { on, .. }
            | Self::DestinationConfirmed { on, .. }
            | Self::DestinationChanged { on, .. }
            | Self::TransitionInfoShared { on, .. }
            | Self::TransitionConcernRecorded { on, .. }
            | Self::CmeReferralRaised { on, .. }
            | Self::CmeReferralAccepted { on, .. }
            | Self::CmeReferralReturned { on, .. }
            | Self::ChildLocated { on, .. } => Some(*on),
            Self::PupilArrived { date, .. }
            | Self::NoShowOnDayOne { date, .. }
            | Self::RemovedFromRoll { date, .. }
            | Self::PermanentExclusionRecorded { date, .. }
            | Self::TrackStepRecorded { date, .. } => Some(*date),
            Self::ContactAttemptLogged { made_on, .. } => Some(*made_on),
            Self::HomeVisitLogged { visited_on, .. } => Some(*visited_on),
            Self::ChildReportedMissing { since, .. } => Some(*since),
            Self::SuspensionRecorded { start, .. } => Some(*start),
            Self::UpnReplaced { .. } | Self::EntryCorrected { .. } => None,
        }
    }
}

/// Which fields a correction may set on an entry of this event type.
pub fn correctable_fields(event_type: &str) -> &'static [&'static str] {
    match event_type {
        "ChildRegistered" => &[
            "given_name",
            "family_name",
            "date_of_birth",
            "year_group",
            "sen",
        ],
        "TransitionConcernRecorded" | "ChildLocated" | "TrackStepRecorded" => &["notes"],
        "ContactAttemptLogged" | "HomeVisitLogged" => &["date", "notes"],
        "PupilArrived" | "NoShowOnDayOne" => &["date"],
        _ => &[],
    }
}

impl DomainEvent for ChildEvent {
    fn event_type(&self) -> String {
        self.name().to_owned()
    }

    fn event_version(&self) -> String {
        EVENT_VERSION.to_owned()
    }
}
