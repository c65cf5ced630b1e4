//! `POST /api/simulate` with `{"source": "sellix", "payload": {...}, "event": "order:paid"?}`:
//! the plan the current rules make for that payload (trace and rendered jobs). Nothing is
//! journaled, sent, or written to script state.

use bytes::Bytes;
use serde::Deserialize;
use serde_json::{json, Value};

use super::params::Params;
use super::{AdminError, Api};
use crate::model::event::Timestamp;
use crate::plan::plan;
use crate::script::NoState;
use crate::sources::verify;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Request {
    source: String,
    payload: Value,
    /// The event name when the payload does not carry it (Sellix's `X-Sellix-Event`).
    #[serde(default)]
    event: Option<String>,
}

pub(super) async fn run(api: &Api, p: Params, body: Bytes) -> Result<Value, AdminError> {
    p.done("nothing")?;
    let request: Request = serde_json::from_slice(&body).map_err(|e| {
        AdminError::BadBody(format!(
            "{e} (expected {{\"source\": \"sellix\", \"payload\": {{...}}}})"
        ))
    })?;
    let Some(adapter) = api.sources.get(&request.source) else {
        return Err(AdminError::BadBody(format!(
            "unknown source `{}`; use one of: {}",
            request.source.chars().take(40).collect::<String>(),
            api.sources.names().join(", ")
        )));
    };
    let rules = api.rules.current().ok_or(AdminError::NoRules)?;
    let raw =
        serde_json::to_vec(&request.payload).map_err(|e| AdminError::BadBody(e.to_string()))?;
    let verified = verify::local_file(raw.into(), request.event);
    let incoming = adapter
        .normalize(&verified, Timestamp::now())
        .map_err(|e| AdminError::BadBody(format!("not a {} webhook: {e}", request.source)))?;
    let event = incoming.event;
    // Planning runs scripts: off the async threads, like the pipeline.
    let planned = tokio::task::spawn_blocking(move || {
        let planned = plan(&event, &rules, &NoState, &[]);
        (event, planned)
    })
    .await
    .map_err(|e| AdminError::BadBody(format!("planning failed: {e}")))?;
    let (event, planned) = planned;
    Ok(json!({
        "event": {
            "source": event.source,
            "kind": event.kind,
            "topic": event.topic,
            "canonical": event.canonical,
            "order": event.order,
        },
        "trace": planned.trace,
        "jobs": planned.jobs,
        "sent": false,
    }))
}
