//! `flag`: records a flag (e.g. `dispute`) on the event's order in the journal, once per
//! (source, order, kind, rule). Listed by `storeflow flags`.

use serde_json::Value;

use super::{ActionError, Executor, JobContext};
use crate::journal::{Flag, Journal, Reader, Write};
use crate::model::actions::ActionKind;
use crate::model::event::Timestamp;

pub struct FlagAction {
    journal: Journal,
    /// For looking up the flagged event's source and order.
    reader: Reader,
}

impl FlagAction {
    pub fn new(journal: Journal, reader: Reader) -> FlagAction {
        FlagAction { journal, reader }
    }

    async fn flag(&self, params: &Value, job: &JobContext) -> Result<(), ActionError> {
        let kind = text(params, "kind");
        if kind.is_empty() {
            return Err(ActionError::Permanent {
                message: "flag needs a `kind`".into(),
            });
        }
        let (source, order_id) = self.order_of(&job.event_id).await?;
        let flag = Flag {
            id: 0,
            source,
            order_id,
            kind,
            note: text(params, "note"),
            event_id: job.event_id.clone(),
            rule: job.rule.clone(),
            created_at: Timestamp::now(),
            resolved_at: None,
        };
        self.journal
            .write(Write::Flag(flag))
            .await
            .map_err(|e| ActionError::Retryable {
                message: format!("cannot record the flag: {e}"),
                retry_after: None,
            })?;
        Ok(())
    }

    /// The event's source and order id (the event id when the event is not about an order).
    async fn order_of(&self, event_id: &str) -> Result<(String, String), ActionError> {
        let event = self
            .reader
            .event(event_id)
            .await
            .map_err(|e| ActionError::Retryable {
                message: e.to_string(),
                retry_after: None,
            })?;
        let event = event.ok_or_else(|| ActionError::Permanent {
            message: format!("event {event_id} is no longer in the journal"),
        })?;
        let order = event.order.map(|o| o.id).filter(|id| !id.is_empty());
        Ok((event.source, order.unwrap_or(event.id)))
    }
}

fn text(params: &Value, key: &str) -> String {
    params
        .get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

impl Executor for FlagAction {
    const KIND: ActionKind = ActionKind::Flag;

    async fn run(&self, params: &serde_json::Value, job: &JobContext) -> Result<(), ActionError> {
        self.flag(params, job).await
    }
}
