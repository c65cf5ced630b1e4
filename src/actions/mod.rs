//! Action executors: the part of storeflow that actually sends things (DESIGN.md §5).
//!
//! A *job* (event id, rule name, action index) names an action `kind` and its `params`, a JSON
//! object whose strings are already rendered templates. This module owns the closed registry of
//! built-in executors ([`Actions`]) and the one error type they share ([`ActionError`]), whose
//! variant — retryable or permanent — is the only thing the dispatcher looks at: it never
//! matches on message strings.
//!
//! Executors are built once from the config (SMTP transport, HTTP client) and shared by every
//! job; each job validates its own params at execute time and fails *permanently* when they are
//! missing or ill-typed, because retrying the same params cannot help.

pub mod destination;
mod discord;
mod email;
pub mod flag;
mod http;
mod log;
mod params;
pub mod redact;
mod secrets;
mod slack;

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::config::Config;
use crate::model::actions::{ActionKind, Runs, ACTIONS};

pub use email::{message_id, EmailAction};
pub use http::{signature, HttpAction, IDEMPOTENCY_HEADER, SIGNATURE_HEADER};
pub use log::LogAction;
pub use slack::SlackAction;

/// Which delivery a job is: also the idempotency key.
#[derive(Debug, Clone)]
pub struct JobContext {
    pub job_id: i64,
    pub event_id: String,
    pub rule: String,
    pub action_index: usize,
    /// 1 for the first try; only for logs (the effect must not depend on it).
    pub attempt: u32,
}

impl JobContext {
    /// `"{event_id}/{rule}/{action_index}"`: the same for every attempt of the same job, so a
    /// receiver (or our own `.eml` drop) can recognise a retried delivery.
    pub fn idempotency_key(&self) -> String {
        format!("{}/{}/{}", self.event_id, self.rule, self.action_index)
    }

    /// The key made safe for a file name: readable characters kept, others replaced, plus a short
    /// digest of the full key so two keys never collide after the replacement.
    pub fn file_stem(&self) -> String {
        let key = self.idempotency_key();
        let readable: String = key
            .chars()
            .map(|c| match c {
                'a'..='z' | 'A'..='Z' | '0'..='9' | '-' | '_' | '.' => c,
                _ => '_',
            })
            .take(120)
            .collect();
        format!("{readable}-{}", &key_digest(&key)[..12])
    }
}

/// Lowercase hex SHA-256 of an idempotency key (Message-IDs and file names derive from it).
pub(crate) fn key_digest(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// Why a job failed; the variant decides what the dispatcher does next.
#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    /// Worth retrying later (timeouts, connection errors, SMTP 4xx, HTTP 429/5xx).
    #[error("{message}")]
    Retryable {
        message: String,
        /// The destination asked us to wait this long (`Retry-After`); the dispatcher should not
        /// retry earlier.
        retry_after: Option<Duration>,
    },
    /// Retrying cannot help (SMTP 5xx, HTTP 4xx, bad address, bad parameters).
    #[error("{message}")]
    Permanent { message: String },
}

/// Messages are [`redact::clean`]ed when built: whatever an executor puts in them (a URL, a
/// response body, a buyer's value), no credential-bearing URL and no line break reaches the log
/// or `last_error`.
impl ActionError {
    pub fn retryable(message: impl Into<String>) -> ActionError {
        Self::retryable_after(message, None)
    }

    pub fn retryable_after(
        message: impl Into<String>,
        retry_after: Option<Duration>,
    ) -> ActionError {
        ActionError::Retryable {
            message: redact::clean(&message.into()),
            retry_after,
        }
    }

    pub fn permanent(message: impl Into<String>) -> ActionError {
        ActionError::Permanent {
            message: redact::clean(&message.into()),
        }
    }

    /// The same error with each of `secrets` (exact values the executor used) masked.
    pub fn scrub(self, secrets: &[String]) -> ActionError {
        match self {
            ActionError::Retryable {
                message,
                retry_after,
            } => ActionError::Retryable {
                message: redact::scrub(&message, secrets),
                retry_after,
            },
            ActionError::Permanent { message } => ActionError::Permanent {
                message: redact::scrub(&message, secrets),
            },
        }
    }

    pub fn is_retryable(&self) -> bool {
        matches!(self, ActionError::Retryable { .. })
    }

    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            ActionError::Retryable { retry_after, .. } => *retry_after,
            ActionError::Permanent { .. } => None,
        }
    }
}

/// What [`Action::execute`] returns: a boxed future so the trait stays object safe.
pub type ActionFuture<'a> = Pin<Box<dyn Future<Output = Result<(), ActionError>> + Send + 'a>>;

/// One kind of action (`email`, `slack`, …), as the registry holds it (object safe).
/// Executors implement [`Executor`] instead; this is derived for them.
pub trait Action: Send + Sync {
    /// The kind it executes: its row in the action table.
    fn kind(&self) -> ActionKind;
    /// Performs the effect once. `params` is the job's JSON object of rendered parameters.
    fn execute<'a>(
        &'a self,
        params: &'a serde_json::Value,
        job: &'a JobContext,
    ) -> ActionFuture<'a>;
}

/// What an action's executor implements: its kind and one plain `async fn`. The boxing that
/// keeps [`Action`] object safe is written once, in the blanket impl below.
pub trait Executor: Send + Sync {
    /// The kind it executes: its row in the action table.
    const KIND: ActionKind;
    /// Performs the effect once. `params` is the job's JSON object of rendered parameters.
    fn run(
        &self,
        params: &serde_json::Value,
        job: &JobContext,
    ) -> impl Future<Output = Result<(), ActionError>> + Send;
}

impl<E: Executor> Action for E {
    fn kind(&self) -> ActionKind {
        E::KIND
    }

    fn execute<'a>(
        &'a self,
        params: &'a serde_json::Value,
        job: &'a JobContext,
    ) -> ActionFuture<'a> {
        Box::pin(self.run(params, job))
    }
}

/// The config could not be turned into executors.
#[derive(Debug, thiserror::Error)]
pub enum ActionsError {
    #[error("email.smtp.host is empty")]
    SmtpHost,
    #[error("email.from `{from}` is not a mailbox: {message}")]
    From { from: String, message: String },
    #[error("email.smtp.ca_file {path}: {message}")]
    CaFile {
        path: std::path::PathBuf,
        message: String,
    },
    #[error("email.smtp: cannot set up TLS for {host}: {message}")]
    Tls { host: String, message: String },
    #[error("slack.api_base `{url}` is not a URL: {message}")]
    SlackApiBase { url: String, message: String },
    #[error("cannot build the HTTP client: {0}")]
    HttpClient(#[from] reqwest::Error),
    #[error("no executor for the built-in action(s) {0}")]
    NoExecutor(String),
}

/// The closed registry of built-in executors (one place), built from the config, keyed by the
/// action table's kinds.
pub struct Actions {
    by_kind: BTreeMap<ActionKind, Arc<dyn Action>>,
}

impl Actions {
    /// Builds every built-in executor. Cheap and offline: SMTP connections are opened on first
    /// use (inside the runtime), so this can run before the runtime starts.
    pub fn from_config(config: &Config) -> Result<Actions, ActionsError> {
        let client = http::client(config.delivery.timeout)?;
        let mut actions = Actions {
            by_kind: BTreeMap::new(),
        };
        actions.insert(Arc::new(EmailAction::from_config(config)?));
        actions.insert(Arc::new(SlackAction::from_config(config, client.clone())?));
        actions.insert(Arc::new(discord::DiscordAction::new(client.clone())));
        actions.insert(Arc::new(HttpAction::new(
            client,
            config.http.allow_hosts.clone(),
        )));
        actions.insert(Arc::new(LogAction));
        Ok(actions)
    }

    /// The executor of the job kind `kind` (a name from the action table).
    pub fn get(&self, kind: &str) -> Option<&Arc<dyn Action>> {
        self.by_kind.get(&ActionKind::parse(kind))
    }

    /// Every registered name, sorted.
    pub fn names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.by_kind.keys().map(ActionKind::name).collect();
        names.sort_unstable();
        names
    }

    /// Register an extra executor (the app adds `flag`, which writes to the journal).
    /// An executor of the same kind replaces the earlier one.
    pub fn insert(&mut self, action: Arc<dyn Action>) {
        self.by_kind.insert(action.kind(), action);
    }

    /// The table's dispatcher-run kinds that have no executor yet, in table order.
    pub fn missing(&self) -> Vec<ActionKind> {
        ACTIONS
            .iter()
            .filter(|row| row.runs == Runs::Dispatcher && !self.by_kind.contains_key(&row.kind))
            .map(|row| row.kind.clone())
            .collect()
    }

    /// Fails unless every dispatcher-run row of the action table has an executor.
    pub fn ensure_complete(&self) -> Result<(), ActionsError> {
        let missing = self.missing();
        if missing.is_empty() {
            return Ok(());
        }
        let names: Vec<&str> = missing.iter().map(ActionKind::name).collect();
        Err(ActionsError::NoExecutor(names.join(", ")))
    }
}

impl std::fmt::Debug for Actions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Actions")
            .field("names", &self.names())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(rule: &str) -> JobContext {
        JobContext {
            job_id: 1,
            event_id: "evt_1".into(),
            rule: rule.into(),
            action_index: 2,
            attempt: 3,
        }
    }

    #[test]
    fn key_is_stable_and_ignores_attempt() {
        let mut j = job("email-buyer");
        assert_eq!(j.idempotency_key(), "evt_1/email-buyer/2");
        let stem = j.file_stem();
        j.attempt = 9;
        j.job_id = 7;
        assert_eq!(j.file_stem(), stem);
        assert!(stem.starts_with("evt_1_email-buyer_2-"), "{stem}");
    }

    #[test]
    fn file_stems_differ_when_keys_differ_only_in_replaced_chars() {
        assert_ne!(job("a b").file_stem(), job("a/b").file_stem());
        assert!(!job("../../etc").file_stem().contains('/'));
    }

    /// The dispatcher shares one registry between its tasks.
    #[test]
    fn registry_is_shareable_across_tasks() {
        fn shareable<T: Send + Sync + 'static>() {}
        shareable::<Actions>();
    }

    #[test]
    fn registry_lists_builtins_and_accepts_extras() {
        let mut actions = Actions::from_config(&Config::default()).unwrap();
        assert_eq!(
            actions.names(),
            ["discord", "email", "http", "log", "slack"]
        );
        actions.insert(Arc::new(LogAction));
        assert_eq!(actions.names().len(), 5);
        assert!(actions.get("emial").is_none());
        assert_eq!(actions.get("slack").unwrap().kind(), ActionKind::Slack);
    }

    /// Every built-in kind of the action table has an executor: all from the config but `flag`,
    /// which needs the journal and is added by the app (whose start fails on a missing one).
    #[test]
    fn every_builtin_kind_in_the_table_has_an_executor() {
        let actions = Actions::from_config(&Config::default()).unwrap();
        assert_eq!(actions.missing(), [ActionKind::Flag]);
        let err = actions.ensure_complete().unwrap_err();
        assert_eq!(
            err.to_string(),
            "no executor for the built-in action(s) flag"
        );
    }
}
