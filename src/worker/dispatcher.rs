//! The dispatcher: runs due jobs through their actions, at most `delivery.concurrency` at once,
//! each within `delivery.timeout`. Every attempt is journaled; a retryable failure is scheduled
//! again (see [`retry`]), a permanent one or an exhausted schedule makes a dead letter.
//!
//! A job is only marked done after it ran, so a crash mid-delivery makes it due again on the
//! next start (at-least-once; the email Message-ID and the HTTP idempotency key let receivers
//! recognise a repeat). Jobs in flight are tracked in memory so the loop never starts one twice.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Notify, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::retry;
use crate::actions::{ActionError, Actions, JobContext};
use crate::config::DeliveryConfig;
use crate::event::Timestamp;
use crate::journal::{AttemptOutcome, Job, Journal, NextStep, SqliteStore, Store, Write};

/// The longest the loop sleeps without looking at the journal.
const MAX_IDLE: Duration = Duration::from_secs(1);
/// The shortest pause between looks when a job is due but in flight (a finished delivery wakes
/// the loop at once anyway).
const MIN_IDLE: Duration = Duration::from_millis(10);

/// Jobs being delivered, and how many deliveries have finished. A list of due jobs read before
/// a delivery finished may still show that job as pending: claims from such a stale list are
/// refused (the generation moved on), so a job is never delivered twice.
#[derive(Default)]
struct InFlight {
    ids: HashSet<i64>,
    generation: u64,
}

/// What every delivery task shares.
struct Shared {
    journal: Journal,
    actions: Arc<Actions>,
    delivery: DeliveryConfig,
    in_flight: Mutex<InFlight>,
    /// Rung when jobs are planned or a delivery finishes.
    wake: Arc<Notify>,
}

/// Runs until `stop`, then waits up to `drain` for deliveries in flight; the rest stay pending
/// in the journal.
pub async fn run(
    reader: Arc<Mutex<SqliteStore>>,
    journal: Journal,
    actions: Arc<Actions>,
    delivery: DeliveryConfig,
    wake: Arc<Notify>,
    stop: CancellationToken,
    drain: Duration,
) {
    let permits = Arc::new(Semaphore::new(delivery.concurrency.max(1)));
    let shared = Arc::new(Shared {
        journal,
        actions,
        delivery,
        in_flight: Mutex::default(),
        wake,
    });
    let tracker = TaskTracker::new();
    while !stop.is_cancelled() {
        let free = permits.available_permits();
        let generation = shared.generation();
        let due = if free > 0 {
            read(&reader, move |s| s.due_jobs(Timestamp::now(), free * 2)).await
        } else {
            Vec::new()
        };
        for job in due {
            match shared.claim(job.id, generation) {
                Claim::Taken => {}
                Claim::Busy => continue,
                Claim::Stale => break,
            }
            let Ok(permit) = permits.clone().try_acquire_owned() else {
                shared.unclaim(job.id);
                break;
            };
            let shared = shared.clone();
            tracker.spawn(async move {
                shared.deliver(job).await;
                drop(permit);
            });
        }
        let pause = idle_time(&reader, permits.available_permits()).await;
        tokio::select! {
            _ = stop.cancelled() => {}
            _ = shared.wake.notified() => {}
            _ = tokio::time::sleep(pause) => {}
        }
    }
    tracker.close();
    if tokio::time::timeout(drain, tracker.wait()).await.is_err() {
        tracing::warn!("deliveries still running at shutdown; they stay pending in the journal");
    }
}

/// How long to sleep: until the next retry falls due, at most [`MAX_IDLE`].
async fn idle_time(reader: &Arc<Mutex<SqliteStore>>, free: usize) -> Duration {
    if free == 0 {
        return MAX_IDLE;
    }
    match read(reader, |s| s.next_due()).await {
        Some(at) => {
            let wait = (at.millis() - Timestamp::now().millis()).max(0) as u64;
            Duration::from_millis(wait).clamp(MIN_IDLE, MAX_IDLE)
        }
        None => MAX_IDLE,
    }
}

/// Runs a journal read off the async threads; a failed read is logged and reads as empty.
async fn read<T: Send + Default + 'static>(
    reader: &Arc<Mutex<SqliteStore>>,
    f: impl FnOnce(&SqliteStore) -> Result<T, crate::journal::JournalError> + Send + 'static,
) -> T {
    let reader = reader.clone();
    let result = tokio::task::spawn_blocking(move || match reader.lock() {
        Ok(store) => f(&store).map_err(|e| e.to_string()),
        Err(_) => Err("journal reader poisoned".to_string()),
    })
    .await;
    match result {
        Ok(Ok(rows)) => rows,
        Ok(Err(e)) => {
            tracing::error!(error = %e, "dispatcher cannot read the journal");
            T::default()
        }
        Err(e) => {
            tracing::error!(error = %e, "dispatcher read task failed");
            T::default()
        }
    }
}

enum Claim {
    Taken,
    /// Already being delivered.
    Busy,
    /// A delivery finished since the list was read: read again.
    Stale,
}

impl Shared {
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
        if f.generation != read_at {
            Claim::Stale
        } else if f.ids.insert(id) {
            Claim::Taken
        } else {
            Claim::Busy
        }
    }

    /// Gives back a claim that was never started.
    fn unclaim(&self, id: i64) {
        if let Ok(mut f) = self.in_flight.lock() {
            f.ids.remove(&id);
        }
    }

    /// Called after the attempt is journaled.
    fn release(&self, id: i64) {
        if let Ok(mut f) = self.in_flight.lock() {
            f.ids.remove(&id);
            f.generation += 1;
        }
    }

    /// One attempt: run, journal the outcome, then let the job go.
    async fn deliver(&self, job: Job) {
        let ctx = JobContext {
            job_id: job.id,
            event_id: job.event_id.clone(),
            rule: job.rule.clone(),
            action_index: job.action_index,
            attempt: job.attempts + 1,
        };
        let span = tracing::info_span!("deliver", job = job.id, event_id = %job.event_id, rule = %job.rule, action = %job.kind, attempt = ctx.attempt);
        let _enter = span.enter();
        let started_at = Timestamp::now();
        let result = self.execute(&job, &ctx).await;
        let finished_at = Timestamp::now();
        let (next, error) = match result {
            Ok(()) => (NextStep::Done, None),
            Err(ActionError::Permanent { message }) => (NextStep::Dead, Some(message)),
            Err(ActionError::Retryable {
                message,
                retry_after,
            }) => {
                let at = retry::next_attempt(
                    finished_at,
                    ctx.attempt,
                    &self.delivery.retry_schedule,
                    retry_after,
                );
                (at.map_or(NextStep::Dead, NextStep::Retry), Some(message))
            }
        };
        match (&next, &error) {
            (NextStep::Done, _) => tracing::info!("delivered"),
            (NextStep::Retry(at), Some(e)) => {
                tracing::warn!(error = %e, retry_at = %at.to_rfc3339(), "delivery failed; will retry")
            }
            (_, e) => tracing::error!(
                error = e.as_deref().unwrap_or(""),
                "delivery failed; dead letter"
            ),
        }
        let outcome = AttemptOutcome {
            job_id: job.id,
            started_at,
            finished_at,
            error,
            next,
        };
        if let Err(e) = self.journal.write(Write::Attempt(outcome)).await {
            tracing::error!(error = %e, "cannot journal the attempt; the job stays pending");
        }
        self.release(job.id);
        self.wake.notify_one();
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
