//! Time in planning (DESIGN.md §12), pure: a matched rule's jobs go through its `limit`,
//! `digest`, `wait`, the actions' `delay` and `quiet_hours`, and come out as jobs due now,
//! timers, `limit` state and trace notes. "Now" is the event's `received_at`, never the wall
//! clock, so rule tests and `simulate` plan on a virtual clock.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::journal::{NewJob, NewTimer, TimerKind};
use crate::model::event::{Event, Timestamp};
use crate::rules::compile::time::{Limit, Wait};
use crate::rules::compile::Rule;
use crate::rules::time::{duration_text, pattern_matches};
use crate::rules::RuleSet;
use crate::script::State;
use crate::template::render::sparse_context;
use crate::template::EventView;

/// What time did to one rule's run, as the trace shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimeNote {
    pub rule: String,
    pub what: TimeWhat,
    /// The action (its position) a delay or postponement holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due_at: Option<Timestamp>,
    pub detail: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TimeWhat {
    /// A wait started (its actions run when it ends).
    Wait,
    /// A wait cancelled by an `unless` event. The pipeline notes it no more (traces of older
    /// versions have it: an `unless` event journaled before the wait started cancelled it at
    /// once); the rule-test runner's history notes every cancellation with it.
    Cancelled,
    /// An action delayed (`delay`).
    Delayed,
    /// An action postponed to the end of quiet hours.
    Postponed,
    /// The event joined a digest window.
    Digest,
    /// The run was over its `limit`: nothing planned.
    Limited,
    /// This event cancels the pending waits of its order for this rule.
    Cancels,
}

/// A matched rule's run after time: jobs due now, timers, and `limit` state to commit.
#[derive(Debug, Default)]
pub struct Timed {
    pub jobs: Vec<NewJob>,
    pub timers: Vec<NewTimer>,
    pub state: BTreeMap<String, Value>,
    pub notes: Vec<TimeNote>,
}

/// Puts one matched rule's jobs through its time settings.
pub fn apply(
    r: &Rule,
    set: &RuleSet,
    view: &EventView<'_>,
    jobs: Vec<NewJob>,
    state: &dyn State,
) -> Timed {
    let event = view.scope().event;
    let now = event.received_at.millis();
    let mut out = Timed::default();
    if let Some(limit) = &r.time.limit {
        let key = limit_key(r, limit, set, view);
        let (runs, over) = limit_runs(limit, state.get(&key), now);
        if over {
            out.notes.push(note(
                r,
                TimeWhat::Limited,
                None,
                None,
                format!(
                    "limited: {} run(s) for key `{}` within {}",
                    runs.len(),
                    key_text(&key, &r.name),
                    duration_text(limit.per)
                ),
            ));
            return out;
        }
        out.state.insert(key, Value::from(runs));
    }
    if let Some(digest) = &r.time.digest {
        let mut due = now + ms(digest.every);
        if let Some(end) = r.time.quiet.as_ref().and_then(|q| q.end_if_quiet(due)) {
            due = end;
        }
        out.timers
            .push(timer(r, TimerKind::Digest, -1, due, Vec::new(), None));
        out.timers
            .last_mut()
            .into_iter()
            .for_each(|t| t.digest_max = digest.max);
        let detail = format!(
            "collected into the digest window closing at or before {}",
            Timestamp(due).to_rfc3339()
        );
        out.notes
            .push(note(r, TimeWhat::Digest, None, Some(due), detail));
        return out;
    }
    if let Some(wait) = &r.time.wait {
        wait_timer(r, wait, event, jobs, &mut out);
        return out;
    }
    for job in jobs {
        delay_or_now(r, event, job, &mut out);
    }
    out
}

fn note(
    r: &Rule,
    what: TimeWhat,
    action: Option<usize>,
    due: Option<i64>,
    detail: String,
) -> TimeNote {
    TimeNote {
        rule: r.name.clone(),
        what,
        action,
        due_at: due.map(Timestamp),
        detail,
    }
}

fn timer(
    r: &Rule,
    kind: TimerKind,
    action: i64,
    due: i64,
    jobs: Vec<NewJob>,
    note: Option<String>,
) -> NewTimer {
    NewTimer {
        rule: r.name.clone(),
        kind,
        action_index: action,
        due_at: Timestamp(due),
        jobs,
        max_late_ms: r.time.max_late.map(ms),
        if_still: None,
        note,
        digest_max: None,
    }
}

fn ms(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX / 4)
}

/// The state key of a limit: `limit:<rule>:<rendered key>`.
fn limit_key(r: &Rule, limit: &Limit, set: &RuleSet, view: &EventView<'_>) -> String {
    let ctx = sparse_context(view.scope(), &r.template_paths, &r.name, &r.description);
    let key = match set.templates().render(&limit.key, &ctx) {
        Ok(Value::String(s)) => s,
        Ok(other) => other.to_string(),
        Err(_) => String::new(),
    };
    format!("limit:{}:{key}", r.name)
}

fn key_text<'k>(key: &'k str, rule: &str) -> &'k str {
    key.strip_prefix("limit:")
        .and_then(|k| k.strip_prefix(rule))
        .and_then(|k| k.strip_prefix(':'))
        .unwrap_or(key)
}

/// The runs inside the window (with this one when it is allowed), and whether it is over.
fn limit_runs(limit: &Limit, stored: Option<Value>, now: i64) -> (Vec<i64>, bool) {
    let since = now - ms(limit.per);
    let mut runs: Vec<i64> = stored
        .and_then(|v| serde_json::from_value::<Vec<i64>>(v).ok())
        .unwrap_or_default()
        .into_iter()
        .filter(|&t| t > since && t <= now)
        .collect();
    if runs.len() >= limit.max as usize {
        return (runs, true);
    }
    runs.push(now);
    (runs, false)
}

/// A wait's timer. An `unless` event journaled before the wait started is not looked for
/// here (that was one order read per event planned): the timer worker finds it when the wait
/// comes due and cancels the wait then (`worker::timers`).
fn wait_timer(r: &Rule, wait: &Wait, event: &Event, jobs: Vec<NewJob>, out: &mut Timed) {
    let now = event.received_at.millis();
    let mut due = now + ms(wait.duration);
    let mut detail = format!(
        "waiting {} until {}",
        wait.text,
        Timestamp(due).to_rfc3339()
    );
    if let Some((q, end)) = r
        .time
        .quiet
        .as_ref()
        .and_then(|q| Some((q, q.end_if_quiet(due)?)))
    {
        due = end;
        detail = format!(
            "{detail}, postponed by quiet hours {} to {}",
            q.describe(),
            Timestamp(due).to_rfc3339()
        );
    }
    out.timers
        .push(timer(r, TimerKind::Wait, -1, due, jobs, None));
    out.notes
        .push(note(r, TimeWhat::Wait, None, Some(due), detail));
}

/// A job due now, or (delayed, or due in quiet hours) a timer holding it.
fn delay_or_now(r: &Rule, event: &Event, job: NewJob, out: &mut Timed) {
    let now = event.received_at.millis();
    let action = job.key(&event.id).action as usize;
    let at = r.time.action(action);
    let delay = at.and_then(|a| a.delay).map_or(0, ms);
    let mut due = now + delay;
    let mut what = TimeWhat::Delayed;
    let mut detail = format!(
        "delayed {}",
        duration_text(std::time::Duration::from_millis(delay as u64))
    );
    let quiet = at.and_then(|a| a.quiet.as_ref()).or(r.time.quiet.as_ref());
    if let Some((q, end)) = quiet.and_then(|q| Some((q, q.end_if_quiet(due)?))) {
        due = end;
        what = TimeWhat::Postponed;
        detail = format!(
            "postponed by quiet hours {} to {}",
            q.describe(),
            Timestamp(end).to_rfc3339()
        );
    }
    if due <= now {
        out.jobs.push(job);
        return;
    }
    let column = job.action_index as i64;
    let mut t = timer(
        r,
        TimerKind::Delay,
        column,
        due,
        vec![job],
        Some(detail.clone()),
    );
    t.if_still = at.and_then(|a| a.if_still.clone());
    out.timers.push(t);
    out.notes
        .push(note(r, what, Some(action), Some(due), detail));
}

/// The wait rules whose `unless` this event matches: their pending timers for the event's
/// order are cancelled in the event's transaction.
pub fn cancels(set: &RuleSet, event: &Event) -> Vec<(String, String)> {
    if event.order.is_none() {
        return Vec::new();
    }
    set.cancellable()
        .filter(|r| {
            r.time.wait.as_ref().is_some_and(|w| {
                w.unless
                    .iter()
                    .any(|p| pattern_matches(p, &event.topic, event.canonical.as_deref()))
            })
        })
        .map(|r| (r.name.clone(), cancel_reason(&event.topic, &event.id)))
        .collect()
}

/// Why a wait is cancelled at its due time: the first event of its order's timeline (id, topic,
/// canonical name; not the wait's own event) that matches one of its `unless` patterns. The
/// timer worker and the rule-test runner both ask this when a wait comes due.
pub fn unless_match<'e>(
    unless: &[String],
    own: &str,
    timeline: impl IntoIterator<Item = (&'e str, &'e str, Option<&'e str>)>,
) -> Option<String> {
    timeline
        .into_iter()
        .find(|(id, topic, canonical)| {
            *id != own && unless.iter().any(|p| pattern_matches(p, topic, *canonical))
        })
        .map(|(id, topic, _)| cancel_reason(topic, id))
}

/// What a wait cancelled by an `unless` event says, whenever that event came.
pub fn cancel_reason(topic: &str, event_id: &str) -> String {
    format!("cancelled by {topic} (event {event_id})")
}
