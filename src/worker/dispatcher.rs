//! The dispatcher: runs due jobs through their actions, at most `delivery.concurrency` at once,
//! each within `delivery.timeout`. Every attempt is journaled; a retryable failure is scheduled
//! again (see [`retry`]), a permanent one or an exhausted schedule makes a dead letter.
//!
//! A job is only marked done after it ran, so a crash mid-delivery makes it due again on the
//! next start (at-least-once; the email Message-ID and the HTTP idempotency key let receivers
//! recognise a repeat). Jobs in flight are tracked in memory so the loop never starts one twice.
//!
//! Jobs are claimed in batches: one look at the journal reads up to [`CLAIM_BATCH`] due jobs,
//! which wait in memory (claimed, so never read twice) for one of the `concurrency` delivery
//! permits; the journal is read again once fewer than [`REFILL_BELOW`] are left. Reading two or
//! three jobs per look and looking again after every delivery made two blocking-pool reads per
//! job, and those thread hand-offs cost more CPU than the deliveries themselves.
//!
//! When an attempt ran but its outcome cannot be journaled (the disk is full, the journal file
//! is gone), the journal still says "pending, due now". Releasing the job then re-sent it at
//! once, thousands of times a second. Instead the outcome is *held* in memory: the job is not
//! claimed again, no new job is started, and only the journal write is retried, with an
//! exponential backoff, until it succeeds. A job that was delivered is then recorded done and
//! never sent again; a retry keeps the time computed when it failed.
//!
//! When replicas share the journal (DESIGN.md §13) the jobs are claimed in the journal too,
//! under a lease with a fence (see [`super::lease`]): a claim this replica can no longer renew
//! is given up, and an attempt carries its fence so the journal refuses a late completion.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{Notify, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use super::claims::{Claim, InFlight};
use super::lease::JobLeases;
use super::retry;
use crate::actions::{ActionError, Actions, JobContext};
use crate::config::DeliveryConfig;
use crate::journal::{
    AttemptOutcome, Claimed, Job, Journal, JournalError, LeaseTerms, NextStep, Reader, Write,
    Written,
};
use crate::model::event::Timestamp;
use crate::telemetry::replicas::Fenced;

/// Claims, fences and lost claims when replicas share the journal.
mod replicas;
use crate::telemetry::{self, metrics::JobOutcome};
use replicas::claim_sizes;

/// Due jobs read per look at the journal.
const CLAIM_BATCH: usize = 256;
/// The journal is read again for due jobs once fewer claimed jobs than this wait or run.
const REFILL_BELOW: usize = 64;
/// The longest the loop sleeps without looking at the journal.
const MAX_IDLE: Duration = Duration::from_secs(1);
/// The shortest pause between looks when a job is due but in flight (a finished delivery wakes
/// the loop at once anyway).
const MIN_IDLE: Duration = Duration::from_millis(10);
/// The first pause after a journal read or write failed; it doubles up to [`BACKOFF_MAX`].
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(10);

/// What every delivery task shares.
struct Shared {
    journal: Journal,
    actions: Arc<Actions>,
    delivery: DeliveryConfig,
    in_flight: Mutex<InFlight>,
    /// Rung when jobs are planned or a delivery finishes.
    wake: Arc<Notify>,
    /// Claimed jobs still waiting for a permit give up at shutdown (they stay pending).
    stop: CancellationToken,
    /// Who claims jobs in the journal, for how long.
    owner: String,
    terms: LeaseTerms,
    /// The claims held in a shared journal (replicas); `None` when the store is not shared.
    leases: Option<Arc<JobLeases>>,
}

/// The journal failed a read or a write; the loop backs off.
struct JournalDown;

/// Exponential backoff while the journal fails.
#[derive(Default)]
struct Backoff {
    failures: u32,
}

impl Backoff {
    fn next(&mut self) -> Duration {
        let d = BACKOFF_MIN.saturating_mul(1 << self.failures.min(16));
        self.failures += 1;
        d.min(BACKOFF_MAX)
    }
}

/// What the dispatcher works with.
pub struct Dispatcher {
    /// A connection of its own for finding due jobs.
    pub reader: Reader,
    pub journal: Journal,
    pub actions: Arc<Actions>,
    pub delivery: DeliveryConfig,
    /// Rung when jobs are planned.
    pub wake: Arc<Notify>,
    /// How long shutdown waits for deliveries in flight.
    pub drain: Duration,
    /// This replica, as the owner of its claims in a shared journal.
    pub owner: String,
    /// How long claims in a shared journal last and how often they are renewed.
    pub terms: LeaseTerms,
}

impl Dispatcher {
    /// Runs until `stop`, then waits up to `drain` for deliveries in flight; the rest stay
    /// pending in the journal. Deliveries are tasks of `tracker`, the daemon's one tracker.
    pub async fn run(self, stop: CancellationToken, tracker: TaskTracker) {
        let permits = Arc::new(Semaphore::new(self.delivery.concurrency.max(1)));
        let replicas = self.reader.read_blocking(|s| s.shared());
        let leases = replicas.then(|| JobLeases::new(self.owner.clone(), self.terms));
        if let Some(leases) = &leases {
            tracker.spawn(leases.clone().keep(self.reader.clone(), stop.clone()));
        }
        let shared = Arc::new(Shared {
            journal: self.journal,
            actions: self.actions,
            delivery: self.delivery,
            in_flight: Mutex::default(),
            wake: self.wake,
            stop: stop.clone(),
            owner: self.owner,
            terms: self.terms,
            leases,
        });
        let mut backoff = Backoff::default();
        while !stop.is_cancelled() {
            match shared.round(&self.reader, &permits, &tracker).await {
                Ok(pause) => {
                    backoff = Backoff::default();
                    tokio::select! {
                        _ = stop.cancelled() => {}
                        _ = shared.wake.notified() => {}
                        _ = tokio::time::sleep(pause) => {}
                    }
                }
                // Not woken by finished deliveries: only time ends a backoff.
                Err(JournalDown) => tokio::select! {
                    _ = stop.cancelled() => {}
                    _ = tokio::time::sleep(backoff.next()) => {}
                },
            }
        }
        if !shared.drained(self.drain).await {
            tracing::warn!(
                "deliveries still running at shutdown; they stay pending in the journal"
            );
        }
        if shared.flush_held().await.is_err() {
            tracing::warn!(
                "attempts that could not be journaled are lost; those jobs run again at the next start"
            );
        }
        if let Some(leases) = &shared.leases {
            leases.give_back(&self.reader).await;
        }
    }
}

/// How long to sleep: until the next retry falls due, at most [`MAX_IDLE`]; with jobs claimed,
/// their deliveries wake the loop. In a shared journal a job due now that this replica could not
/// claim is another replica's: it is looked at again after [`MAX_IDLE`] (when its claim may have
/// run out), not every [`MIN_IDLE`] (new jobs wake the loop through the journal's notifications).
async fn idle_time(reader: &Reader, claimed: usize, shared: bool) -> Result<Duration, JournalDown> {
    if claimed > 0 {
        return Ok(MAX_IDLE);
    }
    Ok(match logged(reader.next_due().await)? {
        Some(at) => {
            let wait = (at.millis() - Timestamp::now().millis()).max(0) as u64;
            let least = if shared && wait == 0 {
                MAX_IDLE
            } else {
                MIN_IDLE
            };
            Duration::from_millis(wait).clamp(least, MAX_IDLE)
        }
        None => MAX_IDLE,
    })
}

/// A failed journal read is logged (rate-limited) and makes the loop back off.
fn logged<T>(read: Result<T, crate::journal::JournalError>) -> Result<T, JournalDown> {
    read.map_err(|e| {
        telemetry::dispatch_read_failed(&e);
        JournalDown
    })
}

impl Shared {
    /// One look at the journal: journal held outcomes first, then, when few claimed jobs are
    /// left, claim a batch of due jobs, each a task that waits for a permit. Answers how long to
    /// sleep, or that the journal is failing.
    async fn round(
        self: &Arc<Self>,
        reader: &Reader,
        permits: &Arc<Semaphore>,
        tracker: &TaskTracker,
    ) -> Result<Duration, JournalDown> {
        self.flush_held().await?;
        let claimed = self.claimed();
        let shared = self.leases.is_some();
        let (batch, refill_below) = claim_sizes(shared, self.delivery.concurrency);
        if claimed >= refill_below {
            return Ok(MAX_IDLE);
        }
        let generation = self.generation();
        let asked = Instant::now();
        let due = logged(self.claim_due(reader, batch - claimed).await)?;
        for Claimed { item: job, fence } in due {
            match self.claim(job.id, generation) {
                Claim::Taken => {}
                Claim::Busy => continue,
                Claim::Stale => break,
            }
            if let Some(leases) = &self.leases {
                leases.add(job.id, fence, asked);
            }
            let (shared, permits) = (self.clone(), permits.clone());
            tracker.spawn(async move { shared.queued(job, permits).await });
        }
        idle_time(reader, self.claimed(), shared).await
    }

    /// A claimed job: waits for a delivery permit, then delivers; at shutdown it gives the
    /// claim back unstarted.
    async fn queued(self: Arc<Self>, job: Job, permits: Arc<Semaphore>) {
        let permit = tokio::select! {
            biased;
            _ = self.stop.cancelled() => None,
            permit = permits.acquire_owned() => permit.ok(),
        };
        match permit {
            // While an attempt is held (the journal fails), no new job starts: the claimed
            // ones go back to the journal, pending, and are claimed again once it works.
            Some(permit) if !self.stop.is_cancelled() && !self.holding() => {
                self.deliver(job).await;
                drop(permit);
            }
            _ => {
                self.unclaim(job.id);
                if let Some(leases) = &self.leases {
                    leases.unstarted(job.id); // given back to the journal at shutdown
                }
                self.wake.notify_one();
            }
        }
    }

    /// Whether an attempt that could not be journaled is held.
    fn holding(&self) -> bool {
        self.in_flight.lock().map_or(true, |f| !f.held.is_empty())
    }

    /// Jobs claimed: waiting for a permit or being delivered.
    fn claimed(&self) -> usize {
        self.in_flight.lock().map_or(0, |f| f.ids.len())
    }

    /// Waits until no delivery is in flight, at most `deadline`; false when some still are.
    async fn drained(&self, deadline: Duration) -> bool {
        let until = Instant::now() + deadline;
        loop {
            let busy = self.in_flight.lock().is_ok_and(|f| !f.ids.is_empty());
            if !busy {
                return true;
            }
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero()
                || tokio::time::timeout(left, self.wake.notified())
                    .await
                    .is_err()
            {
                return false;
            }
        }
    }

    fn generation(&self) -> u64 {
        self.in_flight
            .lock()
            .map(|f| f.generation)
            .unwrap_or(u64::MAX)
    }

    fn claim(&self, id: i64, read_at: u64) -> Claim {
        let Ok(mut f) = self.in_flight.lock() else {
            return Claim::Stale;
        };
        // A shared journal's claim is never a stale list: the row was claimed for this replica
        // just now, and a finished attempt ended its previous claim in the same commit.
        let finished = match self.leases {
            Some(_) => Some(false),
            None => f.finished_since(read_at, id),
        };
        match finished {
            None => Claim::Stale,
            Some(true) => Claim::Busy,
            Some(false) if f.held.contains_key(&id) || !f.ids.insert(id) => Claim::Busy,
            Some(false) => Claim::Taken,
        }
    }

    /// Gives back a claim that was never started.
    fn unclaim(&self, id: i64) {
        if let Ok(mut f) = self.in_flight.lock() {
            f.ids.remove(&id);
        }
    }

    /// Called after the attempt is journaled, or held.
    fn release(&self, id: i64) {
        if let Ok(mut f) = self.in_flight.lock() {
            f.ids.remove(&id);
            f.finished(id);
        }
    }

    /// Keeps an attempt whose outcome could not be journaled; its job is not claimed again.
    fn hold(&self, outcome: AttemptOutcome) {
        if let Ok(mut f) = self.in_flight.lock() {
            f.held.insert(outcome.job_id, outcome);
        }
    }

    fn held(&self) -> Vec<AttemptOutcome> {
        self.in_flight
            .lock()
            .map(|f| f.held.values().cloned().collect())
            .unwrap_or_default()
    }

    /// Journals the held attempts; `Err` at the first that still fails (the rest stay held).
    async fn flush_held(&self) -> Result<(), JournalDown> {
        for outcome in self.held() {
            let job_id = outcome.job_id;
            match self.journal.write(self.attempt_write(outcome)).await {
                Err(e) => {
                    telemetry::attempt_unjournaled(Some(job_id), &e);
                    return Err(JournalDown);
                }
                Ok(Written::Fenced) => telemetry::replicas::fenced_off(Fenced::Attempt, &job_id),
                Ok(_) => {}
            }
            if let Some(leases) = &self.leases {
                leases.remove(job_id);
            }
            if let Ok(mut f) = self.in_flight.lock() {
                f.held.remove(&job_id);
                f.finished(job_id);
            }
            telemetry::attempt_journaled_late(job_id);
        }
        Ok(())
    }

    /// One attempt, inside its own span (which follows the future, not the thread).
    async fn deliver(&self, job: Job) {
        let span = tracing::info_span!("deliver", job = job.id, event_id = %job.event_id, rule = %job.rule, action = %job.kind, attempt = job.attempts + 1);
        self.attempt(job).instrument(span).await;
    }

    /// Run, journal the outcome (or hold it), then let the job go.
    async fn attempt(&self, job: Job) {
        let ctx = JobContext {
            job_id: job.id,
            event_id: job.event_id.clone(),
            rule: job.rule.clone(),
            action_index: job.action_index,
            attempt: job.attempts + 1,
        };
        let started_at = Timestamp::now();
        let Some(result) = self.execute_while_claimed(&job, &ctx).await else {
            self.abandon(job.id);
            return;
        };
        let finished_at = Timestamp::now();
        let (next, error) = self.next_step(result, finished_at, ctx.attempt);
        telemetry::metrics::job_finished(
            &job.kind,
            match next {
                NextStep::Done => JobOutcome::Done,
                NextStep::Retry(_) => JobOutcome::Retried,
                NextStep::Dead => JobOutcome::Dead,
            },
        );
        let outcome = AttemptOutcome {
            job_id: job.id,
            attempt: ctx.attempt,
            started_at,
            finished_at,
            error,
            next,
        };
        self.journal_attempt(outcome).await;
        self.release(job.id);
        self.wake.notify_one();
    }

    /// What follows an attempt's result, logged.
    fn next_step(
        &self,
        result: Result<(), ActionError>,
        finished_at: Timestamp,
        attempt: u32,
    ) -> (NextStep, Option<String>) {
        let (next, error) = match result {
            Ok(()) => (NextStep::Done, None),
            Err(ActionError::Permanent { message }) => (NextStep::Dead, Some(message)),
            Err(ActionError::Retryable {
                message,
                retry_after,
            }) => {
                let at = retry::next_attempt(
                    finished_at,
                    attempt,
                    &self.delivery.retry_schedule,
                    retry_after,
                );
                (at.map_or(NextStep::Dead, NextStep::Retry), Some(message))
            }
        };
        match (&next, &error) {
            (NextStep::Done, _) => telemetry::delivered(),
            (NextStep::Retry(at), Some(e)) => telemetry::delivery_retry(e, &at.to_rfc3339()),
            (_, e) => telemetry::delivery_dead(e.as_deref().unwrap_or("")),
        }
        (next, error)
    }

    async fn execute(&self, job: &Job, ctx: &JobContext) -> Result<(), ActionError> {
        let Some(action) = self.actions.get(&job.kind) else {
            return Err(ActionError::Permanent {
                message: format!(
                    "no executor for action `{}` (known: {})",
                    job.kind,
                    self.actions.names().join(", ")
                ),
            });
        };
        let timeout = self.delivery.timeout;
        tokio::time::timeout(timeout, action.execute(&job.params, ctx))
            .await
            .unwrap_or_else(|_| {
                Err(ActionError::Retryable {
                    message: format!("timed out after {timeout:?}"),
                    retry_after: None,
                })
            })
    }
}
