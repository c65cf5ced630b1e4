//! Replicas sharing one journal (DESIGN.md §13): who a process is, what it claimed, and the
//! fences its writes carry.
//!
//! Work that two replicas must not do at once is *claimed under a lease*: a job or a timer row,
//! or a named lease (the pipeline, a once-per-cluster duty such as retention). A lease lasts a
//! fixed time unless its owner renews it, and every claim bumps a **fence** number. A write
//! made under a claim carries that fence ([`Fence`], [`super::Write::Fenced`]); the store applies
//! it only while the fence still matches, so a replica that was paused or cut off past its lease
//! (and another took the work over) can no longer complete it: its write is answered
//! [`super::Written::Fenced`] and changes nothing.
//!
//! A store that is not shared (SQLite: one daemon holds the journal) keeps the claims in memory,
//! answers every claim with fence 0 and applies fenced writes as they are: the single-process
//! behaviour and cost stay what they were.

use std::time::Duration;

use serde::Serialize;

/// The named lease the pipeline runs under: one replica at a time plans events, in journal
/// order, so every order's events are planned in order and script state stays consistent.
pub const PIPELINE: &str = "pipeline";
/// The named lease retention runs under (once per cluster, not once per replica).
pub const RETENTION: &str = "retention";

/// One process among the replicas: `hostname:pid:random`, unique per start, so a restarted
/// replica never mistakes the previous process's claims for its own.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct ReplicaId(String);

impl ReplicaId {
    /// This process's id.
    pub fn new() -> ReplicaId {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .or_else(|_| std::fs::read_to_string("/etc/hostname"))
            .ok()
            .map(|h| h.trim().to_string())
            .filter(|h| !h.is_empty())
            .or_else(|| std::env::var("HOSTNAME").ok())
            .unwrap_or_else(|| "localhost".into());
        let mut random = [0u8; 4];
        // Without the OS's random source the pid still tells processes apart on one host.
        let _ = getrandom::fill(&mut random);
        ReplicaId(format!(
            "{host}:{}:{}",
            std::process::id(),
            hex::encode(random)
        ))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for ReplicaId {
    fn default() -> Self {
        ReplicaId::new()
    }
}

impl std::fmt::Display for ReplicaId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// How long a claim lasts without renewal, and how often the owner renews it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseTerms {
    pub length: Duration,
    pub renew_every: Duration,
}

/// A job or timer claimed for this replica, with the fence its completion must carry
/// (0 when the store is not shared).
#[derive(Debug, Clone, PartialEq)]
pub struct Claimed<T> {
    pub item: T,
    pub fence: i64,
}

/// What a fenced write was made under; the store applies the write only while it still holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fence {
    /// A named lease (see [`PIPELINE`], [`RETENTION`]) held by `owner` with this fence.
    Lease {
        name: String,
        owner: String,
        fence: i64,
    },
    /// Job claims `(id, fence)`: the write (an attempt) applies only if each is still claimed
    /// with that fence.
    Jobs(Vec<(i64, i64)>),
    /// Timer claims `(id, fence)`: only the timers still claimed with their fence are settled.
    Timers(Vec<(i64, i64)>),
}

/// What another replica changed in a shared journal that a worker here waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Events were appended (or released from quarantine): the pipeline has work.
    Events,
    /// Jobs were created or re-queued: the dispatcher has work.
    Jobs,
}

impl Change {
    pub fn as_str(self) -> &'static str {
        match self {
            Change::Events => "events",
            Change::Jobs => "jobs",
        }
    }

    pub fn parse(s: &str) -> Option<Change> {
        [Change::Events, Change::Jobs]
            .into_iter()
            .find(|c| c.as_str() == s)
    }
}

/// Called for every [`Change`] another replica announces (see [`super::Store::watch_changes`]).
pub type Wake = std::sync::Arc<dyn Fn(Change) + Send + Sync>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replica_ids_differ_per_start_and_name_the_process() {
        let (a, b) = (ReplicaId::new(), ReplicaId::new());
        assert_ne!(a, b, "random part");
        let pid = std::process::id().to_string();
        let parts: Vec<&str> = a.as_str().rsplitn(3, ':').collect();
        assert_eq!(parts.len(), 3, "{a}");
        assert_eq!(parts[1], pid);
        assert_eq!(parts[0].len(), 8);
    }
}
