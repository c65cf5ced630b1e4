//! Running the scripts and plugin actions of matched rules, in the pipeline: their intents become
//! jobs and their state writes are committed with the event's trace, in one transaction. A script
//! that fails fails only its own rule run: none of that rule's jobs or state writes are kept, and
//! the trace records the script's file:line:column and the reason.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::journal::{JobKey, NewJob, Store};
use crate::model::actions::ActionKind;
use crate::rules::{PlannedAction, RuleSet, RuleTrace};
use crate::script::{Intent, ScriptError, State, StateChanges};
use crate::template::EventView;

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
pub struct JournalState<'a, S: Store + ?Sized>(pub &'a S);

impl<S: Store + ?Sized> State for JournalState<'_, S> {
    fn get(&self, key: &str) -> Option<Value> {
        self.0.state(key).ok().flatten()
    }
}

/// What one matched rule produced.
pub struct RuleRun {
    pub jobs: Vec<NewJob>,
    pub state: BTreeMap<String, Value>,
}

/// Why a matched rule's run was dropped.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// A plugin's parameters did not render.
    #[error("template error: {0}")]
    Template(String),
    /// The script or plugin failed (file:line:column: reason).
    #[error(transparent)]
    Script(#[from] ScriptError),
}

/// Runs one matched rule's actions into jobs (scripts and plugins into their intents).
pub fn run_rule(
    rules: &RuleSet,
    view: &EventView<'_>,
    rule: &RuleTrace,
    state: &Layered<'_>,
) -> Result<RuleRun, RunError> {
    let event = view.scope().event;
    let mut run = RuleRun {
        jobs: Vec::new(),
        state: BTreeMap::new(),
    };
    for action in &rule.actions {
        if action.kind == ActionKind::Script
            && event.topic == crate::model::event::DYNAMIC_PRODUCT_TOPIC
        {
            // Already run at intake: its return value was the product (see plan::dynamic).
            continue;
        }
        if !action.kind.is_scripted() {
            run.jobs.push(plain_job(&event.id, &rule.rule, action));
            continue;
        }
        let mut layers = vec![&run.state];
        layers.extend(state.layers.iter().copied());
        let seen = Layered {
            layers,
            store: state.store,
        };
        let (intents, changes) = run_scripted(rules, view, rule, action, &seen)?;
        run.jobs
            .extend(intents.into_iter().enumerate().map(|(k, intent)| {
                let key = JobKey::intent(&event.id, &rule.rule, action.index, k);
                NewJob {
                    rule: rule.rule.clone(),
                    action_index: key.column(),
                    kind: intent.kind,
                    params: intent.params,
                    error: None,
                }
            }));
        run.state.extend(changes.0);
    }
    Ok(run)
}

fn run_scripted(
    rules: &RuleSet,
    view: &EventView<'_>,
    rule: &RuleTrace,
    action: &PlannedAction,
    state: &Layered<'_>,
) -> Result<(Vec<Intent>, StateChanges), RunError> {
    let runner = rules.runner();
    let result = match rules.script(&rule.rule, action.index) {
        Some(script) => runner.run_script_values(script, &view.values(), state),
        None => {
            let params = action
                .params
                .as_ref()
                .map_err(|e| RunError::Template(e.clone()))?;
            runner.run_plugin_values(action.kind.name(), params, &view.values(), state)
        }
    };
    Ok(result?)
}

/// The job of a built-in action (a template error makes it dead at once).
pub fn plain_job(event: &str, rule: &str, a: &PlannedAction) -> NewJob {
    let (params, error) = match &a.params {
        Ok(p) => (p.clone(), None),
        Err(e) => (Value::Null, Some(RunError::Template(e.clone()).to_string())),
    };
    NewJob {
        rule: rule.to_string(),
        action_index: JobKey::action(event, rule, a.index).column(),
        kind: a.kind.name().to_string(),
        params,
        error,
    }
}
