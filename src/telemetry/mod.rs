//! Every repeated log line, defined once (vector's `internal_events` style): the code that
//! accepts a webhook, delivers a job or commits a batch calls one function here instead of
//! spelling the message and its fields itself, so the wording, the fields and (from the console
//! issue on) the metrics stay the same everywhere. Each line keeps the target of the module it
//! describes, so `RUST_LOG` filters by module as before.
//!
//! Errors that can repeat thousands of times a second (a failing journal) go through a
//! [`Repeated`] limit kept next to their line. It uses nothing else in the crate, so every layer
//! can call it.

pub mod metrics;
mod repeated;
pub mod replicas;

use std::fmt::Display;

pub use repeated::{Held, Repeated, REPEAT_WINDOW};

/// 503 answers while the journal fails: every webhook gets one.
static INTAKE_UNAVAILABLE: Repeated = Repeated::new(REPEAT_WINDOW);
/// A failing journal fails every batch.
static COMMIT_FAILED: Repeated = Repeated::new(REPEAT_WINDOW);
static DISPATCH_READ_FAILED: Repeated = Repeated::new(REPEAT_WINDOW);
static PIPELINE_ROUND_FAILED: Repeated = Repeated::new(REPEAT_WINDOW);
static TIMERS_ROUND_FAILED: Repeated = Repeated::new(REPEAT_WINDOW);
static ATTEMPT_UNJOURNALED: Repeated = Repeated::new(REPEAT_WINDOW);

/// A verified, journaled webhook (or a repeat of one: `duplicate`). DEBUG: one formatted line
/// per webhook cost intake more than its HMAC check; `/metrics` counts them
/// (`storeflow_webhooks_total`) and the console lists them.
pub fn webhook_accepted(event_id: &str, topic: &str, shop: &str, secret: &str, duplicate: bool) {
    tracing::debug!(target: "storeflow::server::intake", %event_id, %topic, %shop, secret, duplicate, "webhook accepted");
}

/// A webhook answered with an error before it was journaled.
pub fn webhook_refused(source: &str, shop: &str, status: u16, reason: &dyn Display) {
    tracing::info!(target: "storeflow::server::intake", source, %shop, status, reason = %reason, "webhook refused");
}

/// Intake answers 503: the journal refuses writes (`problem`) or an append failed.
pub fn intake_unavailable(problem: Result<&dyn Display, &dyn Display>) {
    match problem {
        Ok(reason) => {
            crate::rate_limited_error!(INTAKE_UNAVAILABLE, target: "storeflow::server::intake", reason = %reason, "journal failing; answering 503")
        }
        Err(error) => {
            crate::rate_limited_error!(INTAKE_UNAVAILABLE, target: "storeflow::server::intake", error = %error, "journal append failed; answering 503")
        }
    }
}

/// A matched rule planned `jobs` jobs for an event. DEBUG, like every per-event line: the trace
/// keeps it (`events show`), `storeflow_rule_fired_total` counts it.
pub fn rule_matched(event_id: &str, rule: &str, jobs: usize) {
    tracing::debug!(target: "storeflow::plan", %event_id, %rule, jobs, "rule matched");
}

/// A matched rule's script failed: that rule run is dropped.
pub fn script_failed(event_id: &str, rule: &str, error: &dyn Display) {
    tracing::warn!(target: "storeflow::plan", %event_id, %rule, %error, "script failed; the rule run is dropped");
}

/// An event set aside: it cannot be read back or planned.
pub fn event_quarantined(event_id: &str, reason: &str) {
    tracing::error!(
        target: "storeflow::worker::pipeline",
        %event_id,
        %reason,
        "event quarantined: it cannot be read or planned; \
         `storeflow events retry ID` hands it back to the pipeline after a fix"
    );
}

/// A delivery attempt succeeded (inside the delivery's span). DEBUG: the job's attempts are
/// journaled and counted (`storeflow_jobs_total`); failures stay WARN/ERROR.
pub fn delivered() {
    tracing::debug!(target: "storeflow::worker::dispatcher", "delivered");
}

/// A delivery attempt failed and runs again at `retry_at` (RFC 3339).
pub fn delivery_retry(error: &str, retry_at: &str) {
    tracing::warn!(target: "storeflow::worker::dispatcher", %error, %retry_at, "delivery failed; will retry");
}

/// A delivery failed for good: a dead letter.
pub fn delivery_dead(error: &str) {
    tracing::error!(target: "storeflow::worker::dispatcher", error, "delivery failed; dead letter");
}

/// The dispatcher cannot read the journal and backs off.
/// A pipeline round could not read or commit (the journal fails); it is retried every second,
/// so the line is rate-limited like the journal's own.
pub fn pipeline_round_failed(error: &dyn Display) {
    crate::rate_limited_error!(PIPELINE_ROUND_FAILED, target: "storeflow::worker::pipeline", error = %error, "pipeline round failed; retrying");
}

pub fn dispatch_read_failed(error: &dyn Display) {
    crate::rate_limited_error!(DISPATCH_READ_FAILED, target: "storeflow::worker::dispatcher", error = %error, "dispatcher cannot read the journal; backing off");
}

/// An attempt ran but its outcome cannot be journaled: it is held (`job` when retried from the
/// held ones).
pub fn attempt_unjournaled(job: Option<i64>, error: &dyn Display) {
    match job {
        None => {
            crate::rate_limited_error!(ATTEMPT_UNJOURNALED, target: "storeflow::worker::dispatcher", error = %error,
            "cannot journal the attempt; it is held and journaled when the journal works again, the job does not run again before that")
        }
        Some(job) => {
            crate::rate_limited_error!(ATTEMPT_UNJOURNALED, target: "storeflow::worker::dispatcher", job, error = %error,
            "still cannot journal an attempt; no job is started until it is journaled")
        }
    }
}

/// A held attempt was journaled once the journal worked again.
pub fn attempt_journaled_late(job: i64) {
    tracing::info!(target: "storeflow::worker::dispatcher", job, "attempt journaled after the journal recovered");
}

/// A group commit failed; `first` when it is the first failure of a run (logged at once).
pub fn journal_commit_failed(error: &dyn Display, writes: usize, first: bool) {
    if first {
        COMMIT_FAILED.reset();
    }
    crate::rate_limited_error!(COMMIT_FAILED, target: "storeflow::journal::writer", error = %error, writes, "journal commit failed; intake answers 503 until a commit succeeds");
}

/// Commits work again after failing since `failing_since` (RFC 3339).
pub fn journal_recovered(failing_since: &str) {
    let held = COMMIT_FAILED.reset();
    tracing::info!(target: "storeflow::journal::writer", %failing_since, unlogged_failures = held.count, "journal commits work again");
}

/// An admin API request refused (`why`: missing or wrong token, or not a local client). The
/// token is never logged, not even the one that was sent.
pub fn admin_refused(path: &str, peer: Option<std::net::IpAddr>, why: &str) {
    tracing::warn!(target: "storeflow::server::api", path, peer = ?peer, why, "admin API request refused");
}

/// An admin API request changed the journal (replay, retry, resolve).
pub fn admin_changed(what: &str, target_id: &str, changed: usize) {
    tracing::info!(target: "storeflow::server::api", what, id = target_id, changed, "admin API change");
}

/// A timer round could not read or commit; it is retried every second.
pub fn timers_round_failed(error: &dyn Display) {
    crate::rate_limited_error!(TIMERS_ROUND_FAILED, target: "storeflow::worker::timers", error = %error, "timer round failed; retrying");
}

/// Due timers were fired or skipped.
pub fn timers_settled(n: usize) {
    tracing::debug!(target: "storeflow::worker::timers", timers = n, "timers settled");
}
