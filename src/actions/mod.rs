//! Actions: the executors that deliver jobs. The dispatcher looks each job's `kind` up in
//! [`Actions`] and runs it with the job's rendered parameters; an error says whether retrying
//! can help ([`ActionError`]), so the dispatcher never inspects error text.
//!
//! Adding an action is one file here and one line in [`Actions::from_config`].

pub mod email;
pub mod flag;
pub mod http;
pub mod log;
pub mod params;
pub mod slack;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use crate::config::Config;

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

impl ActionError {
    pub fn permanent(message: impl Into<String>) -> ActionError {
        ActionError::Permanent {
            message: message.into(),
        }
    }

    pub fn retryable(message: impl Into<String>) -> ActionError {
        ActionError::Retryable {
            message: message.into(),
            retry_after: None,
        }
    }
}

/// A future an executor returns.
pub type Delivery<'a> = Pin<Box<dyn Future<Output = Result<(), ActionError>> + Send + 'a>>;

pub trait Action: Send + Sync {
    fn name(&self) -> &'static str;
    fn execute<'a>(&'a self, params: &'a serde_json::Value, job: &'a JobContext) -> Delivery<'a>;
}

#[derive(Debug, thiserror::Error)]
pub enum ActionsError {
    #[error("email.from `{from}` is not a valid address: {reason}")]
    From { from: String, reason: String },
    #[error("email.smtp: {0}")]
    Smtp(String),
    #[error("cannot build the HTTP client: {0}")]
    Http(String),
}

/// The closed registry of executors.
pub struct Actions {
    list: Vec<Arc<dyn Action>>,
}

impl Actions {
    /// The built-in executors, configured. (`flag` needs the journal; the app inserts it.)
    pub fn from_config(config: &Config) -> Result<Actions, ActionsError> {
        let client = http::client(config.delivery.timeout)?;
        Ok(Actions {
            list: vec![
                Arc::new(email::EmailAction::from_config(config)?),
                Arc::new(slack::SlackAction::new(
                    &config.slack,
                    &config.data_dir,
                    client.clone(),
                )),
                Arc::new(http::HttpAction::new(client)),
                Arc::new(log::LogAction),
            ],
        })
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

/// Writes `bytes` to `path` atomically (temp file, then rename), creating the folder.
pub(crate) fn write_atomically(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(tmp, path)
}
