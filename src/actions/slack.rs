//! `slack`: posts to an incoming webhook (the job's `webhook_url`, else `slack.webhook_url`), or
//! with `slack.bot_token` to `chat.postMessage`. With neither configured, messages are appended
//! to `<data_dir>/slack.jsonl` so a trial run shows them.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use reqwest::Client;
use serde_json::{json, Map, Value};

use super::http::{check_status, request_error};
use super::params::text;
use super::{Action, ActionError, Delivery, JobContext};
use crate::config::{Secret, SlackConfig};

pub struct SlackAction {
    client: Client,
    webhook_url: Secret,
    bot_token: Secret,
    api_base: String,
    drop_file: PathBuf,
}

impl SlackAction {
    pub fn new(config: &SlackConfig, data_dir: &Path, client: Client) -> SlackAction {
        SlackAction {
            client,
            webhook_url: config.webhook_url.clone(),
            bot_token: config.bot_token.clone(),
            api_base: config.api_base.trim_end_matches('/').to_string(),
            drop_file: data_dir.join("slack.jsonl"),
        }
    }

    async fn post(&self, params: &Value, job: &JobContext) -> Result<(), ActionError> {
        let message = message(params)?;
        let override_url = text(params, "webhook_url");
        if !override_url.is_empty() {
            return self.webhook(&override_url, &message).await;
        }
        if self.webhook_url.is_set() {
            return self.webhook(self.webhook_url.expose(), &message).await;
        }
        if self.bot_token.is_set() {
            return self.chat_post_message(&message).await;
        }
        self.append(job, message)
    }

    async fn webhook(&self, url: &str, message: &Value) -> Result<(), ActionError> {
        // The URL is a secret: errors name Slack, not the URL.
        let resp = self
            .client
            .post(url)
            .json(message)
            .send()
            .await
            .map_err(|e| request_error("the Slack webhook", e.without_url()))?;
        check_status(resp).await.map(|_| ())
    }

    async fn chat_post_message(&self, message: &Value) -> Result<(), ActionError> {
        if message.get("channel").is_none() {
            return Err(ActionError::permanent(
                "slack: `channel` is required with slack.bot_token",
            ));
        }
        let url = format!("{}/chat.postMessage", self.api_base);
        let resp = self
            .client
            .post(&url)
            .bearer_auth(self.bot_token.expose())
            .json(message)
            .send()
            .await
            .map_err(|e| request_error(&url, e))?;
        let answer: Value = check_status(resp)
            .await?
            .json()
            .await
            .unwrap_or(Value::Null);
        if answer["ok"] == true {
            return Ok(());
        }
        let reason = answer["error"]
            .as_str()
            .unwrap_or("no reason given")
            .to_string();
        let message = format!("Slack refused the message: {reason}");
        if reason == "ratelimited" {
            Err(ActionError::retryable(message))
        } else {
            Err(ActionError::Permanent { message })
        }
    }

    fn append(&self, job: &JobContext, message: Value) -> Result<(), ActionError> {
        let mut line = json!({ "key": job.idempotency_key() });
        if let (Some(l), Value::Object(m)) = (line.as_object_mut(), message) {
            l.extend(m);
        }
        let write = || -> std::io::Result<()> {
            if let Some(dir) = self.drop_file.parent() {
                std::fs::create_dir_all(dir)?;
            }
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.drop_file)?;
            writeln!(f, "{line}")
        };
        write().map_err(|e| {
            ActionError::retryable(format!(
                "cannot append to {}: {e}",
                self.drop_file.display()
            ))
        })
    }
}

/// `{text, channel?, blocks?}` from the job's parameters.
fn message(params: &Value) -> Result<Value, ActionError> {
    let mut m = Map::new();
    for key in ["text", "channel"] {
        let v = text(params, key);
        if !v.is_empty() {
            m.insert(key.into(), Value::String(v));
        }
    }
    if let Some(blocks) = params.get("blocks").filter(|b| !b.is_null()) {
        let blocks = match blocks {
            Value::String(s) => serde_json::from_str(s)
                .map_err(|e| ActionError::permanent(format!("slack: `blocks` is not JSON: {e}")))?,
            other => other.clone(),
        };
        m.insert("blocks".into(), blocks);
    }
    if !m.contains_key("text") && !m.contains_key("blocks") {
        return Err(ActionError::permanent("slack: give `text` or `blocks`"));
    }
    Ok(Value::Object(m))
}

impl Action for SlackAction {
    fn name(&self) -> &'static str {
        "slack"
    }

    fn execute<'a>(&'a self, params: &'a Value, job: &'a JobContext) -> Delivery<'a> {
        Box::pin(self.post(params, job))
    }
}
