//! Planning, pure: one event + the rules (+ their scripts and plugins) → a [`Plan`]: the trace,
//! the jobs and the script state written. Used by the pipeline, `simulate`, `test`,
//! `jobs retry --replan` and dynamic products ([`dynamic`]) alike. No I/O beyond reading script
//! state through [`State`].

pub mod dynamic;
pub mod replay;
pub mod ruletest;
pub mod run;
pub mod time;
pub mod trace;
pub mod trace_store;

use std::collections::BTreeMap;

pub use dynamic::Answer;
pub use run::{plain_job, run_rule, JournalState, Layered, RuleRun};
pub use trace::{RuleRecord, Trace};

use crate::journal::{NewJob, Processed, TimerWrites};
use crate::model::event::Event;
use crate::rules::RuleSet;
use crate::script::State;
use crate::template::EventView;

/// Script state written by earlier events of the same batch (not committed yet).
pub type Batch = [BTreeMap<String, serde_json::Value>];

/// What the rules do with one event.
#[derive(Debug, Clone)]
pub struct Plan {
    pub trace: Trace,
    pub jobs: Vec<NewJob>,
    /// Script state written (`state_set`, `state_incr`), committed with the event.
    pub state: Vec<(String, serde_json::Value)>,
    /// Timers created and waits cancelled (DESIGN.md §12), committed with the event.
    pub timers: TimerWrites,
}

/// Why an event cannot be planned (the pipeline quarantines it with this reason).
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("internal error while planning: {0}")]
    Panicked(String),
    #[error("the trace could not be serialized: {0}")]
    Trace(#[from] serde_json::Error),
}

impl Plan {
    /// What the journal stores for `event_id`.
    pub fn into_processed(self, event_id: &str) -> Result<Processed, PlanError> {
        Ok(Processed {
            event_id: event_id.to_string(),
            fired: self.trace.fired().map(String::from).collect(),
            trace: trace_store::stored(&self.trace)?,
            jobs: self.jobs,
            state: self.state,
            timers: self.timers,
        })
    }
}

/// Plans one event (used by `storeflow test`, `simulate` and `jobs retry --replan`). Where the
/// pipeline would quarantine the event, the trace records the reason instead.
pub fn plan(event: &Event, rules: &RuleSet, committed: &dyn State, batch: &Batch) -> Plan {
    try_plan(event, rules, committed, batch).unwrap_or_else(|e| Plan {
        trace: Trace::failed(e.to_string()),
        jobs: Vec::new(),
        state: Vec::new(),
        timers: TimerWrites::default(),
    })
}

/// [`plan`], or why the event cannot be planned. A bug that panics anywhere in planning (rule
/// evaluation, scripts, rendering) is contained here and answered as an error, so the pipeline
/// quarantines that one event instead of stalling on it forever.
pub fn try_plan(
    event: &Event,
    rules: &RuleSet,
    committed: &dyn State,
    batch: &Batch,
) -> Result<Plan, PlanError> {
    let planned = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        plan_unguarded(event, rules, committed, batch)
    }));
    planned.map_err(|panic| PlanError::Panicked(panic_message(panic.as_ref())))
}

/// The text of a panic's payload.
pub fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_default()
}

fn plan_unguarded(event: &Event, rules: &RuleSet, committed: &dyn State, batch: &Batch) -> Plan {
    let view = EventView::new(event);
    let evaluation = rules.evaluate_view(&view);
    let mut jobs = Vec::new();
    let mut written: BTreeMap<String, serde_json::Value> = BTreeMap::new();
    let mut failures = Vec::new();
    let mut timers = TimerWrites {
        cancels: time::cancels(rules, event),
        source: event.source.clone(),
        order_id: event.order.as_ref().map(|o| o.id.clone()),
        ..TimerWrites::default()
    };
    let mut notes = Vec::new();
    for r in evaluation.matched() {
        let mut layers = vec![&written];
        layers.extend(batch.iter().rev());
        let state = Layered {
            layers,
            store: committed,
        };
        match run_rule(rules, &view, r, &state) {
            Ok(run) => {
                let timed = match rules.rule(&r.rule).filter(|rule| !rule.time.is_empty()) {
                    Some(rule) => time::apply(rule, rules, &view, run.jobs, &state),
                    None => time::Timed {
                        jobs: run.jobs,
                        ..time::Timed::default()
                    },
                };
                crate::telemetry::rule_matched(&event.id, &r.rule, timed.jobs.len());
                jobs.extend(timed.jobs);
                timers.timers.extend(timed.timers);
                notes.extend(timed.notes);
                written.extend(run.state);
                written.extend(timed.state);
            }
            Err(error) => {
                crate::telemetry::script_failed(&event.id, &r.rule, &error);
                failures.push((r.rule.clone(), error.to_string()));
            }
        }
    }
    notes.extend(timers.cancels.iter().map(|(rule, _)| time::TimeNote {
        rule: rule.clone(),
        what: time::TimeWhat::Cancels,
        action: None,
        due_at: None,
        detail: "cancels this order's pending waits of the rule (`unless`)".into(),
    }));
    let mut trace = Trace::planned(evaluation, &failures);
    trace.shop = Some(event.shop.clone());
    trace.secret = event.secret.clone();
    trace.time = notes;
    Plan {
        trace,
        jobs,
        state: written.into_iter().collect(),
        timers,
    }
}
