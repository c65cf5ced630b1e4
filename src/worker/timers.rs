//! The timer worker (DESIGN.md §12): fires due timers into jobs. Each round reads the timers due
//! on the daemon's clock, decides each one (fire, or skip with the reason: later than the rule's
//! `max_late`, `if_still` false, digest rule gone; or cancel a wait whose order has an
//! `unless` event, e.g. one journaled before the wait started), and commits the decisions in one
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
    Claimed, Fence, Firing, Journal, JournalError, LeaseTerms, NewJob, Reader, Settle, Store,
    Timer, TimerKind, Write, Written,
};
use crate::model::actions::ActionKind;
use crate::model::event::{Event, Timestamp};
use crate::plan::plain_job;
use crate::plan::time::unless_match;
use crate::rules::live::LiveRules;
use crate::rules::time::duration_text;
use crate::rules::RuleSet;

/// Timers decided and committed per round.
const BATCH: usize = 2000;
/// The longest the worker sleeps between looks. The pipeline wakes it when it commits new
/// timers (one may be due sooner than the next known one), so this is only the fallback for
/// timers written by someone else (and it paces the `/healthz` counts and `limit` pruning).
const POLL: Duration = Duration::from_secs(1);
/// Events of one order read to find its latest (`if_still`) or an `unless` event.
const TIMELINE_LIMIT: usize = 10_000;
/// How often the `/healthz` counts are refreshed.
const COUNT_EVERY: Duration = Duration::from_secs(1);
/// `limit` state lives under this prefix (`limit:<rule>:<rendered key>`).
const LIMIT_PREFIX: &str = "limit:";
/// A key's state is deleted this many windows (`per`) after its last run: the pipeline plans
/// by `received_at`, so one catching up may still look into a past window for a while.
const LIMIT_KEEP_WINDOWS: u32 = 2;
/// Expired `limit` state is looked for every shortest `per` of the rules, within these bounds.
const LIMIT_PRUNE_EVERY: (Duration, Duration) = (Duration::from_secs(1), Duration::from_secs(60));

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
    /// Rung by the pipeline when it committed timers: the next one may be due sooner.
    pub timers_planned: Arc<Notify>,
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
        let mut pruned = std::time::Instant::now();
        while !stop.is_cancelled() {
            if counted.elapsed() >= COUNT_EVERY {
                counted = std::time::Instant::now();
                self.count().await;
            }
            if pruned.elapsed() >= self.prune_every() {
                pruned = std::time::Instant::now();
                self.prune_limits().await;
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
                _ = self.timers_planned.notified() => {}
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

    fn prune_every(&self) -> Duration {
        let (min, max) = LIMIT_PRUNE_EVERY;
        let rules = self.rules.current();
        let rules = rules.as_deref().map_or(&[][..], RuleSet::rules);
        rules
            .iter()
            .filter_map(|r| Some(r.time.limit.as_ref()?.per))
            .min()
            .unwrap_or(max)
            .clamp(min, max)
    }

    /// Deletes `limit` state whose windows are over (kept [`LIMIT_KEEP_WINDOWS`] windows after
    /// its last run), and that of rules that no longer have a limit.
    async fn prune_limits(&self) {
        let Some(rules) = self.rules.current() else {
            return;
        };
        let now = Timestamp::now().millis();
        let expired = self
            .reader
            .read(move |s| Ok(expired_limits(&s.state_keys(LIMIT_PREFIX)?, &rules, now)))
            .await;
        let deleted = match expired {
            Ok(keys) if keys.is_empty() => return,
            Ok(keys) => self.journal.write(Write::DeleteStateUnchanged(keys)).await,
            Err(e) => Err(e),
        };
        match deleted {
            Ok(Written::Changed(n)) => tracing::debug!(keys = n, "pruned expired limit state"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "pruning limit state failed"),
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
                let firings = due
                    .iter()
                    .map(|t| settle(&t.item, now, &rules, store))
                    .collect::<Result<Vec<Firing>, _>>()?;
                Ok((due.len(), firings, fences(&due, store.shared())))
            })
            .await?;
        if firings.is_empty() {
            return Ok(due);
        }
        let jobs = firings.iter().any(|f| !f.outcome.jobs().is_empty());
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

/// Decides one due timer (a failed journal read fails the round: nothing is settled blind).
fn settle(
    t: &Timer,
    now: Timestamp,
    rules: &RuleSet,
    store: &dyn Store,
) -> Result<Firing, JournalError> {
    let outcome = match cancelled_by(t, rules, store)? {
        Some(reason) => Settle::Cancel(reason),
        None => match decide(t, now, rules, store) {
            Ok(jobs) => Settle::Fire(jobs),
            Err(reason) => Settle::Skip(reason),
        },
    };
    Ok(Firing { id: t.id, outcome })
}

/// Why a due wait is cancelled: an event of its order matching its rule's `unless` is
/// journaled. Later ones cancel the wait when they are planned; this finds the ones journaled
/// before the wait started (checked here, once per wait, rather than for every event planned).
fn cancelled_by(
    t: &Timer,
    rules: &RuleSet,
    store: &dyn Store,
) -> Result<Option<String>, JournalError> {
    let unless = rules
        .rule(&t.rule)
        .and_then(|r| r.time.wait.as_ref())
        .map(|w| w.unless.as_slice())
        .unwrap_or_default();
    let Some(order) = t.order_id.as_deref().filter(|_| t.kind == TimerKind::Wait) else {
        return Ok(None);
    };
    if unless.is_empty() {
        return Ok(None);
    }
    let timeline = store.order_timeline(&t.source, order, TIMELINE_LIMIT)?;
    let entries = timeline
        .iter()
        .map(|(id, topic, canonical)| (id.as_str(), topic.as_str(), canonical.as_deref()));
    Ok(unless_match(unless, &t.event_id, entries))
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

/// The `limit` state keys whose last run (when the key was written: runs over the limit write
/// nothing) is more than [`LIMIT_KEEP_WINDOWS`] windows ago; a key of a rule without a limit
/// now has a window of zero.
fn expired_limits(
    keys: &[(String, Timestamp)],
    rules: &RuleSet,
    now: i64,
) -> Vec<(String, Timestamp)> {
    keys.iter()
        .filter(|(key, written)| {
            let keep = limit_window(key, rules) * LIMIT_KEEP_WINDOWS;
            let keep = i64::try_from(keep.as_millis()).unwrap_or(i64::MAX / 4);
            written.millis().saturating_add(keep) < now
        })
        .cloned()
        .collect()
}

/// The `per` of the rule a `limit:<rule>:<key>` state key belongs to.
fn limit_window(key: &str, rules: &RuleSet) -> Duration {
    let rest = key.strip_prefix(LIMIT_PREFIX).unwrap_or(key);
    rules
        .rules()
        .iter()
        .filter_map(|r| Some((r.name.as_str(), r.time.limit.as_ref()?.per)))
        .find(|(name, _)| rest.strip_prefix(name).is_some_and(|k| k.starts_with(':')))
        .map_or(Duration::ZERO, |(_, per)| per)
}

fn human(ms: i64) -> String {
    duration_text(Duration::from_secs((ms.max(0) / 1000) as u64))
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
