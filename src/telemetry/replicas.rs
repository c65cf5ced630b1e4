//! Log lines and metrics of replicas sharing one journal (DESIGN.md §13).

use std::fmt::Display;

use super::{Repeated, REPEAT_WINDOW};

/// Writes refused because the claim or lease they were made under had moved to another replica
/// (a replica paused or cut off past its lease), by what was refused.
pub const FENCED_WRITES_TOTAL: &str = "storeflow_fenced_writes_total";
/// Job claims this replica gave up because it could not renew them in time or another replica
/// had taken them over.
pub const CLAIMS_LOST_TOTAL: &str = "storeflow_claims_lost_total";

static RENEW_FAILED: Repeated = Repeated::new(REPEAT_WINDOW);
static LEASE_FAILED: Repeated = Repeated::new(REPEAT_WINDOW);
static LISTENER_LOST: Repeated = Repeated::new(REPEAT_WINDOW);

/// What a refused fenced write was.
#[derive(Debug, Clone, Copy)]
pub enum Fenced {
    /// A job's attempt (the delivery may have run; the replica that holds the job now runs it).
    Attempt,
    /// Events planned by a pipeline whose lease had moved.
    Planned,
    /// Timers settled under a claim that had moved.
    Timers,
    /// Retention's pruning under a moved lease.
    Duty,
}

impl Fenced {
    pub fn as_str(self) -> &'static str {
        match self {
            Fenced::Attempt => "attempt",
            Fenced::Planned => "planned",
            Fenced::Timers => "timers",
            Fenced::Duty => "duty",
        }
    }
}

/// A write was refused by its fence: counted and logged (it is rare and says a replica was
/// paused or cut off while it held work).
pub fn fenced_off(what: Fenced, id: &dyn Display) {
    metrics::counter!(FENCED_WRITES_TOTAL, "what" => what.as_str()).increment(1);
    tracing::warn!(target: "storeflow::worker", what = what.as_str(), %id, "write refused: its claim moved to another replica while this one held it (paused or cut off past its lease); nothing was written");
}

/// This replica gave up work it held because it could not renew the claim in time.
pub fn claim_lost(job_id: i64) {
    metrics::counter!(CLAIMS_LOST_TOTAL).increment(1);
    tracing::warn!(target: "storeflow::worker::dispatcher", job_id, "claim lost (not renewed in time or taken over); the delivery is abandoned and another replica runs the job");
}

/// Renewing claims failed (the database is unreachable): the claims run out unless a later
/// renewal works.
pub fn renew_failed(error: &dyn Display) {
    crate::rate_limited_warn!(RENEW_FAILED, target: "storeflow::worker", error = %error, "renewing claims failed");
}

/// Taking or renewing a named lease failed.
pub fn lease_failed(name: &str, error: &dyn Display) {
    crate::rate_limited_warn!(LEASE_FAILED, target: "storeflow::worker", lease = name, error = %error, "taking the lease failed");
}

/// This replica took over a named lease (after another let it go or stopped renewing it).
pub fn lease_taken(name: &str, fence: i64) {
    tracing::info!(target: "storeflow::worker", lease = name, fence, "lease taken: this replica runs it now");
}

/// The connection that listens for other replicas' changes failed; it reconnects, and polling
/// covers the gap.
pub fn listener_lost(error: &dyn Display) {
    crate::rate_limited_warn!(LISTENER_LOST, target: "storeflow::journal", error = %error, "listening for other replicas' changes failed; reconnecting (workers poll meanwhile)");
}
