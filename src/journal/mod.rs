//! The durable journal: storage only. It knows [`Event`]s and nothing above them: traces and job
//! parameters arrive as JSON the layers above produced.
//!
//! [`Store`] is the storage interface (SQLite by default, see [`sqlite`]); [`Journal`] puts one
//! writer thread in front of it that batches concurrent writes into one transaction (group
//! commit), so durability costs one fsync per batch rather than one per webhook.
//!
//! The rest of the code gets in only through [`start_writer`] (the daemon's [`Journal`]),
//! [`open_reader`] and [`open_existing`] (a [`Reader`]: an owned, clonable handle whose async
//! reads run on a blocking thread), and sees the backend only as `dyn Store` and
//! [`JournalError`]: this is where another backend (PostgreSQL) plugs in.

mod health;
mod key;
mod open;
mod reader;
pub mod sqlite;
mod writer;

use std::time::Duration;

use serde::Serialize;

use crate::event::{Event, Incoming, Timestamp};
pub use health::{JournalHealth, Problem};
pub use key::JobKey;
pub use open::{open_existing, open_reader, start_writer};
pub use reader::Reader;
pub use sqlite::{FileIdentity, SqliteStore};
pub use writer::{Journal, OnClose};

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
    /// What the rules decided and why (opaque to the journal).
    pub trace: serde_json::Value,
    pub jobs: Vec<NewJob>,
    /// Script state written while processing this event (`state_set`, `state_incr`).
    pub state: Vec<(String, serde_json::Value)>,
}

/// A job to create. Its key is (event id, rule, action index).
#[derive(Debug, Clone, PartialEq)]
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
        [
            JobStatus::Pending,
            JobStatus::Running,
            JobStatus::Done,
            JobStatus::Dead,
            JobStatus::Dismissed,
            JobStatus::Replanned,
        ]
        .into_iter()
        .find(|j| j.as_str() == s)
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

/// The rule a (possibly replanned) job key belongs to.
pub fn base_rule(rule_key: &str) -> &str {
    match rule_key.rsplit_once("@replan") {
        Some((base, n)) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => base,
        _ => rule_key,
    }
}

/// Which jobs `storeflow jobs retry` puts back in the queue.
#[derive(Debug, Clone, PartialEq)]
pub enum Requeue {
    One(i64),
    AllDead,
}

/// One write in a group commit.
#[derive(Debug)]
pub enum Write {
    /// Boxed: an event is much larger than the other writes, and writes sit in a queue.
    Append(Box<Incoming>),
    Processed(Processed),
    Attempt(AttemptOutcome),
    Flag(Flag),
    /// Sets a script state value outside a pipeline run (e.g. a dynamic product's answer).
    State(String, serde_json::Value),
    /// Makes jobs due now with a fresh retry schedule (the attempt history is kept).
    Requeue(Requeue),
    /// Sets an unprocessed event aside with the reason (it counts as handled by the pipeline).
    Quarantine(Unreadable),
    /// Makes quarantined events unprocessed again, so the pipeline retries them.
    Release(Release),
    /// Creates replanned jobs and marks the dead letters they replace `replanned`.
    Replan(Replan),
    /// Sets dead letters aside (`dismissed`).
    Dismiss(Vec<i64>),
    /// Marks a flag resolved.
    ResolveFlag(i64),
    /// Deletes a flag.
    DeleteFlag(i64),
    /// Deletes script state keys (e.g. `dynamic:<event>` answers of pruned events).
    DeleteState(Vec<String>),
    /// Deletes events (with their traces and finished jobs) received before the time; dead
    /// letters, their events and flags are kept until handled.
    Prune {
        before: Timestamp,
    },
}

/// The answer to one [`Write`].
#[derive(Debug, Clone, PartialEq)]
pub enum Written {
    Appended(Appended),
    /// `false` when the event had already been processed (nothing was written).
    Processed(bool),
    /// Rows changed: jobs updated, flags added (0 when the flag existed), jobs re-queued,
    /// events pruned.
    Changed(usize),
}

#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// The backend's own error, kept as the source (the type stays inside `journal/`).
    #[error("journal database error: {0}")]
    Db(Box<dyn std::error::Error + Send + Sync>),
    /// A read could not run (its task failed).
    #[error("journal read failed: {0}")]
    ReadFailed(String),
    #[error("journal at {path} cannot be opened: {reason}")]
    Open { path: String, reason: String },
    #[error("journal commit failed: {0}")]
    CommitFailed(String),
    #[error("journal writer has stopped")]
    Closed,
    #[error("journal holds an unreadable record {id}: {reason}")]
    Corrupt { id: String, reason: String },
    #[error("journal file {path} was removed or replaced while open ({reason}); nothing is written to it any more: restore it and restart storeflow")]
    Replaced { path: String, reason: String },
}

impl JournalError {
    /// The error as `/healthz` may show it to anyone: without file paths.
    pub fn public_reason(&self) -> String {
        match self {
            JournalError::Replaced { .. } => "the journal file was removed or replaced while \
                                              open; restore it and restart storeflow"
                .to_string(),
            JournalError::Open { reason, .. } => format!("the journal cannot be opened: {reason}"),
            other => other.to_string(),
        }
    }
}

/// Storage for events, traces and jobs (and, as the system grows, flags and state).
pub trait Store: Send + 'static {
    /// Applies a batch of writes in one transaction, answering each in order. An append whose
    /// dedupe key was seen (same source) within `dedupe_window` is answered with the earlier
    /// event's id and `duplicate: true`.
    fn write_batch(
        &mut self,
        batch: &[Write],
        dedupe_window: Duration,
    ) -> Result<Vec<Written>, JournalError>;

    /// The files this store writes, if it checks that they stay in place (the daemon's writer).
    fn files(&self) -> Option<FileIdentity> {
        None
    }

    /// Housekeeping on the writer thread between two batches (e.g. a WAL checkpoint that needs
    /// the write lock). Callers of the last batch have their answers already.
    fn between_batches(&mut self) {}

    /// The newest events first.
    fn recent_events(&self, limit: usize) -> Result<Vec<EventSummary>, JournalError>;

    /// The newest events first, only those in `status` and of `shop` when given
    /// (`events --status --shop`).
    fn events_filtered(
        &self,
        status: Option<EventStatus>,
        shop: Option<&str>,
        limit: usize,
    ) -> Result<Vec<EventSummary>, JournalError>;

    /// Events per (source, shop, secret that matched), for retiring a rotated secret.
    fn secret_counts(&self) -> Result<Vec<SecretCount>, JournalError>;

    /// One event, whole.
    fn event(&self, id: &str) -> Result<Option<Event>, JournalError>;

    /// Events not yet processed by the rules, oldest first. Each row is read on its own: a row
    /// that cannot be read back is answered as [`Unreadable`] and fails no other.
    fn unprocessed_events(
        &self,
        limit: usize,
    ) -> Result<Vec<Result<Event, Unreadable>>, JournalError>;

    /// The newest events in one status first.
    fn events_with_status(
        &self,
        status: EventStatus,
        limit: usize,
    ) -> Result<Vec<EventSummary>, JournalError>;

    /// A script state value (`state_get`).
    fn state(&self, key: &str) -> Result<Option<serde_json::Value>, JournalError>;

    /// The trace stored for an event, if it was processed.
    fn trace(&self, event_id: &str) -> Result<Option<serde_json::Value>, JournalError>;

    /// One job.
    fn job(&self, id: i64) -> Result<Option<Job>, JournalError>;

    /// Pending jobs due at `now`, oldest due first.
    fn due_jobs(&self, now: Timestamp, limit: usize) -> Result<Vec<Job>, JournalError>;

    /// When the next pending job falls due, if any.
    fn next_due(&self) -> Result<Option<Timestamp>, JournalError>;

    /// The attempts of one job, first first.
    fn attempts(&self, job_id: i64) -> Result<Vec<Attempt>, JournalError>;

    /// Flags, newest first, optionally of one kind.
    fn flags(
        &self,
        kind: Option<&str>,
        filter: FlagFilter,
        limit: usize,
    ) -> Result<Vec<Flag>, JournalError>;

    /// Script state keys starting with `prefix`, with when each was last written.
    fn state_keys(&self, prefix: &str) -> Result<Vec<(String, Timestamp)>, JournalError>;

    /// Which of `ids` are events still in the journal.
    fn existing_events(&self, ids: &[String]) -> Result<Vec<String>, JournalError>;

    /// Jobs, newest first, optionally only those of one event and/or one status.
    fn jobs(
        &self,
        event_id: Option<&str>,
        status: Option<JobStatus>,
        limit: usize,
    ) -> Result<Vec<Job>, JournalError>;
}
