//! `http`: calls an HTTP endpoint with the rendered JSON or text body, optionally signed, and
//! the status classification shared with `slack`: 2xx done, 429/5xx retry (honouring
//! `Retry-After`), other 4xx permanent.

use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
use reqwest::{Client, Method, Response, StatusCode};
use serde_json::Value;
use sha2::Sha256;

use super::params::{required, text};
use super::{Action, ActionError, ActionsError, Delivery, JobContext};

/// The header a signed request carries: `sha256=<hex HMAC-SHA256 of the body>`.
pub const SIGNATURE_HEADER: &str = "X-Storeflow-Signature";
pub const IDEMPOTENCY_HEADER: &str = "X-Storeflow-Idempotency-Key";

/// The one outgoing HTTP client: per-request timeout, redirects only within the same host.
pub fn client(timeout: Duration) -> Result<Client, ActionsError> {
    let policy = reqwest::redirect::Policy::custom(|attempt| {
        let same_host =
            attempt.previous().first().map(|u| u.host_str()) == Some(attempt.url().host_str());
        if attempt.previous().len() >= 5 || !same_host {
            attempt.stop()
        } else {
            attempt.follow()
        }
    });
    Client::builder()
        .timeout(timeout)
        .redirect(policy)
        .user_agent(concat!("storeflow/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| ActionsError::Http(e.to_string()))
}

pub struct HttpAction {
    client: Client,
}

impl HttpAction {
    pub fn new(client: Client) -> HttpAction {
        HttpAction { client }
    }

    async fn call(&self, params: &Value, job: &JobContext) -> Result<(), ActionError> {
        let url = required(params, "http", "url")?;
        let method = match text(params, "method") {
            m if m.is_empty() => Method::POST,
            m => Method::from_bytes(m.to_ascii_uppercase().as_bytes())
                .map_err(|_| ActionError::permanent(format!("http: unknown method `{m}`")))?,
        };
        let (body, content_type) = match (params.get("json"), params.get("body")) {
            (Some(json), _) if !json.is_null() => (json.to_string(), Some("application/json")),
            _ => (text(params, "body"), None),
        };
        let mut req = self
            .client
            .request(method, &url)
            .header(IDEMPOTENCY_HEADER, job.idempotency_key());
        if let Some(ct) = content_type {
            req = req.header(reqwest::header::CONTENT_TYPE, ct);
        }
        if let Some(Value::Object(headers)) = params.get("headers") {
            for (k, v) in headers {
                req = req.header(
                    k.as_str(),
                    v.as_str().map_or_else(|| v.to_string(), str::to_string),
                );
            }
        }
        let secret = text(params, "sign_secret");
        if !secret.is_empty() {
            req = req.header(
                SIGNATURE_HEADER,
                format!("sha256={}", sign(secret.as_bytes(), body.as_bytes())),
            );
        }
        let resp = req
            .body(body)
            .send()
            .await
            .map_err(|e| request_error(&url, e))?;
        check_status(resp).await.map(|_| ())
    }
}

impl Action for HttpAction {
    fn name(&self) -> &'static str {
        "http"
    }

    fn execute<'a>(&'a self, params: &'a Value, job: &'a JobContext) -> Delivery<'a> {
        Box::pin(self.call(params, job))
    }
}

/// Lowercase hex HMAC-SHA256 of `body`.
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC accepts keys of any length");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// Connection problems and timeouts are worth retrying; a malformed request is not.
pub fn request_error(url: &str, e: reqwest::Error) -> ActionError {
    if e.is_builder() {
        ActionError::permanent(format!("invalid request to `{url}`: {e}"))
    } else {
        ActionError::retryable(format!("request to {url} failed: {e}"))
    }
}

/// 2xx passes; 429 and 5xx are retryable (with `Retry-After`), other answers permanent.
pub async fn check_status(resp: Response) -> Result<Response, ActionError> {
    let status = resp.status();
    if status.is_success() {
        return Ok(resp);
    }
    let retry_after = retry_after(&resp);
    let url = resp.url().to_string();
    let excerpt: String = resp
        .text()
        .await
        .unwrap_or_default()
        .chars()
        .take(200)
        .collect();
    let message = format!("{url} answered {status}: {excerpt}");
    if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
        Err(ActionError::Retryable {
            message,
            retry_after,
        })
    } else if status.is_redirection() {
        Err(ActionError::permanent(format!(
            "{url} redirected to another host (not followed)"
        )))
    } else {
        Err(ActionError::Permanent { message })
    }
}

/// `Retry-After` in seconds (the HTTP-date form is rare from APIs and is ignored).
fn retry_after(resp: &Response) -> Option<Duration> {
    let v = resp
        .headers()
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?;
    v.trim().parse::<u64>().ok().map(Duration::from_secs)
}
