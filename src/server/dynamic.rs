//! Sellix dynamic products at intake. Sellix sends this webhook once and never retries, so the
//! answer is computed here, synchronously (off the async threads, within a deadline), after the
//! event is journaled, by the one narrow function [`crate::plan::dynamic::product`]; the answer
//! is journaled too (state key `dynamic:<event id>`), so a repeated delivery gets the same
//! answer. The server itself evaluates no rules and runs no script.

use std::sync::Arc;

use serde_json::Value;

use crate::journal::{Journal, Write};
use crate::model::event::Event;
use crate::plan::dynamic::{product, DEADLINE};
pub use crate::plan::dynamic::{Answer, TOPIC};
use crate::rules::live::LiveRules;

/// The state key that keeps the answer for an event.
pub fn state_key(event_id: &str) -> String {
    format!("dynamic:{event_id}")
}

/// The answer as journaled: the body, or `{"error": ...}`. `None` when there is nothing to keep.
fn kept(answer: &Answer) -> Option<Value> {
    match answer {
        Answer::Produced(body) => Some(Value::String(body.clone())),
        Answer::Failed(e) | Answer::TimedOut(e) => Some(serde_json::json!({ "error": e })),
        Answer::NoScript => None,
    }
}

/// The journaled answer of a repeated delivery (see [`answer`]).
pub fn from_kept(kept: Value) -> Answer {
    match kept {
        Value::String(body) => Answer::Produced(body),
        other => Answer::Failed(other["error"].as_str().unwrap_or("no answer").to_string()),
    }
}

/// Computes the answer to `event` (see [`product`]) and journals it.
pub async fn answer(rules: &Arc<LiveRules>, journal: &Journal, event: Event) -> Answer {
    let Some(rules) = rules.current() else {
        return Answer::NoScript;
    };
    let event_id = event.id.clone();
    let answer = tokio::task::spawn_blocking(move || product(&rules, &event, DEADLINE))
        .await
        .unwrap_or_else(|e| Answer::Failed(format!("the script task failed: {e}")));
    if let Some(kept) = kept(&answer) {
        if let Err(e) = journal
            .write(Write::State(state_key(&event_id), kept))
            .await
        {
            tracing::error!(error = %e, %event_id, "cannot journal the dynamic product answer");
        }
    }
    answer
}
