//! The commands a child case accepts. Their names are a contract: the HTTP
//! API exposes each variant's name as the `type` field of a command body.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::tracks::{TrackKind, TrackStep};
use crate::values::{ExclusionReason, LaCode, Name, RemovalGround, Sen, Upn, Urn};

/// How a contact attempt was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum ContactMethod {
    Phone,
    Email,
    Letter,
    Text,
    InPerson,
    Other,
}

/// What a contact attempt achieved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum ContactOutcome {
    NoAnswer,
    MessageLeft,
    SpokeToParent,
    SpokeToChild,
    Other,
}

/// What a home visit found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum HomeVisitOutcome {
    NoAnswer,
    SeenChild,
    SpokeToParent,
    PropertyEmpty,
    MovedAway,
    Other,
}

/// The outcome of a school admission appeal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum AppealOutcome {
    Upheld,
    Dismissed,
}

/// Where a missing child was found to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum LocatedOutcome {
    /// On roll at a school: `school_urn` names it.
    OnRoll,
    ElectiveHomeEducation,
    /// Moved to another LA: `la_code` names it when known.
    MovedToAnotherLa,
    MovedAbroad,
    Other,
}

/// What staff saw in transition lessons and role-plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum ConcernCategory {
    Anxiety,
    Attendance,
    Behaviour,
    Friendships,
    Learning,
    Safeguarding,
    Other,
}

/// Values a correction supplies; only the fields the corrected entry has may be set.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Corrections {
    /// `ChildRegistered` only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub given_name: Option<Name>,
    /// `ChildRegistered` only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub family_name: Option<Name>,
    /// `ChildRegistered` only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date_of_birth: Option<NaiveDate>,
    /// `ChildRegistered` only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub year_group: Option<u8>,
    /// `ChildRegistered` only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub sen: Option<Sen>,
    /// The date of a dated entry: a contact attempt, home visit, arrival, no-show, ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date: Option<NaiveDate>,
    /// The notes of an entry that has notes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
}

impl Corrections {
    pub fn is_empty(&self) -> bool {
        self == &Self::default()
    }

    /// The names of the fields this correction sets.
    pub fn fields(&self) -> Vec<&'static str> {
        let mut fields = Vec::new();
        let mut push = |set: bool, name| {
            if set {
                fields.push(name);
            }
        };
        push(self.given_name.is_some(), "given_name");
        push(self.family_name.is_some(), "family_name");
        push(self.date_of_birth.is_some(), "date_of_birth");
        push(self.year_group.is_some(), "year_group");
        push(self.sen.is_some(), "sen");
        push(self.date.is_some(), "date");
        push(self.notes.is_some(), "notes");
        fields
    }
}

/// One command to a child's case. Over the wire it is a JSON object whose
/// `type` is the variant name and whose other fields are the variant's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum ChildCommand {
    RegisterChild {
        #[cfg_attr(feature = "openapi", schema(value_type = String, example = "B801200005001"))]
        upn: Upn,
        #[cfg_attr(feature = "openapi", schema(value_type = String))]
        given_name: Name,
        #[cfg_attr(feature = "openapi", schema(value_type = String))]
        family_name: Name,
        date_of_birth: NaiveDate,
        #[cfg_attr(feature = "openapi", schema(value_type = String, example = "330"))]
        la_code: LaCode,
        #[serde(default)]
        #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, example = "100002"))]
        school_urn: Option<Urn>,
        #[serde(default)]
        year_group: Option<u8>,
        #[serde(default)]
        #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
        sen: Option<Sen>,
    },
    AllocatePupil {
        #[cfg_attr(feature = "openapi", schema(value_type = String))]
        school_urn: Urn,
    },
    RecordNoAllocation {},
    LodgeAppeal {
        #[cfg_attr(feature = "openapi", schema(value_type = String))]
        school_urn: Urn,
    },
    DecideAppeal {
        #[cfg_attr(feature = "openapi", schema(value_type = String))]
        school_urn: Urn,
        outcome: AppealOutcome,
    },
    ConfirmDestination {
        #[cfg_attr(feature = "openapi", schema(value_type = String))]
        school_urn: Urn,
    },
    ChangeDestination {
        #[cfg_attr(feature = "openapi", schema(value_type = String))]
        school_urn: Urn,
        reason: String,
    },
    ShareTransitionInfo {
        /// The destination school the information is shared with.
        #[cfg_attr(feature = "openapi", schema(value_type = String))]
        school_urn: Urn,
        #[serde(default)]
        #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
        sen: Option<Sen>,
        /// Social, emotional and mental health needs.
        #[serde(default)]
        semh: bool,
        /// A safeguarding context the new school should know of.
        #[serde(default)]
        safeguarding: bool,
        summary: String,
        #[serde(default)]
        strategies: String,
    },
    RecordTransitionConcern {
        category: ConcernCategory,
        notes: String,
    },
    RecordArrival {
        #[cfg_attr(feature = "openapi", schema(value_type = String))]
        school_urn: Urn,
        date: NaiveDate,
    },
    RecordNoShow {
        #[cfg_attr(feature = "openapi", schema(value_type = String))]
        school_urn: Urn,
        date: NaiveDate,
    },
    LogContactAttempt {
        method: ContactMethod,
        outcome: ContactOutcome,
        #[serde(default)]
        notes: String,
        /// Defaults to the day the command is recorded.
        #[serde(default)]
        made_on: Option<NaiveDate>,
    },
    LogHomeVisit {
        visited_on: NaiveDate,
        outcome: HomeVisitOutcome,
        #[serde(default)]
        notes: String,
    },
    ReportChildMissing {
        since: NaiveDate,
        circumstances: String,
    },
    RemoveFromRoll {
        #[cfg_attr(feature = "openapi", schema(value_type = String))]
        school_urn: Urn,
        #[cfg_attr(feature = "openapi", schema(value_type = String, example = "i"))]
        ground: RemovalGround,
        date: NaiveDate,
        #[serde(default)]
        #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
        destination_urn: Option<Urn>,
    },
    RaiseCmeReferral {
        reason: String,
        #[serde(default)]
        override_reason: Option<String>,
    },
    AcceptCmeReferral {
        #[serde(default)]
        notes: String,
    },
    ReturnCmeReferral {
        reason: String,
    },
    RecordChildLocated {
        outcome: LocatedOutcome,
        #[serde(default)]
        #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
        school_urn: Option<Urn>,
        #[serde(default)]
        #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
        la_code: Option<LaCode>,
        #[serde(default)]
        notes: String,
    },
    RecordSuspension {
        start: NaiveDate,
        school_days: u32,
        #[cfg_attr(feature = "openapi", schema(value_type = Vec<String>, example = json!(["DB"])))]
        reasons: Vec<ExclusionReason>,
    },
    RecordPermanentExclusion {
        date: NaiveDate,
        #[cfg_attr(feature = "openapi", schema(value_type = Vec<String>))]
        reasons: Vec<ExclusionReason>,
    },
    RecordTrackStep {
        track: TrackKind,
        step: TrackStep,
        date: NaiveDate,
        #[serde(default)]
        notes: String,
    },
    ReplaceUpn {
        #[cfg_attr(feature = "openapi", schema(value_type = String))]
        new_upn: Upn,
    },
    CorrectEntry {
        /// The sequence number of the entry corrected, from the child's history.
        sequence: u64,
        reason: String,
        corrected: Corrections,
    },
}

impl ChildCommand {
    /// The command's name, as used in the `type` field.
    pub fn name(&self) -> &'static str {
        match self {
            Self::RegisterChild { .. } => "RegisterChild",
            Self::AllocatePupil { .. } => "AllocatePupil",
            Self::RecordNoAllocation {} => "RecordNoAllocation",
            Self::LodgeAppeal { .. } => "LodgeAppeal",
            Self::DecideAppeal { .. } => "DecideAppeal",
            Self::ConfirmDestination { .. } => "ConfirmDestination",
            Self::ChangeDestination { .. } => "ChangeDestination",
            Self::ShareTransitionInfo { .. } => "ShareTransitionInfo",
            Self::RecordTransitionConcern { .. } => "RecordTransitionConcern",
            Self::RecordArrival { .. } => "RecordArrival",
            Self::RecordNoShow { .. } => "RecordNoShow",
            Self::LogContactAttempt { .. } => "LogContactAttempt",
            Self::LogHomeVisit { .. } => "LogHomeVisit",
            Self::ReportChildMissing { .. } => "ReportChildMissing",
            Self::RemoveFromRoll { .. } => "RemoveFromRoll",
            Self::RaiseCmeReferral { .. } => "RaiseCmeReferral",
            Self::AcceptCmeReferral { .. } => "AcceptCmeReferral",
            Self::ReturnCmeReferral { .. } => "ReturnCmeReferral",
            Self::RecordChildLocated { .. } => "RecordChildLocated",
            Self::RecordSuspension { .. } => "RecordSuspension",
            Self::RecordPermanentExclusion { .. } => "RecordPermanentExclusion",
            Self::RecordTrackStep { .. } => "RecordTrackStep",
            Self::ReplaceUpn { .. } => "ReplaceUpn",
            Self::CorrectEntry { .. } => "CorrectEntry",
        }
    }

    /// Every command name, for error messages and documentation.
    pub const NAMES: &'static [&'static str] = &[
        "RegisterChild",
        "AllocatePupil",
        "RecordNoAllocation",
        "LodgeAppeal",
        "DecideAppeal",
        "ConfirmDestination",
        "ChangeDestination",
        "ShareTransitionInfo",
        "RecordTransitionConcern",
        "RecordArrival",
        "RecordNoShow",
        "LogContactAttempt",
        "LogHomeVisit",
        "ReportChildMissing",
        "RemoveFromRoll",
        "RaiseCmeReferral",
        "AcceptCmeReferral",
        "ReturnCmeReferral",
        "RecordChildLocated",
        "RecordSuspension",
        "RecordPermanentExclusion",
        "RecordTrackStep",
        "ReplaceUpn",
        "CorrectEntry",
    ];

    /// The school a command speaks for, where it names one: access control
    /// checks a school token against it.
    pub fn school_urn(&self) -> Option<&Urn> {
        match self {
            Self::RegisterChild { school_urn, .. } => school_urn.as_ref(),
            Self::AllocatePupil { school_urn }
            | Self::LodgeAppeal { school_urn }
            | Self::DecideAppeal { school_urn, .. }
            | Self::ConfirmDestination { school_urn }
            | Self::ChangeDestination { school_urn, .. }
            | Self::RecordArrival { school_urn, .. }
            | Self::RecordNoShow { school_urn, .. }
            | Self::RemoveFromRoll { school_urn, .. } => Some(school_urn),
            _ => None,
        }
    }
}
