//! `flag`: records a flag (e.g. `dispute`) on the event's order in the journal, once per
//! (source, order, kind, rule). Listed by `storeflow flags`.

use std::sync::{Arc, Mutex};

use serde_json::Value;

use super::{Action, ActionError, ActionFuture, JobContext};
use crate::event::Timestamp;
use crate::journal::{Flag, Journal, SqliteStore, Store, Write};

pub struct FlagAction {
    journal: Journal,
    /// For looking up the flagged event's source and order.
    reader: Arc<Mutex<SqliteStore>>,
}

impl FlagAction {
    pub fn new(journal: Journal, reader: Arc<Mutex<SqliteStore>>) -> FlagAction {
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
        let reader = self.reader.clone();
        let id = event_id.to_string();
        let event = tokio::task::spawn_blocking(move || {
            reader
                .lock()
                .map_err(|_| "journal reader poisoned".to_string())?
                .event(&id)
                .map_err(|e| e.to_string())
        })
        .await
        .map_err(|e| e.to_string())
        .and_then(|r| r)
        .map_err(|message| ActionError::Retryable {
            message,
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

impl Action for FlagAction {
    fn kind(&self) -> crate::model::actions::ActionKind {
        crate::model::actions::ActionKind::Flag
    }

    fn execute<'a>(&'a self, params: &'a Value, job: &'a JobContext) -> ActionFuture<'a> {
        Box::pin(self.flag(params, job))
    }
}
