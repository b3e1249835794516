//! Tracks: structured sequences of steps with statutory deadlines.
//!
//! A track (suspension, permanent exclusion, CME) is opened by an event, and
//! each later step closes some due steps and may open others. The due dates
//! are computed when the event is decided, with that day's calendar, and
//! stored in the event: replaying the log never needs the calendar, and a
//! calendar changed later does not move a deadline already set.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::services::{SchoolCalendar, statutory};

/// The kinds of track.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum TrackKind {
    Suspension,
    PermanentExclusion,
    Cme,
}

impl TrackKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Suspension => "suspension",
            Self::PermanentExclusion => "permanent_exclusion",
            Self::Cme => "cme",
        }
    }
}

/// The steps a track may record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum TrackStep {
    /// CME: the school's reasonable enquiries and its referral to the LA.
    EnquiriesAndReferral,
    /// CME: the LA accepts or returns the referral.
    LaDecision,
    /// Exclusions: the governing board considers reinstatement.
    GoverningBoardReview,
    /// Exclusions: the parents apply for an independent review.
    IndependentReviewRequested,
    /// Exclusions: the independent review panel meets and decides.
    IndependentReviewPanel,
    /// Exclusions: the panel upheld the board's decision (closes the track).
    PanelUpheld,
    /// Exclusions: the panel recommended the board reconsider.
    PanelRecommendedReconsideration,
    /// Exclusions: the panel quashed the board's decision.
    PanelQuashed,
    /// Exclusions: the board reconsidered (closes the track).
    BoardReconsideration,
    /// Exclusions: the pupil was reinstated (closes the track).
    Reinstated,
    /// Any track: closed with a note, no further steps.
    TrackClosed,
}

impl TrackStep {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::EnquiriesAndReferral => "enquiries_and_referral",
            Self::LaDecision => "la_decision",
            Self::GoverningBoardReview => "governing_board_review",
            Self::IndependentReviewRequested => "independent_review_requested",
            Self::IndependentReviewPanel => "independent_review_panel",
            Self::PanelUpheld => "panel_upheld",
            Self::PanelRecommendedReconsideration => "panel_recommended_reconsideration",
            Self::PanelQuashed => "panel_quashed",
            Self::BoardReconsideration => "board_reconsideration",
            Self::Reinstated => "reinstated",
            Self::TrackClosed => "track_closed",
        }
    }
}

/// A step that must happen by a date.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DueStep {
    pub step: TrackStep,
    pub due_on: NaiveDate,
}

/// What one event did to one track. Carried inside events so that readers
/// (and the aggregate's `apply`) never recompute deadlines.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TrackUpdate {
    pub track: TrackKind,
    /// The event opened this track.
    #[serde(default)]
    pub opened: bool,
    /// Due steps this event completed.
    #[serde(default)]
    pub completed: Vec<TrackStep>,
    /// Steps this event made due, with their deadlines.
    #[serde(default)]
    pub due: Vec<DueStep>,
    /// The event closed the track; any remaining due steps lapse.
    #[serde(default)]
    pub closed: bool,
}

impl TrackUpdate {
    pub fn open(track: TrackKind, due: Vec<DueStep>) -> Self {
        Self {
            track,
            opened: true,
            completed: Vec::new(),
            due,
            closed: false,
        }
    }
}

/// One track's state inside the aggregate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Track {
    pub kind: TrackKind,
    pub due: Vec<DueStep>,
}

/// The open tracks of a case; at most one per kind.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tracks {
    pub open: Vec<Track>,
}

impl Tracks {
    pub fn get(&self, kind: TrackKind) -> Option<&Track> {
        self.open.iter().find(|track| track.kind == kind)
    }

    pub fn is_open(&self, kind: TrackKind) -> bool {
        self.get(kind).is_some()
    }

    /// Applies an update exactly as recorded; never validates.
    pub fn apply(&mut self, update: &TrackUpdate) {
        if update.opened && !self.is_open(update.track) {
            self.open.push(Track {
                kind: update.track,
                due: Vec::new(),
            });
        }
        if let Some(track) = self.open.iter_mut().find(|t| t.kind == update.track) {
            track
                .due
                .retain(|due| !update.completed.contains(&due.step));
            track.due.extend(update.due.iter().cloned());
        }
        if update.closed {
            self.open.retain(|track| track.kind != update.track);
        }
    }

    /// Every open step due before `today`, oldest first.
    pub fn overdue(&self, today: NaiveDate) -> Vec<(TrackKind, DueStep)> {
        let mut overdue: Vec<_> = self
            .open
            .iter()
            .flat_map(|track| track.due.iter().map(move |due| (track.kind, due.clone())))
            .filter(|(_, due)| due.due_on < today)
            .collect();
        overdue.sort_by_key(|(_, due)| due.due_on);
        overdue
    }
}

/// Why a step cannot be recorded on a track.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepRefusal {
    TrackNotOpen,
    NotExpected,
}

/// Decides what recording `step` on `date` does to the open track `track`.
pub fn decide_step(
    track: Option<&Track>,
    kind: TrackKind,
    step: TrackStep,
    date: NaiveDate,
    calendar: &SchoolCalendar,
) -> Result<TrackUpdate, StepRefusal> {
    use TrackStep::*;
    let track = track.ok_or(StepRefusal::TrackNotOpen)?;
    let is_due = |wanted: TrackStep| track.due.iter().any(|due| due.step == wanted);
    let mut update = TrackUpdate {
        track: kind,
        opened: false,
        completed: Vec::new(),
        due: Vec::new(),
        closed: false,
    };
    let due_in = |step: TrackStep, days: u32| DueStep {
        step,
        due_on: calendar.add_school_days(date, days),
    };
    match (kind, step) {
        (_, TrackClosed) => update.closed = true,
        (TrackKind::Cme, EnquiriesAndReferral | LaDecision) if is_due(step) => {
            update.completed.push(step);
        }
        (TrackKind::Suspension | TrackKind::PermanentExclusion, GoverningBoardReview)
            if is_due(step) =>
        {
            update.completed.push(step);
            if kind == TrackKind::Suspension {
                update.closed = true;
            }
        }
        (TrackKind::PermanentExclusion, IndependentReviewRequested)
            if !is_due(GoverningBoardReview) && !is_due(IndependentReviewPanel) =>
        {
            update
                .due
                .push(due_in(IndependentReviewPanel, statutory::REVIEW_PANEL_DAYS));
        }
        (TrackKind::PermanentExclusion, PanelUpheld) if is_due(IndependentReviewPanel) => {
            update.completed.push(IndependentReviewPanel);
            update.closed = true;
        }
        (TrackKind::PermanentExclusion, PanelRecommendedReconsideration | PanelQuashed)
            if is_due(IndependentReviewPanel) =>
        {
            update.completed.push(IndependentReviewPanel);
            update.due.push(due_in(
                BoardReconsideration,
                statutory::RECONSIDERATION_DAYS,
            ));
        }
        (TrackKind::PermanentExclusion, BoardReconsideration) if is_due(step) => {
            update.completed.push(step);
            update.closed = true;
        }
        (TrackKind::Suspension | TrackKind::PermanentExclusion, Reinstated) => {
            update.completed = track.due.iter().map(|due| due.step).collect();
            update.closed = true;
        }
        _ => return Err(StepRefusal::NotExpected),
    }
    Ok(update)
}
