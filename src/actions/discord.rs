//! The `discord` action: post a message to a Discord channel webhook.
//!
//! `webhook_url` (required, may be `${VAR}`), `content` and/or `embeds` (a JSON list). Discord
//! answers `204`; `429` and `5xx` are retryable, waiting as long as the `Retry-After` header or
//! the JSON body's `retry_after` (seconds, fractional) asks; any other `4xx` is permanent.
//!
//! A webhook URL is a credential: it never appears in an error (so never in a log line or a
//! job's `last_error`); errors say `discord webhook: …`.

use std::time::Duration;

use reqwest::{Client, Response, StatusCode};
use serde_json::{Map, Value};

use super::http::{excerpt, retry_after, transport_error};
use super::params::Params;
use super::{secrets, ActionError, Executor, JobContext};
use crate::model::actions::ActionKind;

const WHAT: &str = "discord webhook";

/// Posts `content` / `embeds` to a Discord webhook.
pub struct DiscordAction {
    client: Client,
}

impl DiscordAction {
    pub fn new(client: Client) -> DiscordAction {
        DiscordAction { client }
    }

    async fn send(&self, params: &Value) -> Result<(), ActionError> {
        let p = Params::new("discord", params)?;
        let body = payload(&p)?;
        let url = p.str("webhook_url")?;
        let bad = |e: String| p.error("webhook_url", e);
        let resolved = secrets::resolve_env(url).map_err(|e| bad(e.to_string()))?;
        let mut known = resolved.secrets;
        known.push(resolved.text.clone());
        reqwest::Url::parse(&resolved.text).map_err(|e| bad(e.to_string()).scrub(&known))?;
        let sent = self.post(&resolved.text, &body).await;
        sent.map_err(|e| e.scrub(&known))
    }

    async fn post(&self, url: &str, body: &Value) -> Result<(), ActionError> {
        let response = self
            .client
            .post(url)
            .json(body)
            .send()
            .await
            .map_err(|e| transport_error(WHAT, e))?;
        check(response).await
    }
}

impl Executor for DiscordAction {
    const KIND: ActionKind = ActionKind::Discord;

    async fn run(&self, params: &Value, _job: &JobContext) -> Result<(), ActionError> {
        self.send(params).await
    }
}

/// The JSON Discord expects: `content` and `embeds` when given (at least one of them).
fn payload(p: &Params<'_>) -> Result<Value, ActionError> {
    let mut body = Map::new();
    if let Some(content) = p.opt_str("content")? {
        body.insert("content".into(), content.into());
    }
    match p.json_or_text("embeds")? {
        Some(Value::Array(embeds)) => {
            body.insert("embeds".into(), Value::Array(embeds));
        }
        Some(_) => return Err(p.error("embeds", "must be a JSON list of embed objects")),
        None => {}
    }
    if body.is_empty() {
        return Err(p.error("content", "is required (or give `embeds`)"));
    }
    Ok(Value::Object(body))
}

/// 2xx → done; 429 and 5xx → retryable after `Retry-After` (header, else the body's
/// `retry_after`); anything else → permanent, with Discord's message.
async fn check(response: Response) -> Result<(), ActionError> {
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    let header_wait = retry_after(response.headers());
    let text = response.text().await.unwrap_or_default();
    let mut message = format!("{WHAT}: HTTP {status}");
    let excerpt = excerpt(&text);
    if !excerpt.is_empty() {
        message.push_str(&format!(": {excerpt}"));
    }
    if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
        let wait = header_wait.or_else(|| body_retry_after(&text));
        Err(ActionError::retryable_after(message, wait))
    } else {
        Err(ActionError::permanent(message))
    }
}

/// Discord's rate-limit body: `{"message": "...", "retry_after": 0.5, "global": false}`.
fn body_retry_after(text: &str) -> Option<Duration> {
    let secs = serde_json::from_str::<Value>(text)
        .ok()?
        .get("retry_after")?
        .as_f64()?;
    Duration::try_from_secs_f64(secs).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn body(params: Value) -> Result<Value, ActionError> {
        payload(&Params::new("discord", &params).unwrap())
    }

    #[test]
    fn payload_keeps_content_and_embeds() {
        let embeds = json!([{"title": "Order 7"}]);
        let got = body(json!({"webhook_url": "x", "content": "hi", "embeds": embeds})).unwrap();
        assert_eq!(
            got,
            json!({"content": "hi", "embeds": [{"title": "Order 7"}]})
        );
        let from_text = body(json!({"embeds": "[{\"title\": \"t\"}]"})).unwrap();
        assert_eq!(from_text, json!({"embeds": [{"title": "t"}]}));
    }

    #[test]
    fn payload_needs_content_or_a_list_of_embeds() {
        let err = body(json!({"content": ""})).unwrap_err();
        assert!(!err.is_retryable());
        assert!(err.to_string().contains("`content`"), "{err}");
        let err = body(json!({"embeds": {"title": "t"}})).unwrap_err();
        assert!(err.to_string().contains("JSON list"), "{err}");
    }

    #[test]
    fn rate_limit_body_gives_fractional_seconds() {
        let text = r#"{"message": "You are being rate limited.", "retry_after": 1.5}"#;
        assert_eq!(body_retry_after(text), Some(Duration::from_millis(1500)));
        assert_eq!(body_retry_after("nope"), None);
        assert_eq!(body_retry_after(r#"{"retry_after": -1}"#), None);
    }
}
