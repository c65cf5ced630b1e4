//! The pipeline worker: takes journaled events in order, evaluates the rules, and commits for each
//! event its trace and jobs together with marking it processed (one transaction), so an event is
//! planned exactly once even across crashes: an event left unprocessed by a crash is simply
//! picked up again after restart.
//!
//! It runs on its own thread: rule evaluation (Rhai `if` expressions included) never runs on the
//! async threads that answer webhooks.
//!
//! When replicas share the journal (DESIGN.md §13) one of them at a time runs the pipeline,
//! under the [`lease::PIPELINE`] lease: every order's events are planned in journal order and
//! script state is read and written by one planner, as with one process. Its commits carry the
//! lease's fence, so a replica paused past its lease cannot commit plans once another took over
//! (they are answered "already processed"); the others take over its unprocessed events when
//! its lease runs out.

use std::collections::BTreeMap;
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::journal::lease::{self, Fence, LeaseTerms};
use crate::journal::{Handoff, Journal, JournalError, Processed, Reader, Store, Unreadable, Write};
use crate::model::event::Event;
use crate::plan::{try_plan, JournalState};
use crate::rules::live::LiveRules;
use crate::rules::RuleSet;
use crate::script::State;

/// Events read and committed per round, at most.
const BATCH: usize = 256;
/// Rule evaluations per round, about: with many rules a round takes fewer events, because every
/// candidate rule adds a record to an event's trace and a round holds its events' plans in
/// memory until the commit (256 events × 1,000 rules kept ~200 MB resident).
const ROUND_WORK: usize = 8_192;

/// How many events one round takes with `rules` loaded.
fn round_size(rules: usize) -> usize {
    (ROUND_WORK / rules.max(1)).clamp(8, BATCH)
}
/// How long the worker sleeps when nothing rings; also the retry delay after an error.
const IDLE: Duration = Duration::from_secs(1);

/// What the pipeline thread works with.
pub struct Pipeline {
    /// A connection of its own for reading unprocessed events.
    pub reader: Reader,
    pub journal: Journal,
    pub rules: Arc<LiveRules>,
    /// Rung after a commit that planned jobs, so the dispatcher starts at once.
    pub jobs_planned: Arc<Notify>,
    /// Rung after a commit that created timers, so the timer worker looks at their due times.
    pub timers_planned: Arc<Notify>,
    /// The events intake parsed, handed over by the writer after their commit
    /// ([`Journal::handoff`]).
    pub handoff: Arc<Handoff>,
    /// This replica, as the owner of the pipeline lease in a shared journal.
    pub owner: String,
    pub terms: LeaseTerms,
}

impl Pipeline {
    /// Starts the worker thread, tracked by `tracker`. The doorbell (both ends of one channel)
    /// is rung after commits that appended events and after reloads. Once `stop` is cancelled
    /// the thread finishes the round in progress and ends.
    pub fn start(
        self,
        (bell, doorbell): (SyncSender<()>, Receiver<()>),
        stop: CancellationToken,
        tracker: &TaskTracker,
    ) -> std::io::Result<()> {
        // An idle worker waits on the doorbell: ring it when the token fires.
        let woken = stop.clone();
        tracker.spawn(async move {
            woken.cancelled().await;
            let _ = bell.try_send(());
        });
        let tracked = tracker.token();
        std::thread::Builder::new()
            .name("pipeline".into())
            .spawn(move || {
                self.run(doorbell, stop);
                drop(tracked);
            })?;
        Ok(())
    }

    fn run(self, doorbell: Receiver<()>, stop: CancellationToken) {
        let shared = self.reader.read_blocking(|s| s.shared());
        let mut held = None;
        while !stop.is_cancelled() {
            let lease = if shared {
                self.lease(&mut held)
            } else {
                Some(None)
            };
            let busy = match (self.rules.current(), lease) {
                (Some(set), Some(fence)) => self.round(&set, fence.as_ref()).unwrap_or_else(|e| {
                    crate::telemetry::pipeline_round_failed(&e);
                    false
                }),
                _ => false,
            };
            if busy {
                continue;
            }
            match doorbell.recv_timeout(IDLE) {
                Ok(()) | Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => std::thread::sleep(IDLE),
            }
        }
        if held.is_some() {
            // Another replica takes over at once instead of when the lease runs out.
            let owner = &self.owner;
            let _ = self
                .reader
                .read_blocking(|s| s.release_lease(lease::PIPELINE, owner));
        }
    }

    /// Takes or renews the pipeline lease in a shared journal: `Some(fence)` while this replica
    /// runs the pipeline, `None` while another does (or the journal cannot say).
    fn lease(&self, held: &mut Option<i64>) -> Option<Option<Fence>> {
        let (owner, length) = (&self.owner, self.terms.length);
        let fence = match self
            .reader
            .read_blocking(|s| s.hold_lease(lease::PIPELINE, owner, length))
        {
            Ok(fence) => fence,
            Err(e) => {
                crate::telemetry::replicas::lease_failed(lease::PIPELINE, &e);
                None
            }
        };
        if fence.is_some() && fence != *held {
            crate::telemetry::replicas::lease_taken(lease::PIPELINE, fence.unwrap_or(0));
        }
        *held = fence;
        let fence = fence?;
        Some(Some(Fence::Lease {
            name: lease::PIPELINE.into(),
            owner: owner.clone(),
            fence,
        }))
    }

    /// Processes one batch; true when there may be more waiting. An event that cannot be read
    /// back or planned is quarantined instead of failing the round, so it blocks no other event.
    fn round(&self, rules: &RuleSet, fence: Option<&Fence>) -> Result<bool, JournalError> {
        let (planned, quarantined, full) = self.reader.read_blocking(|store| {
            let limit = round_size(rules.len());
            let pending = pending(store, &self.handoff, limit)?;
            let full = pending.len() == limit;
            let (processed, quarantined) = plan_batch(pending, rules, &JournalState(store));
            Ok::<_, JournalError>((processed, quarantined, full))
        })?;
        if planned.is_empty() && quarantined.is_empty() {
            return Ok(false);
        }
        let jobs = planned.iter().any(|(p, _)| !p.jobs.is_empty());
        let timers = planned.iter().any(|(p, _)| !p.timers.timers.is_empty());
        let (planned, fired): (Vec<_>, Vec<_>) = planned.into_iter().unzip();
        for (result, fired) in self
            .journal
            .processed_many_blocking(planned, fence)
            .into_iter()
            .zip(fired)
        {
            // Counted once the commit holds, and only by the commit that processed the event.
            if result? {
                crate::telemetry::metrics::events_processed(1);
                fired
                    .iter()
                    .for_each(|rule| crate::telemetry::metrics::rule_fired(rule));
            }
        }
        self.quarantine(quarantined, fence)?;
        if jobs {
            self.jobs_planned.notify_one();
        }
        if timers {
            self.timers_planned.notify_one();
        }
        Ok(full)
    }

    /// Sets events aside with their reason (see [`Write::Quarantine`]).
    fn quarantine(
        &self,
        events: Vec<Unreadable>,
        fence: Option<&Fence>,
    ) -> Result<(), JournalError> {
        for u in events {
            crate::telemetry::event_quarantined(&u.event_id, &u.reason);
            if u.event_id.is_empty() {
                continue; // not even its id is readable: nothing to mark
            }
            let write = match fence {
                Some(f) => Write::Fenced(f.clone(), Box::new(Write::Quarantine(u))),
                None => Write::Quarantine(u),
            };
            self.journal.write_blocking(write)?;
        }
        Ok(())
    }
}

/// The next unprocessed events, oldest first: as intake parsed them when the writer handed
/// over every one of them, else read back from the journal (after a restart, while lagging).
fn pending(
    store: &dyn Store,
    handoff: &Handoff,
    limit: usize,
) -> Result<Vec<Result<Event, Unreadable>>, JournalError> {
    let ids = store.unprocessed_ids(limit)?;
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    match handoff.take(&ids) {
        Some(events) => Ok(events.into_iter().map(Ok).collect()),
        None => store.unprocessed_events(limit),
    }
}

/// Plans a batch of read events in order, each with the rules that fired; those that cannot be
/// read back or planned are answered as [`Unreadable`] instead of failing the batch.
fn plan_batch(
    pending: Vec<Result<Event, Unreadable>>,
    rules: &RuleSet,
    committed: &dyn State,
) -> (Vec<(Processed, Vec<String>)>, Vec<Unreadable>) {
    // Script state written by earlier events of this batch is not committed yet: later
    // events see it through these layers.
    let mut batch: Vec<BTreeMap<String, serde_json::Value>> = Vec::new();
    let mut processed = Vec::with_capacity(pending.len());
    let mut quarantined = Vec::new();
    for read in pending {
        let planned = read.and_then(|e| {
            try_plan(&e, rules, committed, &batch)
                .and_then(|p| {
                    let fired = p.trace.fired().map(String::from).collect();
                    Ok((p.into_processed(&e.id)?, fired))
                })
                .map_err(|reason| Unreadable {
                    event_id: e.id.clone(),
                    reason: reason.to_string(),
                })
        });
        match planned {
            Ok((p, fired)) => {
                batch.push(p.state.iter().cloned().collect());
                processed.push((p, fired));
            }
            Err(unreadable) => quarantined.push(unreadable),
        }
    }
    (processed, quarantined)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regression_a_round_with_many_rules_holds_few_events() {
        // 256 events × 1,000 candidate rules held ~200 MB of plans until their commit.
        assert_eq!(round_size(2), BATCH);
        assert_eq!(round_size(0), BATCH);
        assert_eq!(round_size(1_000), 8);
        assert!(round_size(100) * 100 <= ROUND_WORK);
    }
}
