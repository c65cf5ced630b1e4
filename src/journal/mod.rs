//! The durable journal: storage only. It knows [`Event`]s and nothing above them: traces and job
//! parameters arrive as JSON the layers above produced.
//!
//! [`Store`] is the storage interface (SQLite by default, see [`sqlite`]; PostgreSQL with
//! `journal.url`, see [`pg`]; the contract tests run on both); [`Journal`] puts one
//! writer thread in front of it that batches concurrent writes into one transaction (group
//! commit), so durability costs one fsync per batch rather than one per webhook.
//!
//! The rest of the code gets in only through [`start_writer`] (the daemon's [`Journal`]),
//! [`open_reader`] and [`open_existing`] (a [`Reader`]: an owned, clonable handle whose async
//! reads run on a blocking thread), and sees the backend only as `dyn Store` and
//! [`JournalError`]; [`Location`] (picked in `open.rs` from the config) says which backend.

#[cfg(test)]
mod contract;
mod handoff;
mod health;
mod key;
pub mod lease;
mod open;
pub mod pg;
pub mod query;
mod reader;
mod records;
pub mod sqlite;
mod timers;
mod trace_codec;
mod writer;

use std::time::Duration;

use crate::model::event::{Event, Incoming, Timestamp};
pub use handoff::Handoff;
pub use health::{JournalHealth, Problem};
pub use key::JobKey;
pub use lease::{Change, Claimed, Fence, LeaseTerms, ReplicaId, Wake};
pub use open::{migrate, open_existing, open_reader, start_writer, Location};
pub use reader::Reader;
pub use records::{
    base_rule, replan_rule_key, replay_rule_key, Appended, Attempt, AttemptOutcome, EventStatus,
    EventSummary, Flag, FlagFilter, Job, JobStatus, NewJob, NextStep, Processed, Release, Replan,
    Requeue, SecretCount, StoredTrace, Unreadable,
};
pub use sqlite::{FileIdentity, SqliteStore};
pub use timers::{
    Firing, NewTimer, Settle, Timer, TimerFilter, TimerKind, TimerStatus, TimerWrites,
};
pub use writer::{Journal, OnClose};

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
    /// Settles due timers: fired (creating their jobs) or skipped (DESIGN.md §12).
    FireTimers(Vec<Firing>),
    /// Cancels one pending timer (`storeflow timers cancel`).
    CancelTimer(i64),
    /// Deletes script state keys (expired `limit` state) unless written again since the time
    /// given with each (the timer worker read them then; a run planned meanwhile keeps its key).
    DeleteStateUnchanged(Vec<(String, Timestamp)>),
    /// A write made under a claim or a lease (replicas, see [`lease`]): applied only while the
    /// fence still holds, else answered [`Written::Fenced`] and nothing changes. A store that is
    /// not shared applies the inner write as it is.
    Fenced(Fence, Box<Write>),
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
    /// A [`Write::Fenced`] refused: the claim or lease it was made under is no longer this
    /// replica's (another took the work over). Nothing was written.
    Fenced,
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
    #[error("backup to {path} failed: {reason}")]
    Backup { path: String, reason: String },
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

    /// Events per (source, shop, secret that matched), for retiring a rotated secret. Counted
    /// as events are appended (a small table, not a scan of every event); retention does not
    /// lower the counts.
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

    /// Jobs per status, open flags, the oldest unprocessed event's age and the file size, for
    /// `/metrics`.
    fn gauges(
        &self,
        now: Timestamp,
    ) -> Result<crate::telemetry::metrics::JournalGauges, JournalError>;

    /// One page of events, newest first, filtered (the admin API and console; see [`query`]).
    fn event_page(&self, q: &query::EventQuery) -> Result<query::EventPage, JournalError>;

    /// One page of jobs, newest first.
    fn job_page(&self, q: &query::JobQuery) -> Result<query::JobPage, JournalError>;

    /// One page of flags, newest first.
    fn flag_page(&self, q: &query::FlagQuery) -> Result<query::FlagPage, JournalError>;

    /// One flag, open or resolved.
    fn flag(&self, id: i64) -> Result<Option<Flag>, JournalError>;

    /// When each of `rules` last fired (rules that never fired are left out).
    fn last_fired(&self, rules: &[String]) -> Result<Vec<query::LastFired>, JournalError>;

    /// How many jobs are in `status`.
    fn count_jobs(&self, status: JobStatus) -> Result<u64, JournalError>;

    /// Writes a consistent copy of the whole journal to the new file `dest` while writers go
    /// on (`storeflow backup`).
    fn backup_into(&self, dest: &std::path::Path) -> Result<BackupSummary, JournalError>;

    /// Events journaled per source since `since`, by source name (the console's overview).
    fn events_per_source(&self, since: Timestamp) -> Result<Vec<(String, u64)>, JournalError>;

    /// The ids of the events [`Store::unprocessed_events`] would answer, in the same order,
    /// without reading their bodies (the pipeline takes those it was handed in memory).
    fn unprocessed_ids(&self, limit: usize) -> Result<Vec<String>, JournalError>;

    /// Timers, as `storeflow timers` and `events show` list them (DESIGN.md §12).
    fn timers(&self, _filter: &TimerFilter) -> Result<Vec<Timer>, JournalError> {
        Ok(Vec::new())
    }

    /// Pending timers due at `now`, soonest first.
    fn due_timers(&self, _now: Timestamp, _limit: usize) -> Result<Vec<Timer>, JournalError> {
        Ok(Vec::new())
    }

    /// When the next pending timer falls due, if any.
    fn next_timer_due(&self) -> Result<Option<Timestamp>, JournalError> {
        Ok(None)
    }

    /// How many timers are pending (`/healthz`, `storeflow_timers_pending`).
    fn timers_pending(&self) -> Result<u64, JournalError> {
        Ok(0)
    }

    /// One order's events, oldest first (its timeline: what `unless` and `if_still` look at,
    /// and `storeflow orders show`), of one source when given.
    fn order_events(
        &self,
        _source: Option<&str>,
        _order_id: &str,
        _limit: usize,
    ) -> Result<Vec<EventSummary>, JournalError> {
        Ok(Vec::new())
    }

    /// One order's events of one source as (id, topic, canonical name), oldest first: the lean
    /// read the timer worker makes when a `wait` with `unless` comes due.
    fn order_timeline(
        &self,
        source: &str,
        order_id: &str,
        limit: usize,
    ) -> Result<Vec<(String, String, Option<String>)>, JournalError> {
        let events = self.order_events(Some(source), order_id, limit)?;
        Ok(events
            .into_iter()
            .map(|e| (e.id, e.topic, e.canonical))
            .collect())
    }

    /// Whether other processes (replicas) share this store (DESIGN.md §13): then work is
    /// claimed under leases and writes made under a claim are fenced (see [`lease`]). SQLite
    /// is not shared: the daemon holds it alone, claims stay in memory, fences are not checked.
    fn shared(&self) -> bool {
        false
    }

    /// Claims up to `limit` pending jobs due at `now` for `owner` for `lease`, skipping those
    /// another replica holds, oldest due first; each with the fence its attempt must carry.
    /// Not shared: the due jobs, fence 0 (the dispatcher keeps its claims in memory).
    fn claim_jobs(
        &self,
        _owner: &str,
        now: Timestamp,
        _lease: Duration,
        limit: usize,
    ) -> Result<Vec<Claimed<Job>>, JournalError> {
        Ok(self
            .due_jobs(now, limit)?
            .into_iter()
            .map(|item| Claimed { item, fence: 0 })
            .collect())
    }

    /// Extends `owner`'s claims on `jobs` (id, fence) by `lease` from now; answers the ids it
    /// still holds (a job missing from the answer was taken over: stop working on it).
    fn renew_jobs(
        &self,
        _owner: &str,
        jobs: &[(i64, i64)],
        _lease: Duration,
    ) -> Result<Vec<i64>, JournalError> {
        Ok(jobs.iter().map(|j| j.0).collect())
    }

    /// Gives back claims that were never started (shutdown), so another replica may take
    /// them at once instead of when the lease ends.
    fn release_jobs(&self, _owner: &str, _jobs: &[(i64, i64)]) -> Result<(), JournalError> {
        Ok(())
    }

    /// Claims up to `limit` pending timers due at `now` for `owner` for `lease`, soonest first,
    /// each with the fence its settling must carry. Not shared: the due timers, fence 0.
    fn claim_timers(
        &self,
        _owner: &str,
        now: Timestamp,
        _lease: Duration,
        limit: usize,
    ) -> Result<Vec<Claimed<Timer>>, JournalError> {
        Ok(self
            .due_timers(now, limit)?
            .into_iter()
            .map(|item| Claimed { item, fence: 0 })
            .collect())
    }

    /// Takes the lease `name` for `owner` for `lease` from now, or renews it when `owner`
    /// holds it already; answers its fence (the same while `owner` keeps it, higher after a
    /// change of owner), or `None` while another replica holds it. Not shared: always held.
    fn hold_lease(
        &self,
        _name: &str,
        _owner: &str,
        _lease: Duration,
    ) -> Result<Option<i64>, JournalError> {
        Ok(Some(0))
    }

    /// Lets the lease `name` go if `owner` holds it (shutdown), so another replica takes it
    /// over at once.
    fn release_lease(&self, _name: &str, _owner: &str) -> Result<(), JournalError> {
        Ok(())
    }

    /// Calls `wake` whenever another replica announces a [`Change`] (events appended, jobs
    /// created), until `stop`, so workers start at once instead of at their next poll; polling
    /// stays the fallback. Not shared: nothing to watch (the writer rings the workers itself).
    fn watch_changes(
        &self,
        _wake: Wake,
        _stop: tokio_util::sync::CancellationToken,
    ) -> Result<(), JournalError> {
        Ok(())
    }
}

/// What `storeflow backup` copied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackupSummary {
    pub events: u64,
    pub bytes: u64,
}
