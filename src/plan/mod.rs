//! Planning, pure: one event + the rules (+ their scripts and plugins) → what the journal stores
//! for it: the trace, the jobs and the script state written. Used by the pipeline, `simulate`,
//! `test`, `jobs retry --replan` and dynamic products alike. No I/O beyond reading script state
//! through [`State`].

pub mod run;

use std::collections::BTreeMap;

pub use run::{intent_index, plain_job, run_rule, JournalState, Layered, RuleRun};

use crate::event::Event;
use crate::journal::Processed;
use crate::rules::RuleSet;
use crate::script::State;

/// Evaluates the rules for one event and turns the result into what the journal stores (used by
/// `storeflow test` and `simulate`). Where the pipeline would quarantine the event, the trace
/// records the reason instead.
pub fn plan(
    event: &Event,
    rules: &RuleSet,
    committed: &dyn State,
    batch: &[BTreeMap<String, serde_json::Value>],
) -> Processed {
    try_plan(event, rules, committed, batch).unwrap_or_else(|reason| Processed {
        event_id: event.id.clone(),
        trace: serde_json::json!({ "error": reason }),
        jobs: Vec::new(),
        state: Vec::new(),
    })
}

/// [`plan`], or why the event cannot be planned. A bug that panics anywhere in planning (rule
/// evaluation, scripts, rendering) is contained here and answered as an error, so the pipeline
/// quarantines that one event instead of stalling on it forever.
pub fn try_plan(
    event: &Event,
    rules: &RuleSet,
    committed: &dyn State,
    batch: &[BTreeMap<String, serde_json::Value>],
) -> Result<Processed, String> {
    let planned = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        plan_unguarded(event, rules, committed, batch)
    }));
    planned.unwrap_or_else(|panic| {
        let what = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        Err(format!("internal error while planning: {what}"))
    })
}

fn plan_unguarded(
    event: &Event,
    rules: &RuleSet,
    committed: &dyn State,
    batch: &[BTreeMap<String, serde_json::Value>],
) -> Result<Processed, String> {
    let evaluation = rules.evaluate(event);
    let mut values = None;
    let mut jobs = Vec::new();
    let mut written: BTreeMap<String, serde_json::Value> = BTreeMap::new();
    let mut failures = Vec::new();
    for r in evaluation.matched() {
        let mut layers = vec![&written];
        layers.extend(batch.iter().rev());
        let state = Layered {
            layers,
            store: committed,
        };
        match run_rule(rules, event, &mut values, r, &state) {
            Ok(run) => {
                tracing::info!(event_id = %event.id, rule = %r.rule, jobs = run.jobs.len(), "rule matched");
                jobs.extend(run.jobs);
                written.extend(run.state);
            }
            Err(error) => {
                tracing::warn!(event_id = %event.id, rule = %r.rule, %error, "script failed; the rule run is dropped");
                failures.push((r.rule.clone(), error));
            }
        }
    }
    let mut trace = serde_json::to_value(&evaluation)
        .map_err(|e| format!("the trace could not be serialized: {e}"))?;
    record_failures(&mut trace, &failures);
    record_verification(&mut trace, event);
    Ok(Processed {
        event_id: event.id.clone(),
        trace,
        jobs,
        state: written.into_iter().collect(),
    })
}

/// The shop and which of its secrets verified the event (`current`, `previous`, `none`), so a
/// rotated secret can be retired once nothing arrives with it.
fn record_verification(trace: &mut serde_json::Value, event: &Event) {
    if let Some(t) = trace.as_object_mut() {
        t.insert("shop".into(), event.shop.clone().into());
        if let Some(secret) = &event.secret {
            t.insert("secret".into(), secret.clone().into());
        }
    }
}

/// Marks rules whose script failed in the trace (`script_error`, with file:line:column).
fn record_failures(trace: &mut serde_json::Value, failures: &[(String, String)]) {
    let Some(rules) = trace.get_mut("rules").and_then(|r| r.as_array_mut()) else {
        return;
    };
    for (rule, error) in failures {
        if let Some(entry) = rules.iter_mut().find(|e| e["rule"] == rule.as_str()) {
            entry["script_error"] = serde_json::Value::String(error.clone());
            entry["actions"] = serde_json::json!([]);
        }
    }
}
