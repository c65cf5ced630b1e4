//! Rule tests on a virtual clock (DESIGN.md §12): a sequence of events at offsets (`at: +49h`)
//! runs through the same planning as the daemon, with an in-memory journal of timers, `limit`
//! state and the orders' timelines; timers fire at their due time on the virtual clock. The
//! test then checks what fired when, what was cancelled, limited, postponed or left pending.
//!
//! ```yaml
//! tests:
//!   - name: paid but not shipped after 48 h is flagged
//!     events:
//!       - { at: +0h, source: selldone, fixture: ../tests/fixtures/selldone/PaymentOrder.json }
//!     expect:
//!       fires: [{ rule: paid-not-shipped, at: +48h }]
//! ```

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use super::{RuleTest, TestEventError};
use crate::config::Config;
use crate::journal::{NewJob, NewTimer, TimerKind};
use crate::model::event::{Event, Timestamp};
use crate::plan::time::TimeWhat;
use crate::rules::RuleSet;
use crate::script::State;

/// Where the virtual clock starts unless a test says `start:` (a Thursday, noon UTC).
pub const DEFAULT_START: &str = "2026-01-01T12:00:00Z";

/// One event of a sequence.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// Offset from the start: `+0s`, `+30m`, `+49h`, `+7d`.
    #[serde(default = "zero")]
    pub at: String,
    pub source: String,
    #[serde(default)]
    pub event: Option<String>,
    #[serde(default)]
    pub fixture: Option<std::path::PathBuf>,
    #[serde(default)]
    pub payload: Option<Value>,
    /// Dotted paths of the body to overwrite (`basket.id: 2`): one fixture, many orders.
    #[serde(default)]
    pub set: BTreeMap<String, Value>,
}

fn zero() -> String {
    "+0s".into()
}

/// `fires:` items: the rule, and optionally when and what.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectFire {
    pub rule: String,
    #[serde(default)]
    pub at: Option<String>,
    /// How many events a digest run holds.
    #[serde(default)]
    pub events: Option<usize>,
    /// Rendered parameters of its jobs that must contain the text.
    #[serde(default)]
    pub contains: BTreeMap<String, String>,
}

/// Parses `+49h` (or `49h`) into milliseconds.
pub fn offset(text: &str) -> Result<i64, String> {
    let t = text.trim().trim_start_matches('+').trim();
    if t == "0" {
        return Ok(0);
    }
    humantime::parse_duration(t)
        .map(|d| d.as_millis() as i64)
        .map_err(|e| format!("`at: {text}` is not an offset such as `+30m` or `+49h` ({e})"))
}

/// The virtual clock's start (`start:`, an RFC 3339 time), in ms.
fn start_of(text: &str) -> Result<i64, String> {
    text.trim()
        .parse::<jiff::Timestamp>()
        .map(|t| t.as_millisecond())
        .map_err(|e| {
            format!(
                "`start: {text}` is not an RFC 3339 time such as `2026-01-05T23:30:00+01:00` ({e})"
            )
        })
}

/// `+2d 1h`, `+30m`, `+0s` for messages.
pub fn show(ms: i64) -> String {
    let secs = u64::try_from(ms.max(0) / 1000).unwrap_or(0);
    format!(
        "+{}",
        crate::rules::time::duration_text(std::time::Duration::from_secs(secs))
    )
}

/// What happened during a run, on the virtual clock (ms offsets from the start).
#[derive(Debug, Default)]
pub struct History {
    /// Jobs created: (rule, offset, jobs, events in a digest run).
    pub fires: Vec<(String, i64, Vec<NewJob>, usize)>,
    /// Everything time did, per rule, for failure messages: (rule, offset, what, text).
    pub notes: Vec<(String, i64, TimeWhat, String)>,
    /// Rules with a timer still pending at the end.
    pub pending: Vec<String>,
}

impl History {
    pub fn story(&self, rule: &str) -> String {
        let mut lines: Vec<String> = self
            .notes
            .iter()
            .filter(|n| n.0 == rule)
            .map(|(_, at, _, text)| format!("at {}: {text}", show(*at)))
            .collect();
        lines.extend(
            self.fires
                .iter()
                .filter(|f| f.0 == rule)
                .map(|f| format!("at {}: fired ({} job(s))", show(f.1), f.2.len())),
        );
        match lines.is_empty() {
            true => "it never matched".into(),
            false => lines.join("; "),
        }
    }
}

struct SimTimer {
    event: String,
    source: String,
    order: Option<String>,
    t: NewTimer,
    pending: bool,
    events: Vec<String>,
}

/// The in-memory journal of a run.
struct Sim<'a> {
    rules: &'a RuleSet,
    start: i64,
    kv: BTreeMap<String, Value>,
    journaled: Vec<Event>,
    timers: Vec<SimTimer>,
    history: History,
}

impl State for Sim<'_> {
    fn get(&self, key: &str) -> Option<Value> {
        self.kv.get(key).cloned()
    }
}

/// Runs a test's events (at their offsets) and timers until nothing is left or `until`.
pub fn run(
    config: &Config,
    file: &std::path::Path,
    test: &RuleTest,
    rules: &RuleSet,
) -> Result<History, String> {
    let start = start_of(test.start.as_deref().unwrap_or(DEFAULT_START))?;
    let until = test.until.as_deref().map(offset).transpose()?;
    let mut steps = Vec::new();
    for step in super::steps_of(test) {
        let at = offset(&step.at)?;
        let event = super::build_event(config, file, &step, Timestamp(start + at))
            .map_err(|e: TestEventError| e.to_string())?;
        steps.push((at, event));
    }
    steps.sort_by_key(|(at, _)| *at);
    let mut sim = Sim {
        rules,
        start,
        kv: BTreeMap::new(),
        journaled: Vec::new(),
        timers: Vec::new(),
        history: History::default(),
    };
    let mut steps = steps.into_iter().peekable();
    loop {
        let due = sim.next_due();
        let next_event = steps.peek().map(|(at, _)| start + at);
        let now = match (due, next_event) {
            (Some((_, d)), Some(e)) => d.min(e),
            (Some((_, d)), None) => d,
            (None, Some(e)) => e,
            (None, None) => break,
        };
        if until.is_some_and(|u| now > start + u) {
            break;
        }
        match due {
            Some((i, d)) if d <= next_event.unwrap_or(i64::MAX) => sim.fire(i),
            _ => {
                if let Some((_, event)) = steps.next() {
                    sim.process(event);
                }
            }
        }
    }
    sim.history.pending = sim
        .timers
        .iter()
        .filter(|t| t.pending)
        .map(|t| t.t.rule.clone())
        .collect();
    Ok(sim.history)
}

impl Sim<'_> {
    fn next_due(&self) -> Option<(usize, i64)> {
        self.timers
            .iter()
            .enumerate()
            .filter(|(_, t)| t.pending)
            .map(|(i, t)| (i, t.t.due_at.millis()))
            .min_by_key(|(i, d)| (*d, *i))
    }

    fn note(&mut self, rule: &str, at: i64, what: TimeWhat, text: String) {
        self.history
            .notes
            .push((rule.to_string(), at - self.start, what, text));
    }

    /// Plans one event as the pipeline would, and applies the plan to the in-memory journal.
    fn process(&mut self, event: Event) {
        let now = event.received_at.millis();
        self.journaled.push(event.clone());
        let plan = crate::plan::plan(&event, self.rules, &*self, &[]);
        self.kv.extend(plan.state);
        // What a cancel did is recorded below, on the timers it cancelled.
        for n in plan
            .trace
            .time
            .iter()
            .filter(|n| n.what != TimeWhat::Cancels)
        {
            self.note(&n.rule, now, n.what, n.detail.clone());
        }
        let mut by_rule: BTreeMap<String, Vec<NewJob>> = BTreeMap::new();
        for j in plan.jobs {
            by_rule.entry(j.rule.clone()).or_default().push(j);
        }
        for (rule, jobs) in by_rule {
            self.history.fires.push((rule, now - self.start, jobs, 1));
        }
        let order = event.order.as_ref().map(|o| o.id.clone());
        for (rule, reason) in &plan.timers.cancels {
            let mut hit = false;
            for t in self.timers.iter_mut().filter(|t| {
                t.pending
                    && t.t.kind == TimerKind::Wait
                    && &t.t.rule == rule
                    && t.source == event.source
                    && order.is_some()
                    && t.order == order
                    && t.event != event.id
            }) {
                t.pending = false;
                hit = true;
            }
            if hit {
                self.note(rule, now, TimeWhat::Cancelled, reason.clone());
            }
        }
        for t in plan.timers.timers {
            self.add_timer(&event, order.clone(), t, now);
        }
    }

    fn add_timer(&mut self, event: &Event, order: Option<String>, t: NewTimer, now: i64) {
        if t.kind == TimerKind::Digest {
            if let Some(open) = self
                .timers
                .iter_mut()
                .find(|o| o.pending && o.t.kind == TimerKind::Digest && o.t.rule == t.rule)
            {
                open.events.push(event.id.clone());
                if t.digest_max
                    .is_some_and(|m| open.events.len() >= m as usize)
                {
                    open.t.due_at = Timestamp(open.t.due_at.millis().min(now));
                }
                return;
            }
        }
        self.timers.push(SimTimer {
            event: event.id.clone(),
            source: event.source.clone(),
            order,
            pending: true,
            events: vec![event.id.clone()],
            t,
        });
    }

    /// Fires timer `i` at its due time (never late on a virtual clock).
    fn fire(&mut self, i: usize) {
        self.timers[i].pending = false;
        let t = &self.timers[i];
        let (rule, due) = (t.t.rule.clone(), t.t.due_at.millis());
        let outcome = match t.t.kind {
            TimerKind::Digest => self.digest_jobs(t),
            _ => match (self.cancelled_by(t), &t.t.if_still) {
                (Some(why), _) => Err(why),
                (None, Some(expr)) => self.if_still(t, expr).map(|()| t.t.jobs.clone()),
                (None, None) => Ok(t.t.jobs.clone()),
            },
        };
        let n = t.events.len();
        match outcome {
            Ok(jobs) => self.history.fires.push((rule, due - self.start, jobs, n)),
            Err(why) => self.note(&rule, due, TimeWhat::Cancelled, why),
        }
    }

    /// An `unless` event of a due wait's order (later ones cancelled it when planned, so this
    /// finds one that came first), checked at the due time as the timer worker does.
    fn cancelled_by(&self, t: &SimTimer) -> Option<String> {
        let order = t.order.as_ref().filter(|_| t.t.kind == TimerKind::Wait)?;
        let wait = self.rules.rule(&t.t.rule)?.time.wait.as_ref()?;
        let timeline = self
            .journaled
            .iter()
            .filter(|e| e.source == t.source && e.order.as_ref().is_some_and(|o| &o.id == order))
            .map(|e| (e.id.as_str(), e.topic.as_str(), e.canonical.as_deref()));
        crate::plan::time::unless_match(&wait.unless, &t.event, timeline)
    }

    fn if_still(&self, t: &SimTimer, expr: &str) -> Result<(), String> {
        let latest = self
            .journaled
            .iter()
            .rev()
            .find(|e| match &t.order {
                Some(o) => e.source == t.source && e.order.as_ref().is_some_and(|x| &x.id == o),
                None => e.id == t.event,
            })
            .ok_or("skipped: the order's events are gone")?;
        match self.rules.if_still(expr, latest)? {
            true => Ok(()),
            false => Err(format!("skipped: if_still false (`{expr}`)")),
        }
    }

    fn digest_jobs(&self, t: &SimTimer) -> Result<Vec<NewJob>, String> {
        let events: Vec<Event> = t
            .events
            .iter()
            .filter_map(|id| self.journaled.iter().find(|e| &e.id == id).cloned())
            .collect();
        let planned = self
            .rules
            .render_digest(&t.t.rule, &events)
            .ok_or("the digest rule has no events")?;
        Ok(planned
            .iter()
            .map(|a| crate::plan::plain_job(&t.event, &t.t.rule, a))
            .collect())
    }
}
