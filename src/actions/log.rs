//! The `log` action: one `tracing` event per job, carrying the event id and rule as fields.
//!
//! Useful while writing rules (see what matched without sending anything) and for audit lines.
//! It cannot fail except on bad params.

use tracing::Level;

use super::params::Params;
use super::{ActionError, Executor, JobContext};
use crate::model::actions::ActionKind;

/// Writes `message` at `level` (trace | debug | info | warn | error, default info).
pub struct LogAction;

/// The `tracing` target of rule log lines, so they can be filtered (`RUST_LOG=storeflow::rule=debug`).
pub const TARGET: &str = "storeflow::rule";

impl Executor for LogAction {
    const KIND: ActionKind = ActionKind::Log;

    async fn run(&self, params: &serde_json::Value, job: &JobContext) -> Result<(), ActionError> {
        let p = Params::new("log", params)?;
        // A rendered message may carry buyer-typed CR/LF or NUL: escaped, it stays one line.
        let message = super::redact::escape_controls(p.str("message")?);
        let level = parse_level(&p)?;
        emit(level, &message, job);
        Ok(())
    }
}

fn parse_level(p: &Params<'_>) -> Result<Level, ActionError> {
    match p.opt_str("level")?.map(str::to_ascii_lowercase).as_deref() {
        None | Some("info") => Ok(Level::INFO),
        Some("trace") => Ok(Level::TRACE),
        Some("debug") => Ok(Level::DEBUG),
        Some("warn") | Some("warning") => Ok(Level::WARN),
        Some("error") => Ok(Level::ERROR),
        Some(other) => Err(p.error(
            "level",
            format!("unknown level `{other}`; use trace, debug, info, warn or error"),
        )),
    }
}

/// `tracing` needs the level as a constant, hence one arm per level.
fn emit(level: Level, message: &str, job: &JobContext) {
    let (event_id, rule) = (job.event_id.as_str(), job.rule.as_str());
    let index = job.action_index;
    macro_rules! at {
        ($lvl:expr) => {
            tracing::event!(target: TARGET, $lvl, event_id, rule, action_index = index, "{message}")
        };
    }
    match level {
        Level::TRACE => at!(Level::TRACE),
        Level::DEBUG => at!(Level::DEBUG),
        Level::INFO => at!(Level::INFO),
        Level::WARN => at!(Level::WARN),
        _ => at!(Level::ERROR),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actions::Action;
    use serde_json::json;

    fn job() -> JobContext {
        JobContext {
            job_id: 1,
            event_id: "evt_1".into(),
            rule: "r".into(),
            action_index: 0,
            attempt: 1,
        }
    }

    #[tokio::test]
    async fn logs_or_names_the_bad_param() {
        let params = json!({"message": "hi", "level": "WARN"});
        LogAction.execute(&params, &job()).await.unwrap();
        let e = LogAction
            .execute(&json!({"message": "hi", "level": "loud"}), &job())
            .await
            .unwrap_err();
        assert!(
            !e.is_retryable() && e.to_string().contains("`level`"),
            "{e}"
        );
        let e = LogAction.execute(&json!({}), &job()).await.unwrap_err();
        assert!(e.to_string().contains("`message`"), "{e}");
    }
}
