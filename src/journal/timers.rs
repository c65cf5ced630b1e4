//! Timer records (DESIGN.md §12): waits, delayed actions and digest windows the rules planned,
//! kept in the journal so they survive restarts and downtime. The journal stores and answers
//! them; what a timer means is decided above it (`plan::time`, `worker::timers`).

use serde::{Deserialize, Serialize};

use super::NewJob;
use crate::model::event::Timestamp;

/// What a timer holds back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TimerKind {
    /// A rule's `wait`: all its jobs, unless a cancelling event of the same order arrives.
    Wait,
    /// One action's `delay` (or an action postponed by quiet hours).
    Delay,
    /// A rule's `digest` window: the events collected so far.
    Digest,
}

impl TimerKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TimerKind::Wait => "wait",
            TimerKind::Delay => "delay",
            TimerKind::Digest => "digest",
        }
    }

    pub fn parse(s: &str) -> Option<TimerKind> {
        [TimerKind::Wait, TimerKind::Delay, TimerKind::Digest]
            .into_iter()
            .find(|k| k.as_str() == s)
    }
}

/// Where a timer stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TimerStatus {
    Pending,
    /// Its jobs were created.
    Fired,
    /// A later event of the order (`unless`) or someone (`timers cancel`) cancelled it.
    Cancelled,
    /// It came due but did not run: too late (`max_late`), `if_still` false, rule gone.
    Skipped,
}

impl TimerStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            TimerStatus::Pending => "pending",
            TimerStatus::Fired => "fired",
            TimerStatus::Cancelled => "cancelled",
            TimerStatus::Skipped => "skipped",
        }
    }

    pub fn parse(s: &str) -> Option<TimerStatus> {
        [
            TimerStatus::Pending,
            TimerStatus::Fired,
            TimerStatus::Cancelled,
            TimerStatus::Skipped,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

/// A timer the rules planned for one event, created in the event's transaction.
#[derive(Debug, Clone, PartialEq)]
pub struct NewTimer {
    pub rule: String,
    pub kind: TimerKind,
    /// The action a `delay` timer holds (its `action_index` column); -1 for waits and digests.
    pub action_index: i64,
    pub due_at: Timestamp,
    /// The jobs created when it fires (rendered when planned); empty for a digest, whose
    /// actions are rendered when the window closes.
    pub jobs: Vec<NewJob>,
    /// Skip it when it fires later than this after `due_at` (ms; the rule's `max_late`).
    pub max_late_ms: Option<i64>,
    /// A Rhai expression checked at fire time against the order's latest event.
    pub if_still: Option<String>,
    /// Why it is due when it is (e.g. "postponed by quiet hours to 07:00 Europe/Berlin").
    pub note: Option<String>,
    /// A digest fires as soon as it holds this many events.
    pub digest_max: Option<u32>,
}

/// The timer side of one processed event: timers to create, and the `wait` rules whose pending
/// timers for the same order this event cancels.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TimerWrites {
    pub timers: Vec<NewTimer>,
    /// Rules whose `unless` this event matches, each with the reason recorded on the timers
    /// it cancels.
    pub cancels: Vec<(String, String)>,
    /// The event's source and order id: `unless` cancels timers of the same order only.
    pub source: String,
    pub order_id: Option<String>,
}

/// A stored timer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Timer {
    pub id: i64,
    pub event_id: String,
    pub rule: String,
    pub kind: TimerKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action_index: Option<usize>,
    pub source: String,
    pub order_id: Option<String>,
    pub status: TimerStatus,
    pub due_at: Timestamp,
    pub created_at: Timestamp,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<Timestamp>,
    /// Why it was cancelled or skipped, or why it is due when it is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub if_still: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_late_ms: Option<i64>,
    /// The events a digest collected (the first is `event_id`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<String>,
    /// The actions it runs when it fires.
    #[serde(skip)]
    pub jobs: Vec<NewJob>,
}

/// How the timer worker settles one due timer, in one transaction with its jobs.
#[derive(Debug, Clone, PartialEq)]
pub struct Firing {
    pub id: i64,
    pub outcome: Settle,
}

/// What becomes of a due timer.
#[derive(Debug, Clone, PartialEq)]
pub enum Settle {
    /// Fire it, creating these jobs (for waits and delays, the stored ones).
    Fire(Vec<NewJob>),
    /// Skip it, with the reason (`max_late`, `if_still` false, rule gone).
    Skip(String),
    /// Cancel it, with the reason: an `unless` event of its order is journaled (one that came
    /// before the wait started is only looked for when the wait comes due).
    Cancel(String),
}

impl Settle {
    /// The status the timer gets, and the reason stored with it.
    pub fn status(&self) -> (TimerStatus, Option<&str>) {
        match self {
            Settle::Fire(_) => (TimerStatus::Fired, None),
            Settle::Skip(reason) => (TimerStatus::Skipped, Some(reason)),
            Settle::Cancel(reason) => (TimerStatus::Cancelled, Some(reason)),
        }
    }

    /// The jobs to create (none unless it fires).
    pub fn jobs(&self) -> &[NewJob] {
        match self {
            Settle::Fire(jobs) => jobs,
            Settle::Skip(_) | Settle::Cancel(_) => &[],
        }
    }
}

/// Which timers a listing shows.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TimerFilter {
    pub status: Option<TimerStatus>,
    pub order_id: Option<String>,
    pub event_id: Option<String>,
    pub limit: usize,
}
