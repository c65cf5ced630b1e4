//! `log`: writes the rendered message to the daemon's log at the chosen level.

use serde_json::Value;

use super::params::{required, text};
use super::{Action, Delivery, JobContext};

pub struct LogAction;

impl Action for LogAction {
    fn name(&self) -> &'static str {
        "log"
    }

    fn execute<'a>(&'a self, params: &'a Value, job: &'a JobContext) -> Delivery<'a> {
        Box::pin(async move {
            let message = required(params, "log", "message")?;
            let (event_id, rule) = (&job.event_id, &job.rule);
            match text(params, "level").to_ascii_lowercase().as_str() {
                "trace" => tracing::trace!(%event_id, %rule, "{message}"),
                "debug" => tracing::debug!(%event_id, %rule, "{message}"),
                "warn" | "warning" => tracing::warn!(%event_id, %rule, "{message}"),
                "error" => tracing::error!(%event_id, %rule, "{message}"),
                _ => tracing::info!(%event_id, %rule, "{message}"),
            }
            Ok(())
        })
    }
}
