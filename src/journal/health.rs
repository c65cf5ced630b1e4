//! Whether the journal can be written right now, shared between the writer thread (which learns
//! it from every commit), the intake route (which answers 503 at once while commits fail) and
//! `/healthz` (which reports it with the reason).
//!
//! While commits fail, intake lets one request through every [`PROBE_EVERY`] as a probe, so
//! the daemon notices on its own when the disk has room again; every other webhook is refused
//! without queueing a write that would fail anyway.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::FileIdentity;
use crate::model::event::Timestamp;

/// While failing, how often one write is let through to find out whether the journal works again.
pub const PROBE_EVERY: Duration = Duration::from_millis(500);

/// The journal's write health. See the module docs.
pub struct JournalHealth {
    failing: AtomicBool,
    problem: Mutex<Option<Problem>>,
    /// Milliseconds after `epoch` before which no probe is let through.
    next_probe: AtomicU64,
    epoch: Instant,
    /// The files the journal lives in, to notice at `/healthz` that they were removed even when
    /// nothing is being written.
    files: Option<FileIdentity>,
}

/// Why the journal is failing, and since when.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    pub reason: String,
    pub since: Timestamp,
}

impl JournalHealth {
    pub fn new(files: Option<FileIdentity>) -> JournalHealth {
        JournalHealth {
            failing: AtomicBool::new(false),
            problem: Mutex::new(None),
            next_probe: AtomicU64::new(0),
            epoch: Instant::now(),
            files,
        }
    }

    /// Records a failed commit. Returns `true` when this starts a run of failures.
    pub fn failed(&self, reason: String) -> bool {
        let mut p = self.problem.lock().unwrap_or_else(|e| e.into_inner());
        let started = p.is_none();
        let since = p.as_ref().map_or_else(Timestamp::now, |p| p.since);
        *p = Some(Problem { reason, since });
        self.failing.store(true, Ordering::SeqCst);
        self.next_probe.store(
            self.now_ms() + PROBE_EVERY.as_millis() as u64,
            Ordering::SeqCst,
        );
        started
    }

    /// Records a successful commit. Returns the problem that just ended, if any.
    pub fn recovered(&self) -> Option<Problem> {
        if !self.failing.load(Ordering::SeqCst) {
            return None;
        }
        self.failing.store(false, Ordering::SeqCst);
        self.problem
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
    }

    /// The current problem, if commits are failing; also checks that the journal files are
    /// still the ones opened (a removed data dir shows here before anything is written).
    pub fn problem(&self) -> Option<Problem> {
        if !self.failing.load(Ordering::SeqCst) {
            if let Err(e) = self.files.as_ref().map_or(Ok(()), FileIdentity::verify) {
                self.failed(e.public_reason());
            }
        }
        self.problem
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// For intake: `Err(problem)` when the write should be refused at once (commits are
    /// failing and this request is not the probe), `Ok` otherwise.
    pub fn admit(&self) -> Result<(), Problem> {
        if !self.failing.load(Ordering::SeqCst) {
            return Ok(());
        }
        let now = self.now_ms();
        let due = self.next_probe.load(Ordering::SeqCst);
        let probe = now >= due
            && self
                .next_probe
                .compare_exchange(
                    due,
                    now + PROBE_EVERY.as_millis() as u64,
                    Ordering::SeqCst,
                    Ordering::SeqCst,
                )
                .is_ok();
        match (probe, self.problem()) {
            (false, Some(p)) => Err(p),
            _ => Ok(()),
        }
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_while_failing_but_lets_a_probe_through_and_recovers() {
        let h = JournalHealth::new(None);
        assert!(h.admit().is_ok());
        assert!(h.failed("disk full".into()));
        assert!(!h.failed("disk full".into()), "the same run of failures");
        assert_eq!(h.admit().unwrap_err().reason, "disk full");
        std::thread::sleep(PROBE_EVERY);
        assert!(h.admit().is_ok(), "one probe after PROBE_EVERY");
        assert!(h.admit().is_err(), "only one");
        assert_eq!(h.recovered().map(|p| p.reason), Some("disk full".into()));
        assert!(h.admit().is_ok());
        assert_eq!(h.problem(), None);
    }
}
