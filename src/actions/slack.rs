//! The `slack` action: post a message through an incoming webhook or the Web API.
//!
//! Destination, first match wins: the job's `webhook_url` param, `slack.webhook_url`,
//! `slack.bot_token` (`chat.postMessage` on `slack.api_base`, needs a channel). With none of them
//! the message is appended as one JSON line to `<data_dir>/slack.jsonl`, so a trial run without a
//! Slack workspace still shows what would have been posted.
//!
//! A webhook URL is a credential: it never appears in an error (so never in a log line or a
//! job's `last_error`), and a `webhook_url` param may name it as `${VAR}`, resolved here.

use std::path::PathBuf;

use reqwest::Client;
use serde_json::{json, Value};

use super::http::{check_response, transport_error};
use super::params::Params;
use super::{secrets, ActionError, ActionsError, Executor, JobContext};
use crate::config::{Config, Secret};
use crate::model::actions::ActionKind;

/// Web API errors that go away by themselves; every other `error` is permanent.
const TRANSIENT_API_ERRORS: &[&str] = &[
    "ratelimited",
    "rate_limited",
    "internal_error",
    "fatal_error",
    "service_unavailable",
    "request_timeout",
];

/// Posts `text` / `blocks` to Slack (or to `slack.jsonl`).
pub struct SlackAction {
    client: Client,
    webhook_url: Secret,
    bot_token: Secret,
    /// `{api_base}/chat.postMessage`.
    post_message_url: String,
    /// The `slack.jsonl` fallback; one writer at a time so lines never interleave.
    drop_file: PathBuf,
    drop_lock: tokio::sync::Mutex<()>,
}

/// A validated `slack` job.
struct Message {
    text: Option<String>,
    channel: Option<String>,
    blocks: Option<Value>,
    webhook_url: Option<String>,
}

impl SlackAction {
    pub fn from_config(config: &Config, client: Client) -> Result<SlackAction, ActionsError> {
        let base = config.slack.api_base.trim_end_matches('/');
        let post_message_url = format!("{base}/chat.postMessage");
        if config.slack.bot_token.is_set() {
            reqwest::Url::parse(&post_message_url).map_err(|e| ActionsError::SlackApiBase {
                url: config.slack.api_base.clone(),
                message: e.to_string(),
            })?;
        }
        Ok(SlackAction {
            client,
            webhook_url: config.slack.webhook_url.clone(),
            bot_token: config.slack.bot_token.clone(),
            post_message_url,
            drop_file: config.data_dir.join("slack.jsonl"),
            drop_lock: tokio::sync::Mutex::new(()),
        })
    }

    async fn send(&self, msg: Message, job: &JobContext) -> Result<(), ActionError> {
        if let Some(url) = msg.webhook_url.as_deref() {
            let bad = |e: String| ActionError::permanent(format!("slack param `webhook_url`: {e}"));
            let resolved = secrets::resolve_env(url).map_err(|e| bad(e.to_string()))?;
            reqwest::Url::parse(&resolved.text).map_err(|e| bad(e.to_string()))?;
            let mut known = resolved.secrets;
            known.push(resolved.text.clone());
            let sent = self.post_webhook(&resolved.text, &msg).await;
            return sent.map_err(|e| e.scrub(&known));
        }
        if self.webhook_url.is_set() {
            let url = self.webhook_url.expose();
            let sent = self.post_webhook(url, &msg).await;
            return sent.map_err(|e| e.scrub(&[url.to_string()]));
        }
        if self.bot_token.is_set() {
            return self.post_message(&msg).await;
        }
        self.append_to_file(&msg, job).await
    }

    /// Incoming webhooks answer `200 ok`, or a status with a short reason (`no_service`).
    async fn post_webhook(&self, url: &str, msg: &Message) -> Result<(), ActionError> {
        let response = self
            .client
            .post(url)
            .json(&payload(msg))
            .send()
            .await
            .map_err(|e| transport_error("slack webhook", e))?;
        check_response("slack webhook", response).await?;
        Ok(())
    }

    /// `chat.postMessage` answers HTTP 200 with `{"ok": false, "error": "..."}` on failure.
    async fn post_message(&self, msg: &Message) -> Result<(), ActionError> {
        if msg.channel.is_none() {
            return Err(ActionError::permanent(
                "slack param `channel` is required when posting with slack.bot_token",
            ));
        }
        let response = self
            .client
            .post(&self.post_message_url)
            .bearer_auth(self.bot_token.expose())
            .json(&payload(msg))
            .send()
            .await
            .map_err(|e| transport_error("slack chat.postMessage", e))?;
        let body = check_response("slack chat.postMessage", response).await?;
        api_result(&body)
    }

    async fn append_to_file(&self, msg: &Message, job: &JobContext) -> Result<(), ActionError> {
        let line = json!({
            "key": job.idempotency_key(),
            "text": msg.text,
            "channel": msg.channel,
            "blocks": msg.blocks,
        });
        let mut bytes = line.to_string().into_bytes();
        bytes.push(b'\n');
        let failed = |e: std::io::Error| {
            ActionError::retryable(format!(
                "cannot append to {}: {e}",
                self.drop_file.display()
            ))
        };
        let _guard = self.drop_lock.lock().await;
        let path = self.drop_file.clone();
        // One blocking hop for the whole append (tokio::fs made three per line). Not fsync'd:
        // the job is recorded done only after this returns, and a crash before that delivers
        // it again (at-least-once, as for every action).
        tokio::task::spawn_blocking(move || append_line(&path, &bytes))
            .await
            .map_err(|e| failed(std::io::Error::other(e)))?
            .map_err(failed)
    }
}

/// Appends one line to `path` (and its folder, if missing) with a single `write`.
fn append_line(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?
        .write_all(bytes)
}

impl Executor for SlackAction {
    const KIND: ActionKind = ActionKind::Slack;

    async fn run(&self, params: &serde_json::Value, job: &JobContext) -> Result<(), ActionError> {
        let msg = Message::parse(&Params::new("slack", params)?)?;
        self.send(msg, job).await
    }
}

impl Message {
    fn parse(p: &Params<'_>) -> Result<Message, ActionError> {
        let blocks = p.json_or_text("blocks")?;
        if blocks.as_ref().is_some_and(|b| !b.is_array()) {
            return Err(p.error("blocks", "must be a JSON list of blocks"));
        }
        let text = p.opt_str("text")?.map(String::from);
        if text.is_none() && blocks.is_none() {
            return Err(p.error("text", "is required (or give `blocks`)"));
        }
        let webhook_url = p.opt_str("webhook_url")?;
        // With `${VAR}` in it, the URL is checked once resolved, at delivery.
        if let Some(url) = webhook_url.filter(|u| !u.contains('$')) {
            reqwest::Url::parse(url).map_err(|e| p.error("webhook_url", e))?;
        }
        Ok(Message {
            text,
            channel: p.opt_str("channel")?.map(String::from),
            blocks,
            webhook_url: webhook_url.map(String::from),
        })
    }
}

/// The JSON Slack expects: `text`, and `channel` / `blocks` only when given.
fn payload(msg: &Message) -> Value {
    let mut body = serde_json::Map::new();
    if let Some(text) = &msg.text {
        body.insert("text".into(), json!(text));
    }
    if let Some(channel) = &msg.channel {
        body.insert("channel".into(), json!(channel));
    }
    if let Some(blocks) = &msg.blocks {
        body.insert("blocks".into(), blocks.clone());
    }
    Value::Object(body)
}

/// Reads a Web API answer: `ok: true`, or an error carrying Slack's reason.
fn api_result(body: &str) -> Result<(), ActionError> {
    let answer: Value = serde_json::from_str(body).map_err(|_| {
        ActionError::retryable(format!(
            "slack chat.postMessage: answer is not JSON: {}",
            super::http::excerpt(body)
        ))
    })?;
    if answer.get("ok").and_then(Value::as_bool) == Some(true) {
        return Ok(());
    }
    let reason = answer
        .get("error")
        .and_then(Value::as_str)
        .unwrap_or("unknown_error");
    let message = format!("slack chat.postMessage: {reason}");
    if TRANSIENT_API_ERRORS.contains(&reason) {
        Err(ActionError::retryable(message))
    } else {
        Err(ActionError::permanent(message))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_errors_carry_slacks_reason() {
        assert!(api_result(r#"{"ok":true}"#).is_ok());
        let e = api_result(r#"{"ok":false,"error":"channel_not_found"}"#).unwrap_err();
        assert!(!e.is_retryable() && e.to_string().contains("channel_not_found"));
        assert!(api_result(r#"{"ok":false,"error":"ratelimited"}"#)
            .unwrap_err()
            .is_retryable());
    }

    #[test]
    fn message_needs_text_or_blocks() {
        let parse = |v: Value| Message::parse(&Params::new("slack", &v).unwrap());
        let e = parse(json!({"channel": "#x"})).err().unwrap();
        assert!(e.to_string().contains("`text`"), "{e}");
        assert!(parse(json!({"blocks": "[]"})).is_ok());
        let e = parse(json!({"text": "t", "blocks": {"a": 1}}))
            .err()
            .unwrap();
        assert!(e.to_string().contains("`blocks`"), "{e}");
        let e = parse(json!({"text": "t", "webhook_url": "nope"}))
            .err()
            .unwrap();
        assert!(e.to_string().contains("`webhook_url`"), "{e}");
    }
}
