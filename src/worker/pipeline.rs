//! The pipeline worker: takes journaled events in order, evaluates the rules, and commits for each
//! event its trace and jobs together with marking it processed (one transaction), so an event is
//! planned exactly once even across crashes: an event left unprocessed by a crash is simply
//! picked up again after restart.
//!
//! It runs on its own thread: rule evaluation (Rhai `if` expressions included) never runs on the
//! async threads that answer webhooks.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::sync::Notify;

use crate::journal::{Journal, JournalError, SqliteStore, Store, Unreadable, Write};
use crate::plan::{try_plan, JournalState};
use crate::rules::live::LiveRules;
use crate::rules::RuleSet;

/// Events read and committed per round.
const BATCH: usize = 256;
/// How long the worker sleeps when nothing rings; also the retry delay after an error.
const IDLE: Duration = Duration::from_secs(1);

/// A running pipeline thread.
pub struct Pipeline {
    stop: Arc<AtomicBool>,
    /// Rung by [`Pipeline::stop`] so an idle worker notices at once.
    doorbell: SyncSender<()>,
    thread: JoinHandle<()>,
}

impl Pipeline {
    /// Starts the worker. The doorbell (both ends of one channel) is rung after commits that
    /// appended events and after reloads; `reader` is a connection of its own for reading
    /// unprocessed events.
    pub fn start(
        reader: SqliteStore,
        journal: Journal,
        rules: Arc<LiveRules>,
        (bell, doorbell): (SyncSender<()>, Receiver<()>),
        jobs_planned: Arc<Notify>,
    ) -> Pipeline {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let worker = Worker {
            reader,
            journal,
            rules,
            jobs_planned,
        };
        let thread = std::thread::Builder::new()
            .name("pipeline".into())
            .spawn(move || worker.run(doorbell, flag))
            .expect("spawning the pipeline thread");
        Pipeline {
            stop,
            doorbell: bell,
            thread,
        }
    }

    /// Finishes the round in progress and stops. Waits at most for that round.
    pub fn stop(self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = self.doorbell.try_send(());
        let _ = self.thread.join();
    }
}

struct Worker {
    reader: SqliteStore,
    journal: Journal,
    rules: Arc<LiveRules>,
    /// Rung after a commit that planned jobs, so the dispatcher starts at once.
    jobs_planned: Arc<Notify>,
}

impl Worker {
    fn run(self, doorbell: Receiver<()>, stop: Arc<AtomicBool>) {
        while !stop.load(Ordering::SeqCst) {
            let busy = match self.rules.current() {
                Some(set) => self.round(&set).unwrap_or_else(|e| {
                    tracing::error!(error = %e, "pipeline round failed; retrying");
                    false
                }),
                None => false,
            };
            if busy {
                continue;
            }
            match doorbell.recv_timeout(IDLE) {
                Ok(()) | Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => std::thread::sleep(IDLE),
            }
        }
    }

    /// Processes one batch; true when there may be more waiting. An event that cannot be read
    /// back or planned is quarantined instead of failing the round, so it blocks no other event.
    fn round(&self, rules: &RuleSet) -> Result<bool, JournalError> {
        let pending = self.reader.unprocessed_events(BATCH)?;
        if pending.is_empty() {
            return Ok(false);
        }
        let full = pending.len() == BATCH;
        // Script state written by earlier events of this batch is not committed yet: later
        // events see it through these layers.
        let mut batch: Vec<BTreeMap<String, serde_json::Value>> = Vec::new();
        let mut processed = Vec::with_capacity(pending.len());
        let mut quarantined = Vec::new();
        for read in pending {
            let planned = read.and_then(|e| {
                try_plan(&e, rules, &JournalState(&self.reader), &batch)
                    .and_then(|p| p.into_processed(&e.id))
                    .map_err(|reason| Unreadable {
                        event_id: e.id.clone(),
                        reason: reason.to_string(),
                    })
            });
            match planned {
                Ok(p) => {
                    batch.push(p.state.iter().cloned().collect());
                    processed.push(p);
                }
                Err(unreadable) => quarantined.push(unreadable),
            }
        }
        let planned = processed.iter().any(|p| !p.jobs.is_empty());
        for result in self.journal.processed_many_blocking(processed) {
            result?;
        }
        self.quarantine(quarantined)?;
        if planned {
            self.jobs_planned.notify_one();
        }
        Ok(full)
    }

    /// Sets events aside with their reason (see [`Write::Quarantine`]).
    fn quarantine(&self, events: Vec<Unreadable>) -> Result<(), JournalError> {
        for u in events {
            tracing::error!(
                event_id = %u.event_id,
                reason = %u.reason,
                "event quarantined: it cannot be read or planned; \
                 `storeflow events retry ID` hands it back to the pipeline after a fix"
            );
            if u.event_id.is_empty() {
                continue; // not even its id is readable: nothing to mark
            }
            self.journal.write_blocking(Write::Quarantine(u))?;
        }
        Ok(())
    }
}
