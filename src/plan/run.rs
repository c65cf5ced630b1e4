//! Running the scripts and plugin actions of matched rules, in the pipeline: their intents become
//! jobs and their state writes are committed with the event's trace, in one transaction. A script
//! that fails fails only its own rule run: none of that rule's jobs or state writes are kept, and
//! the trace records the script's file:line:column and the reason.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::event::Event;
use crate::journal::{NewJob, Store};
use crate::rules::{PlannedAction, RuleSet, RuleTrace};
use crate::script::{EventValues, Intent, State};

/// Job index of the `k`-th intent of the script or plugin at action `index`: stable and clear of
/// the plain actions' indexes.
pub fn intent_index(index: usize, k: usize) -> usize {
    1000 * (index + 1) + k
}

/// Script state as this event sees it: its own earlier writes, then the batch's, then the
/// journal.
pub struct Layered<'a> {
    pub layers: Vec<&'a BTreeMap<String, Value>>,
    /// The committed state: the journal, or nothing for a dry run.
    pub store: &'a dyn State,
}

impl State for Layered<'_> {
    fn get(&self, key: &str) -> Option<Value> {
        self.layers
            .iter()
            .find_map(|l| l.get(key).cloned())
            .or_else(|| self.store.get(key))
    }
}

/// The journal's `kv` table as script state (a read error reads as "not set").
pub struct JournalState<'a, S: Store>(pub &'a S);

impl<S: Store> State for JournalState<'_, S> {
    fn get(&self, key: &str) -> Option<Value> {
        self.0.state(key).ok().flatten()
    }
}

/// What one matched rule produced.
pub struct RuleRun {
    pub jobs: Vec<NewJob>,
    pub state: BTreeMap<String, Value>,
}

/// Runs one matched rule's actions into jobs (scripts and plugins into their intents).
pub fn run_rule(
    rules: &RuleSet,
    event: &Event,
    values: &mut Option<EventValues>,
    rule: &RuleTrace,
    state: &Layered<'_>,
) -> Result<RuleRun, String> {
    let mut run = RuleRun {
        jobs: Vec::new(),
        state: BTreeMap::new(),
    };
    for action in &rule.actions {
        if action.kind == "script" && event.topic == crate::event::DYNAMIC_PRODUCT_TOPIC {
            // Already run at intake: its return value was the product (see server::dynamic).
            continue;
        }
        let scripted = action.kind == "script" || rules.is_plugin(&action.kind);
        if !scripted {
            run.jobs.push(plain_job(&rule.rule, action));
            continue;
        }
        let mut layers = vec![&run.state];
        layers.extend(state.layers.iter().copied());
        let seen = Layered {
            layers,
            store: state.store,
        };
        let (intents, changes) = run_scripted(rules, event, values, rule, action, &seen)?;
        run.jobs
            .extend(intents.into_iter().enumerate().map(|(k, intent)| NewJob {
                rule: rule.rule.clone(),
                action_index: intent_index(action.index, k),
                kind: intent.kind,
                params: intent.params,
                error: None,
            }));
        run.state.extend(changes.0);
    }
    Ok(run)
}

fn run_scripted(
    rules: &RuleSet,
    event: &Event,
    values: &mut Option<EventValues>,
    rule: &RuleTrace,
    action: &PlannedAction,
    state: &Layered<'_>,
) -> Result<(Vec<Intent>, crate::script::StateChanges), String> {
    let runner = rules.runner();
    let result = match rules.script(&rule.rule, action.index) {
        Some(script) => {
            let values = values.get_or_insert_with(|| EventValues::new(event));
            runner.run_script_values(script, values, state)
        }
        None => {
            let params = action
                .params
                .as_ref()
                .map_err(|e| format!("template error: {e}"))?;
            runner.run_plugin(&action.kind, params, event, state)
        }
    };
    result.map_err(|e| e.to_string())
}

/// The job of a built-in action (a template error makes it dead at once).
pub fn plain_job(rule: &str, a: &PlannedAction) -> NewJob {
    let (params, error) = match &a.params {
        Ok(p) => (p.clone(), None),
        Err(e) => (Value::Null, Some(format!("template error: {e}"))),
    };
    NewJob {
        rule: rule.to_string(),
        action_index: a.index,
        kind: a.kind.clone(),
        params,
        error,
    }
}
