//! The timer worker (DESIGN.md §12): fires due timers into jobs. Each round reads the timers due
//! on the daemon's clock, decides each one (fire, or skip with the reason: later than the rule's
//! `max_late`, `if_still` false, digest rule gone), and commits the decisions in one
//! transaction that marks each timer and creates its jobs; only a pending timer changes, so a
//! timer fires exactly once even if the daemon dies between reading and committing. Timers
//! that fell due while the daemon was down are simply due at start-up.
//!
//! When replicas share the journal, due timers are claimed for this replica under a lease
//! (skipping those another holds) and their settling carries the claims' fences, so each timer
//! is settled by one replica, and not by one paused past its lease.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::journal::{
    Claimed, Fence, Firing, Journal, JournalError, LeaseTerms, NewJob, Reader, Store, Timer,
    TimerKind, Write, Written,
};
use crate::model::actions::ActionKind;
use crate::model::event::{Event, Timestamp};
use crate::plan::plain_job;
use crate::rules::live::LiveRules;
use crate::rules::RuleSet;

/// Timers decided and committed per round.
const BATCH: usize = 2000;
/// The longest the worker sleeps between looks (a timer created due sooner than the next
/// known one is seen within this).
const POLL: Duration = Duration::from_millis(200);
/// Events of one order read to find its latest (`if_still`).
const TIMELINE_LIMIT: usize = 10_000;
/// How often the `/healthz` counts are refreshed.
const COUNT_EVERY: Duration = Duration::from_secs(1);

/// Pending timers as `/healthz` shows them (refreshed by the worker about once a second, so
/// the endpoint stays answered from memory).
#[derive(Debug, Default)]
pub struct TimerCounts {
    pending: AtomicU64,
    /// When the next one is due (ms since the epoch; 0: none).
    next_due: AtomicI64,
}

impl TimerCounts {
    pub fn snapshot(&self) -> serde_json::Value {
        let next = self.next_due.load(Ordering::Relaxed);
        serde_json::json!({
            "pending": self.pending.load(Ordering::Relaxed),
            "next_due": (next > 0).then_some(Timestamp(next)),
        })
    }
}

pub struct TimerWorker {
    /// A connection of its own.
    pub reader: Reader,
    pub journal: Journal,
    pub rules: Arc<LiveRules>,
    /// Rung after a round that created jobs, so the dispatcher starts at once.
    pub jobs_planned: Arc<Notify>,
    /// What `/healthz` reports.
    pub counts: Arc<TimerCounts>,
    /// This replica, as the owner of its timer claims in a shared journal.
    pub owner: String,
    pub terms: LeaseTerms,
}

impl TimerWorker {
    /// Fires due timers until `stop` is cancelled.
    pub async fn run(self, stop: CancellationToken) {
        let mut counted = std::time::Instant::now() - COUNT_EVERY;
        while !stop.is_cancelled() {
            if counted.elapsed() >= COUNT_EVERY {
                counted = std::time::Instant::now();
                self.count().await;
            }
            let pause = match self.round().await {
                Ok(n) if n >= BATCH => Duration::ZERO,
                Ok(_) => self.pause().await,
                Err(e) => {
                    crate::telemetry::timers_round_failed(&e);
                    Duration::from_secs(1)
                }
            };
            if pause.is_zero() {
                continue;
            }
            tokio::select! {
                _ = stop.cancelled() => {}
                _ = tokio::time::sleep(pause) => {}
            }
        }
    }

    /// Refreshes [`TimerCounts`] (a failed read keeps the last numbers).
    async fn count(&self) {
        let read = self
            .reader
            .read(|s| Ok((s.timers_pending()?, s.next_timer_due()?)))
            .await;
        if let Ok((pending, next)) = read {
            self.counts.pending.store(pending, Ordering::Relaxed);
            let next = next.map_or(0, Timestamp::millis);
            self.counts.next_due.store(next, Ordering::Relaxed);
        }
    }

    /// How long until the next timer is due, at most [`POLL`].
    async fn pause(&self) -> Duration {
        let next = self
            .reader
            .read(|s| s.next_timer_due())
            .await
            .ok()
            .flatten();
        let now = Timestamp::now().millis();
        next.map_or(POLL, |at| {
            Duration::from_millis((at.millis() - now).clamp(0, POLL.as_millis() as i64) as u64)
        })
    }

    /// Settles one batch of due timers; answers how many were due.
    async fn round(&self) -> Result<usize, JournalError> {
        let Some(rules) = self.rules.current() else {
            return Ok(0); // no rules loaded yet: `if_still` and digests need them
        };
        let now = Timestamp::now();
        let (owner, length) = (self.owner.clone(), self.terms.length);
        let (due, firings, fences) = self
            .reader
            .read(move |store| {
                let due = store.claim_timers(&owner, now, length, BATCH)?;
                let firings: Vec<Firing> = due
                    .iter()
                    .map(|t| settle(&t.item, now, &rules, store))
                    .collect();
                Ok((due.len(), firings, fences(&due, store.shared())))
            })
            .await?;
        if firings.is_empty() {
            return Ok(due);
        }
        let jobs = firings
            .iter()
            .any(|f| f.outcome.as_ref().is_ok_and(|j| !j.is_empty()));
        let write = match fences {
            Some(fence) => Write::Fenced(fence, Box::new(Write::FireTimers(firings))),
            None => Write::FireTimers(firings),
        };
        match self.journal.write(write).await? {
            Written::Changed(n) => crate::telemetry::timers_settled(n),
            Written::Fenced => {
                let what = crate::telemetry::replicas::Fenced::Timers;
                crate::telemetry::replicas::fenced_off(what, &"due timers");
            }
            _ => {}
        }
        if jobs {
            self.jobs_planned.notify_one();
        }
        Ok(due)
    }
}

/// The claims the settling of `due` is fenced by, in a shared journal.
fn fences(due: &[Claimed<Timer>], shared: bool) -> Option<Fence> {
    shared.then(|| Fence::Timers(due.iter().map(|t| (t.item.id, t.fence)).collect()))
}

/// Decides one due timer.
fn settle(t: &Timer, now: Timestamp, rules: &RuleSet, store: &dyn Store) -> Firing {
    Firing {
        id: t.id,
        outcome: decide(t, now, rules, store),
    }
}

fn decide(
    t: &Timer,
    now: Timestamp,
    rules: &RuleSet,
    store: &dyn Store,
) -> Result<Vec<NewJob>, String> {
    let late = now.millis() - t.due_at.millis();
    if let Some(max) = t.max_late_ms.filter(|&max| late > max) {
        return Err(format!(
            "skipped: due {}, {} late (max_late {})",
            t.due_at.to_rfc3339(),
            human(late),
            human(max)
        ));
    }
    if let Some(expr) = &t.if_still {
        let latest = latest_event(t, store).ok_or("skipped: the order's events are gone")?;
        match rules.if_still(expr, &latest) {
            Ok(true) => {}
            Ok(false) => {
                return Err(format!(
                    "skipped: if_still false (`{expr}` on event {})",
                    latest.id
                ))
            }
            Err(e) => return Err(format!("skipped: {e}")),
        }
    }
    match t.kind {
        TimerKind::Digest => digest_jobs(t, rules, store),
        TimerKind::Wait | TimerKind::Delay => Ok(t.jobs.clone()),
    }
}

fn human(ms: i64) -> String {
    humantime::format_duration(Duration::from_secs((ms.max(0) / 1000) as u64)).to_string()
}

/// The order's latest event (the timer's own when it has no order).
fn latest_event(t: &Timer, store: &dyn Store) -> Option<Event> {
    let id = match &t.order_id {
        Some(order) => store
            .order_events(Some(&t.source), order, TIMELINE_LIMIT)
            .ok()?
            .pop()
            .map_or_else(|| t.event_id.clone(), |e| e.id),
        None => t.event_id.clone(),
    };
    store.event(&id).ok().flatten()
}

/// A digest's jobs: its rule's actions rendered over the collected events.
fn digest_jobs(t: &Timer, rules: &RuleSet, store: &dyn Store) -> Result<Vec<NewJob>, String> {
    let events: Vec<Event> = t
        .events
        .iter()
        .filter_map(|id| store.event(id).ok().flatten())
        .collect();
    let planned = rules
        .render_digest(&t.rule, &events)
        .ok_or_else(|| format!("skipped: rule `{}` is gone or its events are", t.rule))?;
    Ok(planned
        .iter()
        .filter(|a| !matches!(a.kind, ActionKind::Script | ActionKind::Plugin(_)))
        .map(|a| plain_job(&t.event_id, &t.rule, a))
        .collect())
}
