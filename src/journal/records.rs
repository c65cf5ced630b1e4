//! The records the journal stores and answers with: events, jobs, attempts, flags, and the
//! outcome of planning one event.

use serde::Serialize;

use crate::model::event::Timestamp;

/// What happened to one appended delivery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Appended {
    pub event_id: String,
    /// True when an earlier delivery with the same dedupe key is inside the window: no new event.
    pub duplicate: bool,
}

/// One line of `storeflow events`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EventSummary {
    pub id: String,
    pub source: String,
    pub shop: String,
    pub kind: String,
    pub topic: String,
    pub canonical: Option<String>,
    pub received_at: Timestamp,
    pub order_id: Option<String>,
    pub status: EventStatus,
    /// Why the event was quarantined (only for quarantined events).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Where an event stands in the pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EventStatus {
    /// Journaled, waiting for the pipeline.
    Unprocessed,
    /// The rules ran; its trace and jobs are stored.
    Processed,
    /// It could not be read back or planned: set aside with the reason so it blocks no other
    /// event, until someone re-queues it (`storeflow events retry`).
    Quarantined,
}

impl EventStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            EventStatus::Unprocessed => "unprocessed",
            EventStatus::Processed => "processed",
            EventStatus::Quarantined => "quarantined",
        }
    }

    pub fn parse(s: &str) -> Option<EventStatus> {
        [
            EventStatus::Unprocessed,
            EventStatus::Processed,
            EventStatus::Quarantined,
        ]
        .into_iter()
        .find(|j| j.as_str() == s)
    }
}

/// A journaled event that cannot be turned back into an [`Event`] (a corrupt row), or that the
/// pipeline could not plan: what gets quarantined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unreadable {
    pub event_id: String,
    pub reason: String,
}

/// Which quarantined events `storeflow events retry` hands back to the pipeline.
#[derive(Debug, Clone, PartialEq)]
pub enum Release {
    One(String),
    AllQuarantined,
}

/// How many journaled events one secret of one shop verified, and the latest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SecretCount {
    pub source: String,
    pub shop: String,
    /// `current`, `previous` or `none`.
    pub secret: String,
    pub events: u64,
    pub last: Timestamp,
}

/// The outcome of running the rules on one event, committed in one transaction: the event is
/// marked processed, its trace stored and its jobs created. Committing the same event twice is a
/// no-op, so a crash between evaluation and commit cannot plan a job twice.
#[derive(Debug, Clone)]
pub struct Processed {
    pub event_id: String,
    /// What the rules decided and why (opaque to the journal), already in its stored form.
    pub trace: StoredTrace,
    pub jobs: Vec<NewJob>,
    /// Script state written while processing this event (`state_set`, `state_incr`).
    pub state: Vec<(String, serde_json::Value)>,
    /// The rules that fired (matched, script did not fail): what the API's `rule` filter finds.
    pub fired: Vec<String>,
    /// Timers created and cancelled by this event (DESIGN.md §12).
    pub timers: super::TimerWrites,
}

/// A trace as the journal stores it, encoded compactly when the event is planned (on the
/// pipeline's thread, not the writer's), so a round holds text, not JSON trees of hundreds of
/// candidate rules. [`Store::trace`](super::Store::trace) reads it back as the JSON it was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredTrace(String);

impl StoredTrace {
    /// Text already in the stored form (`plan::trace_store` writes it from the typed trace).
    pub fn from_text(text: String) -> StoredTrace {
        StoredTrace(text)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<&serde_json::Value> for StoredTrace {
    fn from(trace: &serde_json::Value) -> StoredTrace {
        StoredTrace(super::trace_codec::compact(trace))
    }
}

impl From<serde_json::Value> for StoredTrace {
    fn from(trace: serde_json::Value) -> StoredTrace {
        StoredTrace::from(&trace)
    }
}

/// A job to create. Its key is (event id, rule, action index).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NewJob {
    pub rule: String,
    pub action_index: usize,
    pub kind: String,
    pub params: serde_json::Value,
    /// Set when the job cannot run at all (e.g. its template failed to render): it is created
    /// dead with this error, so it shows up among the dead letters instead of vanishing.
    pub error: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum JobStatus {
    Pending,
    Running,
    Done,
    Dead,
    /// A dead letter someone looked at and set aside (`storeflow jobs dismiss`): not retried,
    /// no longer listed among the dead, pruned by retention like a finished job.
    Dismissed,
    /// A dead letter replaced by fresh jobs planned with the current rules
    /// (`storeflow jobs retry --replan`).
    Replanned,
}

impl JobStatus {
    /// Every status, in the order lists and gauges show them.
    pub const ALL: [JobStatus; 6] = [
        JobStatus::Pending,
        JobStatus::Running,
        JobStatus::Done,
        JobStatus::Dead,
        JobStatus::Dismissed,
        JobStatus::Replanned,
    ];

    /// Jobs per status for every status, 0 where `counted` (status text, jobs) has none: a gauge
    /// that dropped to none must say 0.
    pub fn each_counted(counted: &[(String, u64)]) -> Vec<(String, u64)> {
        JobStatus::ALL
            .iter()
            .map(|s| {
                let n = counted
                    .iter()
                    .find(|(c, _)| c == s.as_str())
                    .map_or(0, |c| c.1);
                (s.as_str().to_string(), n)
            })
            .collect()
    }

    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Pending => "pending",
            JobStatus::Running => "running",
            JobStatus::Done => "done",
            JobStatus::Dead => "dead",
            JobStatus::Dismissed => "dismissed",
            JobStatus::Replanned => "replanned",
        }
    }

    pub fn parse(s: &str) -> Option<JobStatus> {
        JobStatus::ALL.into_iter().find(|j| j.as_str() == s)
    }
}

/// A stored job.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Job {
    pub id: i64,
    pub event_id: String,
    pub rule: String,
    pub action_index: usize,
    pub kind: String,
    pub params: serde_json::Value,
    pub status: JobStatus,
    pub attempts: u32,
    pub next_at: Timestamp,
    pub last_error: Option<String>,
    pub created_at: Timestamp,
}

/// How one delivery attempt of a job ended, and what happens next.
#[derive(Debug, Clone, PartialEq)]
pub struct AttemptOutcome {
    pub job_id: i64,
    /// Which attempt this was (1-based): recording it again (after a commit whose outcome was
    /// unknown) changes nothing.
    pub attempt: u32,
    pub started_at: Timestamp,
    pub finished_at: Timestamp,
    /// The error of a failed attempt.
    pub error: Option<String>,
    pub next: NextStep,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum NextStep {
    Done,
    /// Try again at this time.
    Retry(Timestamp),
    /// Permanent failure or retries exhausted: a dead letter until someone re-queues it.
    Dead,
}

/// A stored attempt, for `storeflow jobs show`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Attempt {
    pub job_id: i64,
    pub number: u32,
    pub started_at: Timestamp,
    pub finished_at: Timestamp,
    /// `done`, `retry` or `dead`.
    pub outcome: String,
    pub error: Option<String>,
}

/// A flag on an order (e.g. a dispute), unique per (source, order, kind, rule): a second rule
/// flagging the same order with the same kind keeps its own note.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Flag {
    /// Assigned by the journal (0 in a flag not yet written).
    pub id: i64,
    pub source: String,
    pub order_id: String,
    pub kind: String,
    pub note: String,
    pub event_id: String,
    pub rule: String,
    pub created_at: Timestamp,
    /// When someone resolved it (`storeflow flags resolve`); open flags have none.
    pub resolved_at: Option<Timestamp>,
}

/// Which flags a listing shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlagFilter {
    Open,
    All,
}

/// A job the rules planned again for an event (`storeflow jobs retry --replan`): it replaces the
/// dead letters in `replaces`, and its rule key carries the replan marker (see
/// [`replan_rule_key`]) so it never collides with the original job's key.
#[derive(Debug, Clone, PartialEq)]
pub struct Replan {
    pub event_id: String,
    pub replaces: Vec<i64>,
    pub jobs: Vec<NewJob>,
}

/// The rule key of the `n`-th replan of `rule`'s jobs: `"{rule}@replan{n}"`. The job's
/// idempotency key (and so the email Message-ID and the `.eml` file name) differs from the
/// original's, because the replanned message may differ too.
pub fn replan_rule_key(rule: &str, n: u32) -> String {
    format!("{rule}@replan{n}")
}

/// The rule key of the `n`-th replay of `rule`'s jobs (`POST /api/events/{id}/replay`):
/// `"{rule}@replay{n}"`, so the key says the job is a replay and never collides with the
/// original's.
pub fn replay_rule_key(rule: &str, n: u32) -> String {
    format!("{rule}@replay{n}")
}

/// The rule a (possibly replanned or replayed) job key belongs to.
pub fn base_rule(rule_key: &str) -> &str {
    for marker in ["@replan", "@replay"] {
        if let Some((base, n)) = rule_key.rsplit_once(marker) {
            if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) {
                return base;
            }
        }
    }
    rule_key
}

/// Which jobs `storeflow jobs retry` puts back in the queue.
#[derive(Debug, Clone, PartialEq)]
pub enum Requeue {
    One(i64),
    AllDead,
}
