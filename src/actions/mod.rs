//! Actions: the executors that deliver jobs. The dispatcher looks each job's `kind` up in
//! [`Actions`] and runs it; errors say whether retrying can help.
//!
//! The built-in network executors (email, Slack, HTTP, log) are added by `from_config`; `flag`
//! needs the journal and is inserted by the app.

pub mod flag;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

/// Which delivery a job is: also the idempotency key.
#[derive(Debug, Clone)]
pub struct JobContext {
    pub job_id: i64,
    pub event_id: String,
    pub rule: String,
    pub action_index: usize,
    /// 1 for the first attempt.
    pub attempt: u32,
}

impl JobContext {
    /// Stable across retries and restarts: `{event_id}/{rule}/{action_index}`.
    pub fn idempotency_key(&self) -> String {
        format!("{}/{}/{}", self.event_id, self.rule, self.action_index)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    /// Worth retrying later (timeouts, connection errors, SMTP 4xx, HTTP 429/5xx).
    #[error("{message}")]
    Retryable {
        message: String,
        retry_after: Option<Duration>,
    },
    /// Retrying cannot help (SMTP 5xx, HTTP 4xx, bad address, bad parameters).
    #[error("{message}")]
    Permanent { message: String },
}

/// A future an executor returns.
pub type Delivery<'a> = Pin<Box<dyn Future<Output = Result<(), ActionError>> + Send + 'a>>;

pub trait Action: Send + Sync {
    fn name(&self) -> &'static str;
    fn execute<'a>(&'a self, params: &'a serde_json::Value, job: &'a JobContext) -> Delivery<'a>;
}

#[derive(Debug, thiserror::Error)]
pub enum ActionsError {
    #[error("invalid action configuration: {0}")]
    Config(String),
}

/// The closed registry of executors.
pub struct Actions {
    list: Vec<Arc<dyn Action>>,
}

impl Actions {
    pub fn from_config(_config: &crate::config::Config) -> Result<Actions, ActionsError> {
        Ok(Actions { list: Vec::new() })
    }

    pub fn get(&self, kind: &str) -> Option<&Arc<dyn Action>> {
        self.list.iter().find(|a| a.name() == kind)
    }

    pub fn names(&self) -> Vec<&'static str> {
        self.list.iter().map(|a| a.name()).collect()
    }

    /// Registers an executor (the app adds `flag`, which writes to the journal).
    pub fn insert(&mut self, action: Arc<dyn Action>) {
        self.list.push(action)
    }
}
