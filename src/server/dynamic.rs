//! Sellix dynamic products: for `sellix/product:dynamic`, the answer's body is what Sellix
//! delivers to the buyer (a license key, a download link). Sellix sends this webhook once and
//! never retries, so the script runs here, synchronously (off the async threads, within a
//! deadline), after the event is journaled; its result is journaled too (state key
//! `dynamic:<event id>`), so a repeated delivery gets the same answer and the pipeline does not
//! run the script a second time.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use crate::event::Event;
use crate::journal::{Journal, Write};
use crate::model::actions::ActionKind;
use crate::rules::live::LiveRules;
use crate::rules::RuleSet;

pub use crate::event::DYNAMIC_PRODUCT_TOPIC as TOPIC;
/// How long the script may take (Sellix waits for the answer while the buyer watches).
pub const DEADLINE: Duration = Duration::from_secs(10);

/// The state key that keeps the answer for an event.
pub fn state_key(event_id: &str) -> String {
    format!("dynamic:{event_id}")
}

/// The answer to a dynamic-product `event`: the output of the first matching rule's script
/// (blocking, within [`DEADLINE`]); `None` when no matching rule has a script. `simulate` and
/// rule tests call this too, so they show exactly what the daemon would answer.
pub fn compute(rules: &RuleSet, event: &Event) -> Option<Result<String, String>> {
    let evaluation = rules.evaluate(event);
    let (rule, index) = evaluation.matched().find_map(|r| {
        let a = r.actions.iter().find(|a| a.kind == ActionKind::Script)?;
        Some((r.rule.clone(), a.index))
    })?;
    let script = rules.script(&rule, index)?;
    let result = rules.runner().dynamic_product(script, event, DEADLINE);
    Some(result.map_err(|e| e.to_string()))
}

/// Runs the first matching rule's script for `event` and journals its output. `None` when no
/// rule with a script listens to dynamic products.
pub async fn answer(
    rules: &Arc<LiveRules>,
    journal: &Journal,
    event: Event,
) -> Option<Result<String, String>> {
    let rules = rules.current()?;
    let output = tokio::task::spawn_blocking(move || {
        let result = compute(&rules, &event)?;
        Some((event.id.clone(), result))
    })
    .await
    .ok()??;
    let (event_id, result) = output;
    let kept = match &result {
        Ok(body) => Value::String(body.clone()),
        Err(e) => serde_json::json!({ "error": e }),
    };
    if let Err(e) = journal
        .write(Write::State(state_key(&event_id), kept))
        .await
    {
        tracing::error!(error = %e, %event_id, "cannot journal the dynamic product answer");
    }
    Some(result)
}
